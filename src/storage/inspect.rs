//! `box inspect IMAGE` data with docker's field names.
use serde_json::{Map, Value, json};

use super::Image;

/// The docker-like inspect object of an image. `raw` is its stored config blob, which keeps
/// what the OCI config type drops (docker's `Healthcheck`, `OnBuild`, `Shell`).
pub fn inspect_image(image: &Image, raw: Option<&Value>) -> Value {
    let raw_cfg = |key: &str| {
        raw.and_then(|r| r.get("config"))
            .and_then(|c| c.get(key))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let cfg = &image.config;
    let c = cfg.config().as_ref();
    let opt_vec = |v: Option<&Vec<String>>| match v {
        Some(v) => json!(v),
        None => Value::Null,
    };
    let ports = c.and_then(|c| c.exposed_ports().as_ref()).map(|ports| {
        let mut m = Map::new();
        for p in ports {
            m.insert(p.clone(), json!({}));
        }
        Value::Object(m)
    });
    let volumes = c.and_then(|c| c.volumes().as_ref()).map(|vols| {
        let mut m = Map::new();
        for v in vols {
            m.insert(v.clone(), json!({}));
        }
        Value::Object(m)
    });
    let config = json!({
        "Hostname": "",
        "Domainname": "",
        "User": c.and_then(|c| c.user().clone()).unwrap_or_default(),
        "AttachStdin": false,
        "AttachStdout": false,
        "AttachStderr": false,
        "ExposedPorts": ports.unwrap_or(Value::Null),
        "Tty": false,
        "OpenStdin": false,
        "StdinOnce": false,
        "Env": opt_vec(c.and_then(|c| c.env().as_ref())),
        "Cmd": opt_vec(c.and_then(|c| c.cmd().as_ref())),
        "Image": "",
        "Volumes": volumes.unwrap_or(Value::Null),
        "WorkingDir": c.and_then(|c| c.working_dir().clone()).unwrap_or_default(),
        "Entrypoint": opt_vec(c.and_then(|c| c.entrypoint().as_ref())),
        "OnBuild": raw_cfg("OnBuild").unwrap_or(Value::Null),
        "Labels": c.and_then(|c| c.labels().as_ref()).map(|l| json!(l)).unwrap_or(Value::Null),
        "StopSignal": c.and_then(|c| c.stop_signal().clone()).map(Value::String).unwrap_or(Value::Null),
    });
    let mut config = config;
    if let Some(h) = raw_cfg("Healthcheck") {
        config["Healthcheck"] = healthcheck(&h);
    }
    if let Some(sh) = raw_cfg("Shell") {
        config["Shell"] = sh;
    }
    let history = cfg
        .history()
        .as_ref()
        .map(|h| json!(h))
        .unwrap_or_else(|| json!([]));
    let mut lower: Vec<String> = image
        .layer_root
        .as_ref()
        .map(|root| {
            let mut seen = std::collections::BTreeSet::new();
            image
                .diff_ids
                .iter()
                .rev()
                .filter(|d| seen.insert(d.as_str()))
                .filter_map(|d| super::digest_hex(d).ok())
                .map(|h| root.join(h).join("diff").display().to_string())
                .collect()
        })
        .unwrap_or_default();
    let upper = if lower.is_empty() {
        None
    } else {
        Some(lower.remove(0))
    };
    let mut data = Map::new();
    if let Some(u) = upper {
        data.insert("UpperDir".into(), json!(u));
    }
    if !lower.is_empty() {
        data.insert("LowerDir".into(), json!(lower.join(":")));
    }
    json!({
        "Id": image.digest_id(),
        "RepoTags": image.names,
        "RepoDigests": image.repo_digests,
        "Parent": "",
        "Comment": "",
        "Created": image.created().unwrap_or_default(),
        "Author": cfg.author().clone().unwrap_or_default(),
        "Architecture": cfg.architecture().to_string(),
        "Variant": cfg.variant().clone().map(Value::String).unwrap_or(Value::Null),
        "Os": cfg.os().to_string(),
        "Config": config,
        "RootFS": { "Type": "layers", "Layers": image.diff_ids },
        "History": history,
        "Size": image.size,
        "VirtualSize": image.size,
        "Digest": image.manifest_digest.clone().unwrap_or_default(),
        "ManifestType": image.manifest_media_type.clone().unwrap_or_default(),
        "GraphDriver": { "Name": "overlay", "Data": Value::Object(data) },
        "Metadata": { "LastTagTime": "0001-01-01T00:00:00Z" },
    })
}

/// docker's `Config.Healthcheck`: `Test`, then the durations (nanoseconds) and `Retries`
/// that are set, in docker's order.
fn healthcheck(h: &Value) -> Value {
    let mut m = Map::new();
    for key in [
        "Test",
        "Interval",
        "Timeout",
        "StartPeriod",
        "StartInterval",
        "Retries",
    ] {
        if let Some(v) = h.get(key).filter(|v| !v.is_null()) {
            m.insert(key.into(), v.clone());
        }
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_field_names() {
        let config = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin"],"Cmd":["/bin/sh"],"ExposedPorts":{"80/tcp":{}},"StopSignal":"SIGQUIT"},"rootfs":{"type":"layers","diff_ids":["sha256:aa"]}}"#,
        )
        .unwrap();
        let image = Image {
            id: "a".repeat(64),
            names: vec!["docker.io/library/x:latest".into()],
            repo_digests: vec![],
            manifest_digest: None,
            manifest_media_type: None,
            config,
            diff_ids: vec![format!("sha256:{}", "1".repeat(64))],
            layers: vec![],
            stored: 0,
            size: 42,
            layer_root: Some("/s/layers".into()),
        };
        let raw = json!({"config": {
            "Healthcheck": {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 2},
            "OnBuild": ["RUN true"],
            "Shell": ["/bin/sh", "-ec"],
        }});
        let v = inspect_image(&image, Some(&raw));
        assert_eq!(v["Config"]["Healthcheck"], raw["config"]["Healthcheck"]);
        assert_eq!(v["Config"]["OnBuild"][0], "RUN true");
        assert_eq!(v["Config"]["Shell"][1], "-ec");
        assert!(v["History"].is_array());
        assert!(inspect_image(&image, None)["Config"]["OnBuild"].is_null());
        assert_eq!(v["Id"], format!("sha256:{}", "a".repeat(64)));
        assert_eq!(v["Config"]["Cmd"][0], "/bin/sh");
        assert_eq!(v["Config"]["StopSignal"], "SIGQUIT");
        assert!(v["Config"]["ExposedPorts"]["80/tcp"].is_object());
        assert_eq!(v["Architecture"], "amd64");
        assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 1);
        assert_eq!(v["Size"], 42);
        assert!(
            v["GraphDriver"]["Data"]["UpperDir"]
                .as_str()
                .unwrap()
                .ends_with("/diff")
        );
    }
}

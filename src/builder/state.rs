//! What a stage has built so far, and the instructions that only change its config.
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::build::parse::{Command, Healthcheck};
use crate::storage::LayerBlob;
use crate::units::rfc3339_seconds as rfc3339;

/// A stage's image so far: its config (as docker writes it: `config`, `rootfs`,
/// `history`, ...), its diff_ids and their blobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct State {
    pub config: Value,
    pub diff_ids: Vec<String>,
    pub layers: Vec<LayerBlob>,
}

impl State {
    /// An empty image for this host (`FROM scratch`).
    pub fn scratch(arch: &str) -> State {
        State {
            config: json!({
                "architecture": arch,
                "os": "linux",
                "config": {},
                "rootfs": {"type": "layers", "diff_ids": []},
                "history": [],
            }),
            diff_ids: Vec::new(),
            layers: Vec::new(),
        }
    }

    /// sha256 hex of the config as box serializes it: the state's identity (what the
    /// image id would be), for cache keys and progress lines.
    pub fn id(&self) -> String {
        hex::encode(Sha256::digest(
            serde_json::to_vec(&self.config).unwrap_or_default(),
        ))
    }

    /// The runtime part of the config (`config`), made an object if missing.
    pub fn cfg(&mut self) -> &mut Value {
        if !self.config["config"].is_object() {
            self.config["config"] = json!({});
        }
        &mut self.config["config"]
    }

    pub fn get(&self, key: &str) -> &Value {
        &self.config["config"][key]
    }

    /// `KEY=VALUE` entries of the config's Env.
    pub fn env(&self) -> Vec<(String, String)> {
        self.get("Env")
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e.as_str())
            .map(|e| {
                let (k, v) = e.split_once('=').unwrap_or((e, ""));
                (k.to_string(), v.to_string())
            })
            .collect()
    }

    pub fn set_env(&mut self, key: &str, value: &str) {
        let mut env: Vec<Value> = self.get("Env").as_array().cloned().unwrap_or_default();
        let entry = json!(format!("{key}={value}"));
        match env
            .iter()
            .position(|e| e.as_str().and_then(|e| e.split('=').next()) == Some(key))
        {
            Some(i) => env[i] = entry,
            None => env.push(entry),
        }
        self.cfg()["Env"] = Value::Array(env);
    }

    pub fn str_of(&self, key: &str) -> String {
        self.get(key).as_str().unwrap_or_default().to_string()
    }

    /// Add a map entry (`Labels`, `ExposedPorts`, `Volumes`).
    pub fn set_in(&mut self, map: &str, key: &str, value: Value) {
        let cfg = self.cfg();
        if !cfg[map].is_object() {
            cfg[map] = json!({});
        }
        cfg[map][key] = value;
    }

    /// Append a history entry (`empty_layer` for a step without a layer).
    pub fn history(&mut self, created_by: &str, empty_layer: bool, ts: Option<u64>) {
        let created = rfc3339(ts.unwrap_or_else(crate::storage::now_secs));
        self.config["created"] = json!(created);
        let mut entry = json!({"created": created, "created_by": created_by});
        if empty_layer {
            entry["empty_layer"] = json!(true);
        }
        let mut h = self.config["history"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        h.push(entry);
        self.config["history"] = Value::Array(h);
    }

    /// Add a layer (its diff_id and blob) to the state.
    pub fn push_layer(&mut self, diff_id: String, blob: LayerBlob) {
        self.diff_ids.push(diff_id);
        self.layers.push(blob);
        if !self.config["rootfs"].is_object() {
            self.config["rootfs"] = json!({"type": "layers"});
        }
        self.config["rootfs"]["diff_ids"] = json!(self.diff_ids);
    }
}

/// A command as the config stores it: exec form as is, shell form through the shell.
pub(crate) fn command_list(cmd: &Command, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => {
            let mut v = shell.to_vec();
            v.push(s.clone());
            v
        }
    }
}

/// HEALTHCHECK as docker stores it (durations in nanoseconds).
pub(crate) fn healthcheck(h: &Healthcheck, shell: &[String]) -> Value {
    match h {
        Healthcheck::None => json!({"Test": ["NONE"]}),
        Healthcheck::Cmd {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test: Vec<String> = match command {
                Command::Exec(v) => std::iter::once("CMD".to_string())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".to_string(), s.clone()],
            };
            let _ = shell;
            let mut v = json!({"Test": test});
            let ns = |d: &Option<std::time::Duration>| d.map(|d| d.as_nanos() as u64);
            if let Some(n) = ns(interval) {
                v["Interval"] = json!(n);
            }
            if let Some(n) = ns(timeout) {
                v["Timeout"] = json!(n);
            }
            if let Some(n) = ns(start_period) {
                v["StartPeriod"] = json!(n);
            }
            if let Some(n) = ns(start_interval) {
                v["StartInterval"] = json!(n);
            }
            if let Some(r) = retries {
                v["Retries"] = json!(r);
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_replaces_and_history_marks_empty_layers() {
        let mut s = State::scratch("amd64");
        s.set_env("A", "1");
        s.set_env("B", "2");
        s.set_env("A", "3");
        assert_eq!(s.get("Env"), &json!(["A=3", "B=2"]));
        let before = s.id();
        s.history("/bin/sh -c #(nop) ENV A=3", true, Some(0));
        assert_eq!(
            s.config["history"][0],
            json!({"created": "1970-01-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ENV A=3", "empty_layer": true})
        );
        assert_ne!(before, s.id());
    }

    #[test]
    fn commands_and_healthchecks_as_docker_stores_them() {
        let sh = vec!["/bin/sh".to_string(), "-c".to_string()];
        assert_eq!(
            command_list(&Command::Shell("echo hi".into()), &sh),
            ["/bin/sh", "-c", "echo hi"]
        );
        let h = Healthcheck::Cmd {
            command: Command::Shell("true".into()),
            interval: Some(std::time::Duration::from_secs(5)),
            timeout: None,
            start_period: None,
            start_interval: None,
            retries: Some(3),
        };
        assert_eq!(
            healthcheck(&h, &sh),
            json!({"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000u64, "Retries": 3})
        );
    }
}

//! box's `registries.toml` ($XDG_CONFIG_HOME/box/registries.toml), kept tiny:
//!
//! ```toml
//! [[registry]]
//! location = "docker.io"            # registry host[:port] this entry is about
//! mirrors = ["127.0.0.1:5001", "mirror.example.com/dockerhub"]   # tried first, in order
//!
//! [[registry]]
//! location = "registry.lan:5000"
//! insecure = true                   # allow plain http and unverified TLS
//! ```
//!
//! A mirror may carry a path prefix; its own security comes from its own entry (or loopback).
use std::path::Path;

use serde::Deserialize;

use super::Error;
use super::reference::normalise_registry;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistriesConf {
    #[serde(default)]
    pub registry: Vec<RegistryEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryEntry {
    pub location: String,
    #[serde(default)]
    pub insecure: bool,
    #[serde(default)]
    pub mirrors: Vec<String>,
}

/// A place to fetch a repository from: a host and an optional repository prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mirror {
    pub host: String,
    pub prefix: Option<String>,
}

impl RegistriesConf {
    /// Read `path`; a missing file is an empty configuration.
    pub fn load(path: &Path) -> Result<RegistriesConf, Error> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Self::default()),
            Err(e) => return Err(Error::io("read", path, e)),
        };
        Self::parse(&text).map_err(|reason| Error::Conf {
            path: path.to_path_buf(),
            reason,
        })
    }

    pub fn parse(text: &str) -> Result<RegistriesConf, String> {
        let mut conf: RegistriesConf =
            toml::from_str(text).map_err(|e| e.message().replace('\n', " ").trim().to_string())?;
        for r in &mut conf.registry {
            r.location = normalise_registry(r.location.trim_end_matches('/'))
                .map_err(|e| format!("location {:?}: {e}", r.location))?;
            for m in &r.mirrors {
                parse_mirror(m)?;
            }
        }
        Ok(conf)
    }

    fn entry(&self, registry: &str) -> Option<&RegistryEntry> {
        self.registry
            .iter()
            .find(|r| r.location.eq_ignore_ascii_case(registry))
    }

    /// Whether `registry` is listed with `insecure = true`.
    pub fn is_insecure(&self, registry: &str) -> bool {
        self.entry(registry).is_some_and(|r| r.insecure)
    }

    /// The mirrors configured for `registry`, in order.
    pub fn mirrors(&self, registry: &str) -> Vec<Mirror> {
        self.entry(registry)
            .map(|r| {
                r.mirrors
                    .iter()
                    .filter_map(|m| parse_mirror(m).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn parse_mirror(m: &str) -> Result<Mirror, String> {
    let m = m
        .strip_prefix("https://")
        .or_else(|| m.strip_prefix("http://"))
        .unwrap_or(m)
        .trim_end_matches('/');
    let (host, prefix) = match m.split_once('/') {
        Some((h, p)) => (h, Some(p.to_string())),
        None => (m, None),
    };
    let host = normalise_registry(host).map_err(|e| format!("mirror {m:?}: {e}"))?;
    Ok(Mirror {
        host: super::reference::api_host(&host).to_string(),
        prefix,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_format() {
        let c = RegistriesConf::parse(
            r#"
[[registry]]
location = "docker.io"
mirrors = ["127.0.0.1:5001", "https://mirror.example.com/dockerhub/"]

[[registry]]
location = "Registry.LAN:5000"
insecure = true
"#,
        )
        .unwrap();
        assert!(c.is_insecure("registry.lan:5000"));
        assert!(!c.is_insecure("docker.io"));
        assert!(!c.is_insecure("quay.io"));
        assert_eq!(
            c.mirrors("docker.io"),
            [
                Mirror {
                    host: "127.0.0.1:5001".into(),
                    prefix: None
                },
                Mirror {
                    host: "mirror.example.com".into(),
                    prefix: Some("dockerhub".into())
                }
            ]
        );
        assert!(c.mirrors("quay.io").is_empty());
        assert!(RegistriesConf::parse("").unwrap().registry.is_empty());
    }

    #[test]
    fn rejects_mistakes_in_one_line() {
        for bad in [
            "[[registry]]\nlocation = 1",
            "[[registry]]\ninsecure = true",
            "[[registry]]\nlocation = \"a\"\nsecure = true",
            "[[registry]]\nlocation = \"bad host\"",
            "[[registry]]\nlocation = \"a\"\nmirrors = [\"x:99999\"]",
            "nonsense",
        ] {
            let e = RegistriesConf::parse(bad).unwrap_err();
            assert!(!e.contains('\n') && !e.is_empty(), "{bad}: {e}");
        }
        let t = tempfile::tempdir().unwrap();
        assert!(
            RegistriesConf::load(&t.path().join("none.toml"))
                .unwrap()
                .registry
                .is_empty()
        );
        let p = t.path().join("r.toml");
        std::fs::write(&p, "[[registry]]\nlocation = 5").unwrap();
        let e = RegistriesConf::load(&p).unwrap_err().to_string();
        assert!(e.starts_with("invalid ") && e.contains("r.toml"), "{e}");
    }
}

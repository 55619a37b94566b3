//! The Distribution API v2 client: its configuration, its shared state (agents, tokens,
//! credentials) and the endpoints of a repository (mirrors first). What it does lives in
//! the files named for it: `resolve.rs` (manifests and configs), `blob.rs` (blob
//! downloads), `auth.rs` (the token flow, `check_login`), `transport.rs` (HTTP).
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use ureq::Agent;

use super::Error;
use super::auth::Credentials;
use super::conf::RegistriesConf;
use super::reference::Reference;
use super::transport::{Timing, read_timeout_from_env, stall_timeout_from_env};

/// What the client is built from. `auth_files[0]` is box's own auth.json (the one
/// `box login` writes); the others are read after it, in order.
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    pub auth_files: Vec<PathBuf>,
    pub registries_conf: Option<PathBuf>,
    /// Some(true): https with verification even for loopback; Some(false): allow plain http
    /// and unverified TLS for every registry; None: the rules in `transport.rs`.
    pub tls_verify: Option<bool>,
}

impl ClientConfig {
    /// box's standard configuration: auth files box's auth.json, `$REGISTRY_AUTH_FILE`,
    /// `$XDG_RUNTIME_DIR/containers/auth.json`, docker's config.json; box's registries.toml.
    pub fn standard(paths: &crate::paths::Paths, tls_verify: Option<bool>) -> ClientConfig {
        let env = |k: &str| {
            std::env::var_os(k)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        };
        let mut auth_files = vec![paths.auth_file()];
        if let Some(f) = env("REGISTRY_AUTH_FILE") {
            auth_files.push(f);
        }
        if let Some(run) = env("XDG_RUNTIME_DIR") {
            auth_files.push(run.join("containers/auth.json"));
        }
        if let Some(d) = env("DOCKER_CONFIG") {
            auth_files.push(d.join("config.json"));
        } else if let Some(home) = env("HOME") {
            auth_files.push(home.join(".docker/config.json"));
        }
        ClientConfig {
            auth_files,
            registries_conf: Some(paths.registries_file()),
            tls_verify,
        }
    }
}

/// Where to fetch a repository: the registry itself or one of its mirrors.
#[derive(Debug, Clone)]
pub(super) struct Endpoint {
    /// API host[:port] (registry-1.docker.io for docker.io).
    pub(super) host: String,
    /// Repository path on that host (a mirror may add a prefix).
    pub(super) repository: String,
    /// Name under which credentials are looked up (docker.io, a mirror's host).
    pub(super) cred_key: String,
}

impl Endpoint {
    pub(super) fn scope(&self) -> String {
        format!("repository:{}:pull", self.repository)
    }
}

/// A registry client. Cheap to share between threads (`&Client` is all the methods need).
pub struct Client {
    pub(super) auth_files: Vec<PathBuf>,
    pub(super) conf: Result<RegistriesConf, (PathBuf, String)>,
    pub(super) conf_path: String,
    pub(super) tls_verify: Option<bool>,
    pub(super) timing: Timing,
    /// [verify+proxy, verify+direct, noverify+proxy, noverify+direct]
    pub(super) agents: [OnceLock<Agent>; 4],
    /// (host, scope) → Authorization header value.
    pub(super) tokens: Mutex<HashMap<(String, String), String>>,
    /// (credential key, repository) → what the auth files hold.
    pub(super) creds: Mutex<HashMap<(String, String), Option<Credentials>>>,
    /// Hosts of `Policy::Insecure` found to speak only plain http.
    pub(super) plain_http: Mutex<HashMap<String, bool>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("auth_files", &self.auth_files)
            .field("tls_verify", &self.tls_verify)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig) -> Client {
        let conf = match &config.registries_conf {
            Some(p) => RegistriesConf::load(p).map_err(|e| match e {
                Error::Conf { path, reason } => (path, reason),
                other => (p.clone(), other.to_string()),
            }),
            None => Ok(RegistriesConf::default()),
        };
        Client {
            auth_files: config.auth_files,
            conf,
            conf_path: config
                .registries_conf
                .map(|p| p.display().to_string())
                .unwrap_or_else(|| "registries.toml".into()),
            tls_verify: config.tls_verify,
            timing: Timing {
                connect: Duration::from_secs(10),
                read: read_timeout_from_env().unwrap_or(Duration::from_secs(30)),
                backoff: Duration::from_millis(500),
                stall: stall_timeout_from_env().unwrap_or(Duration::from_secs(30)),
            },
            agents: Default::default(),
            tokens: Mutex::new(HashMap::new()),
            creds: Mutex::new(HashMap::new()),
            plain_http: Mutex::new(HashMap::new()),
        }
    }

    /// Shorter timeouts and back-off (tests).
    #[doc(hidden)]
    pub fn with_timing(mut self, connect: Duration, read: Duration, backoff: Duration) -> Client {
        self.timing = Timing {
            connect,
            read,
            backoff,
            stall: self.timing.stall,
        };
        self
    }

    /// A shorter stall timeout (tests).
    #[doc(hidden)]
    pub fn with_stall_timeout(mut self, stall: Duration) -> Client {
        self.timing.stall = stall;
        self
    }

    fn conf(&self) -> Result<&RegistriesConf, Error> {
        self.conf.as_ref().map_err(|(path, reason)| Error::Conf {
            path: path.clone(),
            reason: reason.clone(),
        })
    }

    pub(super) fn endpoints(&self, reference: &Reference) -> Result<Vec<Endpoint>, Error> {
        let conf = self.conf()?;
        let mut out: Vec<Endpoint> = conf
            .mirrors(&reference.registry)
            .into_iter()
            .map(|m| Endpoint {
                repository: match &m.prefix {
                    Some(p) => format!("{p}/{}", reference.repository),
                    None => reference.repository.clone(),
                },
                cred_key: m.host.clone(),
                host: m.host,
            })
            .collect();
        out.push(Endpoint {
            host: reference.api_host().to_string(),
            repository: reference.repository.clone(),
            cred_key: reference.registry.clone(),
        });
        Ok(out)
    }
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;

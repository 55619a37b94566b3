//! How a `Spec` is read from a container's `config.json`, including records written by
//! earlier versions of box:
//! - `network` was a mode name (`"pasta"`, `"container"`, ...) with the plan, when there
//!   was one, in `network_plan`; now it is the plan itself;
//! - limits were the flags as given, in `resources`; now they are `limits`, validated;
//! - `userns`, `restart` and `sdnotify` were and are text (`"keep-id"`, `"on-failure:3"`,
//!   `"ready"`), now read into their types.
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::{Mount, RestartPolicy, Rootfs, SdNotify, Seccomp, Spec};
use crate::cgroup::{LimitFlags, Limits};
use crate::network::{Mode, Plan};

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredNetwork {
    Plan(Plan),
    /// The mode's name, as records before the plan was the network said.
    Name(String),
}

#[derive(Deserialize)]
pub(super) struct Stored {
    args: Vec<String>,
    env: Vec<String>,
    cwd: String,
    user: String,
    hostname: String,
    tty: bool,
    interactive: bool,
    read_only: bool,
    mounts: Vec<Mount>,
    network: StoredNetwork,
    #[serde(default)]
    network_plan: Option<Plan>,
    #[serde(default)]
    publish: Vec<String>,
    #[serde(default)]
    dns: Vec<String>,
    #[serde(default)]
    add_hosts: Vec<String>,
    #[serde(default)]
    userns: crate::userns::Mode,
    caps: Vec<String>,
    seccomp: Seccomp,
    no_new_privileges: bool,
    privileged: bool,
    init: bool,
    rootfs: Rootfs,
    #[serde(default)]
    limits: Option<Limits>,
    #[serde(default)]
    resources: Option<LimitFlags>,
    #[serde(default)]
    stop_signal: Option<String>,
    #[serde(default)]
    stop_timeout: Option<u64>,
    #[serde(default)]
    sdnotify: SdNotify,
    #[serde(default)]
    restart: RestartPolicy,
    #[serde(default)]
    pod: Option<super::PodLink>,
    #[serde(default)]
    networks: Vec<String>,
    #[serde(default)]
    network_aliases: Vec<String>,
    #[serde(default)]
    ip: Option<std::net::Ipv4Addr>,
    #[serde(default)]
    healthcheck: Option<super::health::Healthcheck>,
    #[serde(default)]
    health_on_failure: super::health::OnFailure,
    #[serde(default)]
    settings: super::Settings,
}

impl From<Stored> for Spec {
    fn from(s: Stored) -> Spec {
        let network = match (s.network, s.network_plan) {
            (StoredNetwork::Plan(p), _) | (StoredNetwork::Name(_), Some(p)) => p,
            (StoredNetwork::Name(name), None) => Plan {
                mode: match name.as_str() {
                    "slirp4netns" => Mode::Slirp4netns,
                    "none" => Mode::None,
                    "host" => Mode::Host,
                    // A join without its plan never existed; keep the container offline.
                    "container" => Mode::None,
                    _ => Mode::Pasta,
                },
                ports: Vec::new(),
            },
        };
        // Flags that passed at create pass again, unless the host changed (fewer CPUs):
        // then the container starts without them rather than not at all.
        let limits = s
            .limits
            .or_else(|| s.resources.and_then(|r| Limits::parse(&r).ok()))
            .unwrap_or_default();
        Spec {
            args: s.args,
            env: s.env,
            cwd: s.cwd,
            user: s.user,
            hostname: s.hostname,
            tty: s.tty,
            interactive: s.interactive,
            read_only: s.read_only,
            mounts: s.mounts,
            network,
            publish: s.publish,
            dns: s.dns,
            add_hosts: s.add_hosts,
            userns: s.userns,
            caps: s.caps,
            seccomp: s.seccomp,
            no_new_privileges: s.no_new_privileges,
            privileged: s.privileged,
            init: s.init,
            rootfs: s.rootfs,
            limits,
            stop_signal: s.stop_signal,
            stop_timeout: s.stop_timeout,
            sdnotify: s.sdnotify,
            restart: s.restart,
            pod: s.pod,
            networks: s.networks,
            network_aliases: s.network_aliases,
            ip: s.ip,
            healthcheck: s.healthcheck,
            health_on_failure: s.health_on_failure,
            settings: s.settings,
        }
    }
}

/// Types stored as their command-line text.
macro_rules! as_text {
    ($t:ty, $show:expr, $read:expr) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let show: fn(&$t) -> String = $show;
                s.serialize_str(&show(self))
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                let read: fn(&str) -> Option<$t> = $read;
                read(&text).ok_or_else(|| {
                    serde::de::Error::custom(format!("{text:?} is not a valid {}", stringify!($t)))
                })
            }
        }
    };
}

as_text!(SdNotify, |m| m.name().to_string(), |t| Some(
    SdNotify::from_name(t)
));
as_text!(RestartPolicy, |p| p.to_string(), |t| RestartPolicy::parse(
    t
)
.ok());
as_text!(
    crate::userns::Mode,
    |m| m.name().to_string(),
    crate::userns::Mode::parse
);

#[cfg(test)]
mod tests {
    use super::*;

    /// A record as box wrote it before the spec was typed.
    const OLD: &str = r#"{"args":["sleep","300"],"env":["PATH=/bin"],"cwd":"/","user":"",
        "hostname":"","tty":false,"interactive":false,"read_only":false,
        "mounts":[{"type":"tmpfs","target":"/t","options":[]}],
        "network":"pasta","network_plan":{"mode":"pasta","ports":[]},
        "publish":[],"dns":[],"add_hosts":[],"userns":"keep-id","caps":["CAP_CHOWN"],
        "seccomp":"default","no_new_privileges":false,"privileged":false,"init":false,
        "rootfs":{"driver":"overlay","layers":[]},
        "resources":{"memory":"64m","memory_swap":null,"cpus":null,"cpu_quota":null,
            "cpu_period":null,"cpu_shares":null,"cpu_weight":null,"pids_limit":16,
            "cpuset_cpus":null},
        "stop_signal":"SIGINT","stop_timeout":null,"sdnotify":"","restart":"on-failure:3"}"#;

    #[test]
    fn records_before_the_typed_spec_load() {
        let s: Spec = serde_json::from_str(OLD).unwrap();
        assert_eq!(s.network.mode, Mode::Pasta);
        assert_eq!(s.userns, crate::userns::Mode::KeepId);
        assert_eq!(s.restart, RestartPolicy::OnFailure(Some(3)));
        assert_eq!(s.sdnotify, SdNotify::Container);
        assert_eq!(s.limits.memory, Some(64 << 20));
        assert_eq!(s.limits.pids, crate::cgroup::Pids::Max(16));
        // Without podman's further settings: the defaults.
        assert_eq!(s.settings, super::super::Settings::default());
        // Written back in the new form, read again the same.
        let again: Spec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
    }

    #[test]
    fn settings_round_trip_and_partial_ones_load() {
        let mut s: Spec = serde_json::from_str(OLD).unwrap();
        s.settings.ulimits = vec![super::super::Ulimit::parse("nofile=10:20").unwrap()];
        s.settings.umask = Some(0o077);
        s.settings.log.driver = super::super::LogDriver::None;
        let again: Spec = serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(again, s);
        // A record with only some settings (written by an older box of this series).
        let partial = OLD.replace(
            r#""restart":"on-failure:3"}"#,
            r#""restart":"on-failure:3","settings":{"umask":18}}"#,
        );
        let p: Spec = serde_json::from_str(&partial).unwrap();
        assert_eq!(p.settings.umask, Some(0o22));
        assert!(p.settings.ulimits.is_empty());
    }

    #[test]
    fn an_old_join_or_host_network_keeps_its_mode() {
        let host = OLD
            .replace(r#""network":"pasta""#, r#""network":"host""#)
            .replace(r#""network_plan":{"mode":"pasta","ports":[]},"#, "");
        let s: Spec = serde_json::from_str(&host).unwrap();
        assert_eq!(s.network.mode, Mode::Host);
        let join = OLD.replace(
            r#""network":"pasta","network_plan":{"mode":"pasta","ports":[]}"#,
            r#""network":"container","network_plan":{"mode":{"container":"db"},"ports":[]}"#,
        );
        let s: Spec = serde_json::from_str(&join).unwrap();
        assert_eq!(s.network_container(), Some("db"));
    }
}

//! box: a rootless, daemonless container CLI.
//!
//! Module map (each module owns one thiserror enum; anyhow only in `cli`/`commands`):
//! - `cli`: the clap definition (one table drives parser, help, man pages, completions) and dispatch.
//!   `cli::complete`: shell completion (classify / scan / live / shells); live names come from
//!   the lock-free readers `storage::read`, `container::read`, `volume::Volumes::names`,
//!   `registry::auth::registries`.
//! - `commands`: one file per user-facing command family, parse → plan → execute (flags and
//!   output; the work is done by the library modules); `commands::table` is the one table
//!   printer.
//! - `paths`: per-user data, runtime and config directories.
//! - `driver`: which rootfs driver works here (overlay in userns, fuse-overlayfs, copy).
//! - `exit`: docker's exit-code convention.
//! - `events`: the per-user append-only event log behind `box events` (written by the
//!   invocation that causes each event; rotated; followed with inotify).
//! - `lock`: the one file lock (flock, shared/exclusive, timeout, the holder named); a leaf
//!   used by `storage`, `container` and `volume`.
//! - `registry`: OCI distribution client (references, auth, manifests, blobs) and its push
//!   side (`registry::upload`: mounts, monolithic and chunked uploads, manifests).
//! - `storage`: content-addressed per-user store, image records; `storage::unpack` (layer
//!   writer and the unpack helper), `storage::pull` (the pull pipeline behind `pull`, `run`
//!   and `create`), `storage::archive` (import, load, save), `storage::layer` (a container's
//!   changes as a layer: commit, diff, export), `storage::push`, `storage::usage::disk_usage`
//!   (the one directory-size walker).
//! - `userns`: subuid/subgid ranges, newuidmap/newgidmap, re-exec into a user namespace.
//! - `spec`: what a container is (the typed `Spec` stored in its record); a leaf.
//! - `run`: container creation (namespaces, rootfs, security) and supervision.
//! - `container`: persistent container records and state.
//! - `kube`: Kubernetes YAML (Pod, Deployment, ConfigMap, Secret, PersistentVolumeClaim)
//!   read into a checked plan for `box kube play` (serde_yaml); `commands::kube` makes it.
//! - `usernet`: user networks (`box network ...`, `run --network NAME`): records in netavark's
//!   format, address leases, netavark setup/teardown in the shared namespace's holder,
//!   aardvark-dns records of containers that leave (`usernet::dns`),
//!   `network connect|disconnect` of running containers (`usernet::connect`), IPv6
//!   subnets and addresses (`usernet::ipv6`), the holder's pasta coming up while the first
//!   container is plugged in (`usernet::helper_ready`).
//! - `pod`: pod records (name, what is shared, the infra container's id); a pod's infra
//!   container is a container record running box's pause program (`run::pause`).
//! - `cgroup`: cgroup v2 detection, delegation and limits.
//! - `network`: rootless networking helpers (pasta, slirp4netns).
//! - `systemd`: sd_notify, NOTIFY_SOCKET for containers, delegated scopes over D-Bus, units
//!   (`generate systemd`) and Quadlet files made into units (`systemd::quadlet`).
//! - `template`: Go text/template subset for `--format`.
//! - `monitor`: detached containers' monitor, logs, state truth, stop/kill/wait
//!   (`monitor::stop`), exec, cp, top, pause, healthchecks (`monitor::health`).
//! - `volume`: named volumes in the per-user store.
//! - `build`: `box build`'s front end: Containerfile parser, ARG/ENV expansion, ignore files,
//!   stage plan.
//! - `builder`: `box build`'s executor: each stage's instructions through the build
//!   cache; RUN in a temporary container (`run`), COPY/ADD as layer tars, the image
//!   recorded only at the end (`storage::archive`); the build containers of killed builds
//!   found and removed (`stale`).
//! - `units`: sizes and times for people and records (docker's `12.3MB`, `3 minutes ago`,
//!   RFC 3339); a leaf, so every module prints them one way.
pub mod build;
pub mod builder;
pub mod cgroup;
pub mod cli;
pub mod commands;
pub mod container;
pub mod driver;
pub mod events;
pub mod exit;
pub mod kube;
pub mod lock;
pub mod monitor;
pub mod network;
pub mod paths;
pub mod pod;
pub mod registry;
pub mod run;
pub mod spec;
pub mod storage;
pub mod systemd;
pub mod template;
pub mod units;
pub mod usernet;
pub mod userns;
pub mod volume;

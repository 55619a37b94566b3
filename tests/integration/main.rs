//! The one integration-test binary: every test runs `box` as the unprivileged `boxtest` user
//! against a real registry. See `harness` for the set-up (run as root: `sudo scripts/test`).
//!
//! Add a feature's tests as `tests/integration/<feature>.rs` and one `mod <feature>;` line
//! below. Keep `harness` first: its `require_env!` macro is visible to the modules after it.

#[macro_use]
mod harness;

mod auto_update;
mod build;
mod cgroup;
mod commit;
mod completion;
mod concurrency;
mod crash;
mod docs;
mod escape;
mod events;
mod h_pull;
mod health;
mod hostile;
mod hostile_container;
mod hostile_run;
mod hostile_store;
mod hostile_unpack;
mod kube;
mod lifecycle;
mod lock;
mod network;
mod parity_cli;
mod parity_cp;
mod parity_lifecycle;
mod parity_list;
mod parity_mounts;
mod parity_names;
mod parity_prune;
mod parity_run;
mod parity_unshare;
mod parity_volume;
mod pod;
mod push;
mod quadlet;
mod registry;
mod run;
mod smoke;
mod storage;
mod user_network;

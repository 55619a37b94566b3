//! cgroup v2: detection, delegation, per-container leaves and limits.

//! Rootless networking: pasta / slirp4netns helpers, port publishing, DNS and hosts.

//! Container creation and supervision: namespaces, rootfs, security, pty, signals.

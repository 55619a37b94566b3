//! OCI distribution client: references, auth, manifests and verified blob downloads.

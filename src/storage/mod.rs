//! Per-user content-addressed store: blobs, image records, unpacked layers, locks.

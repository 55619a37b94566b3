//! Lock-free, read-only listing of image records, for callers that must never block or write
//! (shell completion): the store lock is not taken and nothing is created.
//!
//! This is safe without the lock because every record is written whole under a temporary
//! name and renamed into place: a reader sees the old record or the new one.
use crate::paths::Paths;

use super::{Image, Store, lock};

/// Every readable image record of `paths`, newest first (as [`Store::images`] lists them).
/// Unreadable or corrupt records are skipped; a store that does not exist yet has none.
pub fn images(paths: &Paths) -> Vec<Image> {
    // Not `Store::open`: that creates directories.
    let store = Store {
        root: paths.store(),
        data: paths.data.clone(),
        lock_timeout: lock::default_timeout(),
    };
    store
        .images_and_errors()
        .map(|(images, _unreadable)| images)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_committed_records_and_skips_the_rest_without_locking() {
        let t = tempfile::tempdir().unwrap();
        let p = Paths {
            data: t.path().join("data"),
            runtime: t.path().join("run"),
            config: t.path().join("config"),
        };
        assert!(images(&p).is_empty(), "no store yet: nothing, and no error");
        assert!(!p.store().exists(), "reading creates nothing");

        let store = Store::open_at(&p.store(), &p.data).unwrap();
        let image = Image {
            id: "a".repeat(64),
            names: vec!["docker.io/library/alpine:latest".into()],
            repo_digests: vec![],
            manifest_digest: None,
            manifest_media_type: None,
            config: crate::storage::tests::config(),
            diff_ids: vec![],
            layers: vec![],
            stored: 0,
            size: 0,
            layer_root: None,
        };
        store
            .commit_image(image, &["docker.io/library/alpine:latest".into()])
            .unwrap();
        // Half-written and foreign files are skipped.
        std::fs::write(
            store.images_dir().join(format!("{}.json", "b".repeat(64))),
            b"{\"id\":",
        )
        .unwrap();
        std::fs::write(store.images_dir().join("notes.txt"), b"x").unwrap();

        // Another process holds the store lock exclusively: reading does not wait for it.
        let _held = store.lock_exclusive().unwrap();
        let got = images(&p);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].id, "a".repeat(64));
        assert_eq!(got[0].names, ["docker.io/library/alpine:latest"]);
    }
}

//! Lock-free, read-only listing of volume names, for callers that must never block or write
//! (shell completion): unlike [`Volumes::list`], a data directory without a record is not
//! adopted (no record is written) and the volumes lock is not taken.
use super::Volumes;

impl Volumes {
    /// The names of every volume, sorted: directories holding a `volume.json` or a `_data/`
    /// (`-v NAME:/path` may have made only the latter). Directories being created (`.tmp-*`)
    /// are skipped; a store that does not exist yet has none.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root())
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| {
                let dir = self.root().join(n);
                !n.starts_with('.')
                    && (dir.join("volume.json").is_file() || dir.join("_data").is_dir())
            })
            .collect();
        names.sort();
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_without_adopting_or_creating() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("volumes");
        assert!(Volumes::at(&root).names().is_empty());
        assert!(!root.exists(), "reading creates nothing");

        let v = Volumes::at(&root);
        std::fs::create_dir(&root).unwrap();
        v.create(Some("made"), Default::default()).unwrap();
        std::fs::create_dir_all(root.join("direct/_data")).unwrap();
        std::fs::create_dir_all(root.join(".tmp-1-half/_data")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        assert_eq!(v.names(), ["direct", "made"]);
        assert!(
            !root.join("direct/volume.json").exists(),
            "a bare data dir is listed, not adopted"
        );
    }
}

//! How much disk a tree takes: the one directory-size walker behind `system df`,
//! `container prune`/`system prune` ("Total reclaimed space") and `volume prune`.
//!
//! Here because `storage` owns the per-user data directory, and what `remove::remove_trees`
//! frees is what this counts.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Blocks in use under `p`, `p` included, in bytes (`du -s --block-size=1`): what removing
/// it frees; a sparse file counts what it holds, not its length. Symlinks are not followed;
/// what cannot be read (a directory owned by a subordinate id) counts as its own entry only.
/// Iterative: a container can make a tree deeper than the stack.
pub fn disk_usage(p: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![p.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(md) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        total += md.blocks() * 512;
        if md.is_dir()
            && let Ok(rd) = std::fs::read_dir(&p)
        {
            stack.extend(rd.flatten().map(|e| e.path()));
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_blocks_not_lengths_nor_symlink_targets() {
        let t = tempfile::tempdir().unwrap();
        assert_eq!(disk_usage(&t.path().join("missing")), 0);
        let empty = disk_usage(t.path());
        // A sparse file of 1 GiB holds no block.
        let f = std::fs::File::create(t.path().join("sparse")).unwrap();
        f.set_len(1 << 30).unwrap();
        assert!(disk_usage(t.path()) - empty < 1 << 20);
        std::fs::write(t.path().join("data"), vec![1u8; 1 << 20]).unwrap();
        assert!(disk_usage(t.path()) - empty >= 1 << 20);
        std::os::unix::fs::symlink("/", t.path().join("root")).unwrap();
        assert!(disk_usage(t.path()) < 1 << 30, "symlinks are not followed");
    }
}

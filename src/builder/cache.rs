//! The build cache: `<store>/buildcache/<key>.json`, one file per step, holding the state
//! the step produced. The key is the sha256 of the parent state's id, the instruction as
//! expanded, the ARGs in effect and the digest of what the step reads (COPY sources).
//! Entries are written atomically (tmp + rename) and trusted only while every layer they
//! name is still in the store (`rmi` and prune may remove layers no image uses).
use std::path::PathBuf;

use serde_json::json;
use sha2::{Digest, Sha256};

use super::state::State;
use crate::storage::Store;

pub(crate) struct Cache<'a> {
    store: &'a Store,
    dir: PathBuf,
}

/// A step's cache key.
pub(crate) fn key(parent: &State, step: &str, args: &[(String, String)], content: &str) -> String {
    let mut args = args.to_vec();
    args.sort();
    let v = json!({"parent": parent.id(), "step": step, "args": args, "content": content});
    hex::encode(Sha256::digest(v.to_string().as_bytes()))
}

impl<'a> Cache<'a> {
    pub fn open(store: &'a Store) -> Cache<'a> {
        Cache {
            store,
            dir: store.root().join("buildcache"),
        }
    }

    /// The state a step with `key` made before, if its layers are all still stored.
    pub fn get(&self, key: &str) -> Option<State> {
        let bytes = std::fs::read(self.dir.join(format!("{key}.json"))).ok()?;
        let state: State = serde_json::from_slice(&bytes).ok()?;
        let complete = state.diff_ids.len() == state.layers.len()
            && state.diff_ids.iter().all(|d| self.store.has_layer(d))
            && state.layers.iter().all(|l| self.store.has_blob(&l.digest));
        complete.then_some(state)
    }

    /// Remember what the step with `key` made (a failure to write only costs a rebuild).
    pub fn put(&self, key: &str, state: &State) {
        if std::fs::create_dir_all(&self.dir).is_err() {
            return;
        }
        if let Ok(bytes) = serde_json::to_vec(state) {
            let _ = self
                .store
                .write_atomic(&self.dir.join(format!("{key}.json")), &bytes);
        }
    }
}

/// Remove the cache entries whose layers or blobs are gone (every entry with `all`), as
/// `image prune` / `system prune` do after removing layers; returns how many went. The
/// caller holds the store's exclusive lock (so no build is between its layer and its
/// entry); each entry goes with one unlink (entries are written by rename, so whole).
pub fn prune_locked(store: &Store, all: bool) -> usize {
    let cache = Cache::open(store);
    let Ok(rd) = std::fs::read_dir(&cache.dir) else {
        return 0;
    };
    let mut removed = 0;
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let stale = match name.strip_suffix(".json") {
            Some(key) if !all => cache.get(key).is_none(),
            _ => true,
        };
        if stale && std::fs::remove_file(e.path()).is_ok() && name.ends_with(".json") {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_change_with_each_part() {
        let s = State::scratch("amd64");
        let a = vec![("A".to_string(), "1".to_string())];
        let k = key(&s, "RUN x", &a, "");
        assert_eq!(k, key(&s, "RUN x", &a, ""));
        assert_ne!(k, key(&s, "RUN y", &a, ""));
        assert_ne!(k, key(&s, "RUN x", &[], ""));
        assert_ne!(k, key(&s, "RUN x", &a, "sha256:1"));
        let mut t = s.clone();
        t.set_env("X", "1");
        assert_ne!(k, key(&t, "RUN x", &a, ""));
    }
}

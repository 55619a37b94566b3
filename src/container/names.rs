//! Names: random `adjective_noun` container names, as docker and podman give, and the
//! `names/` index of a record store (containers, pods), where a name is reserved.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// Why a name could not be reserved.
#[derive(Debug)]
pub enum Reserve {
    /// Another record (this id) has it.
    InUse(String),
    /// The index entry could not be made.
    Io(PathBuf, io::Error),
}

/// Reserve `name` for `id` in the store at `root`: `root/names/NAME`, a symlink to the id,
/// made exclusively. An entry whose record (`root/<id>/<record>`, e.g. `config.json`) is
/// gone is dangling and reclaimed.
pub fn reserve(root: &Path, record: &str, name: &str, id: &str) -> Result<(), Reserve> {
    let link = root.join("names").join(name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let other = fs::read_link(&link)
                .map(|p| p.to_string_lossy().into_owned())
                .unwrap_or_default();
            if !other.is_empty() && !root.join(&other).join(record).exists() {
                let _ = fs::remove_file(&link);
                return std::os::unix::fs::symlink(id, &link).map_err(|e| Reserve::Io(link, e));
            }
            Err(Reserve::InUse(other))
        }
        Err(e) => Err(Reserve::Io(link, e)),
    }
}

const ADJECTIVES: &[&str] = &[
    "agile", "amazing", "bold", "brave", "bright", "busy", "calm", "clever", "cool", "crisp",
    "curious", "daring", "eager", "elegant", "epic", "fast", "fervent", "focused", "gentle",
    "happy", "hardy", "honest", "jolly", "keen", "kind", "lucid", "lucky", "merry", "mighty",
    "modest", "nifty", "noble", "patient", "plucky", "proud", "quick", "quiet", "relaxed",
    "serene", "sharp", "silly", "sleepy", "smart", "stoic", "sunny", "swift", "tender", "tidy",
    "upbeat", "vivid", "wise", "witty", "zealous", "zen",
];

const NOUNS: &[&str] = &[
    "albatross",
    "badger",
    "beaver",
    "bison",
    "caracal",
    "cheetah",
    "cormorant",
    "coyote",
    "crane",
    "dingo",
    "dolphin",
    "eagle",
    "ferret",
    "finch",
    "gazelle",
    "gecko",
    "heron",
    "ibex",
    "jackal",
    "kestrel",
    "koala",
    "lemur",
    "lynx",
    "marmot",
    "meerkat",
    "mole",
    "narwhal",
    "ocelot",
    "orca",
    "osprey",
    "otter",
    "panda",
    "pelican",
    "puffin",
    "quokka",
    "raven",
    "salmon",
    "seal",
    "sparrow",
    "stoat",
    "swan",
    "tapir",
    "tern",
    "toucan",
    "turtle",
    "urchin",
    "vole",
    "walrus",
    "wombat",
    "wren",
    "yak",
    "zebra",
];

/// A random `adjective_noun`.
pub fn random_name() -> String {
    let mut b = [0u8; 4];
    super::fill_random(&mut b);
    let a = u16::from_le_bytes([b[0], b[1]]) as usize % ADJECTIVES.len();
    let n = u16::from_le_bytes([b[2], b[3]]) as usize % NOUNS.len();
    format!("{}_{}", ADJECTIVES[a], NOUNS[n])
}

#[cfg(test)]
mod tests {
    #[test]
    fn names_are_valid() {
        for _ in 0..50 {
            super::super::validate_name(&super::random_name()).unwrap();
        }
    }

    #[test]
    fn a_name_is_reserved_once_and_a_dangling_one_reclaimed() {
        let t = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(t.path().join("names")).unwrap();
        std::fs::create_dir_all(t.path().join("aaa")).unwrap();
        std::fs::write(t.path().join("aaa/pod.json"), "{}").unwrap();
        super::reserve(t.path(), "pod.json", "web", "aaa").unwrap();
        match super::reserve(t.path(), "pod.json", "web", "bbb") {
            Err(super::Reserve::InUse(other)) => assert_eq!(other, "aaa"),
            r => panic!("{r:?}"),
        }
        // aaa's record is gone: its name is free again.
        std::fs::remove_file(t.path().join("aaa/pod.json")).unwrap();
        super::reserve(t.path(), "pod.json", "web", "bbb").unwrap();
        let link = std::fs::read_link(t.path().join("names/web")).unwrap();
        assert_eq!(link, std::path::Path::new("bbb"));
        assert!(matches!(
            super::reserve(&t.path().join("missing"), "pod.json", "x", "c"),
            Err(super::Reserve::Io(..))
        ));
    }
}

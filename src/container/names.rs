//! Random `adjective_noun` container names, as docker and podman give.

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
}

//! The unique-prefix match of a short id among full ids, shared by the container and pod
//! stores (each maps the outcome to its own error).

/// What a prefix matched.
#[derive(Debug, PartialEq, Eq)]
pub enum Match {
    /// Exactly one id.
    One(String),
    /// No id.
    None,
    /// More than one id.
    Ambiguous,
}

/// The id among `ids` that starts with `prefix`, if it is the only one.
pub fn by_prefix(prefix: &str, ids: impl IntoIterator<Item = String>) -> Match {
    let mut found = None;
    for id in ids.into_iter().filter(|id| id.starts_with(prefix)) {
        if found.is_some() {
            return Match::Ambiguous;
        }
        found = Some(id);
    }
    found.map_or(Match::None, Match::One)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unique_none_and_ambiguous() {
        let ids = || ["abc1".to_string(), "abd2".to_string(), "ff".to_string()];
        assert_eq!(by_prefix("abc", ids()), Match::One("abc1".into()));
        assert_eq!(by_prefix("ff", ids()), Match::One("ff".into()));
        assert_eq!(by_prefix("ab", ids()), Match::Ambiguous);
        assert_eq!(by_prefix("0", ids()), Match::None);
    }
}

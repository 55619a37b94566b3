//! Content digests (`sha256:<hex>`, `sha512:<hex>`), computed while streaming.
use sha2::{Digest as _, Sha256, Sha512};

use super::Error;

/// An incremental hasher for the algorithm of a given digest.
pub(crate) enum Hasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl Hasher {
    /// A hasher for the algorithm `digest` names.
    pub fn for_digest(digest: &str) -> Result<Hasher, Error> {
        match digest.split_once(':') {
            Some(("sha256", hex)) if is_hex(hex, 64) => Ok(Hasher::Sha256(Sha256::new())),
            Some(("sha512", hex)) if is_hex(hex, 128) => Ok(Hasher::Sha512(Sha512::new())),
            _ => Err(Error::UnsupportedDigest {
                digest: digest.chars().take(200).collect(),
            }),
        }
    }

    pub fn sha256() -> Hasher {
        Hasher::Sha256(Sha256::new())
    }

    pub fn update(&mut self, data: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(data),
            Hasher::Sha512(h) => h.update(data),
        }
    }

    /// `algorithm:hex`.
    pub fn finish(self) -> String {
        match self {
            Hasher::Sha256(h) => format!("sha256:{}", hex::encode(&h.finalize()[..])),
            Hasher::Sha512(h) => format!("sha512:{}", hex::encode(&h.finalize()[..])),
        }
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// `sha256:<hex>` of `data`.
pub(crate) fn sha256_of(data: &[u8]) -> String {
    let mut h = Hasher::sha256();
    h.update(data);
    h.finish()
}

/// Check that `data` has digest `expected` (sha256 or sha512); `what` names it in the error.
pub fn verify_digest(what: &str, expected: &str, data: &[u8]) -> Result<(), Error> {
    let mut h = Hasher::for_digest(expected)?;
    h.update(data);
    let actual = h.finish();
    if actual != expected {
        return Err(Error::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        assert_eq!(
            sha256_of(b"{}"),
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        verify_digest(
            "x",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            b"{}",
        )
        .unwrap();
        let e = verify_digest(
            "config",
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
            b"{ }",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("digest mismatch for config"));
        let mut h = Hasher::for_digest(&format!("sha512:{}", "0".repeat(128))).unwrap();
        h.update(b"abc");
        assert!(h.finish().starts_with("sha512:ddaf35a193617aba"));
        assert!(Hasher::for_digest("md5:00").is_err());
        assert!(Hasher::for_digest("sha256:XYZ").is_err());
    }
}

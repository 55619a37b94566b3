//! Platforms (`linux/arm64/v8`) and choosing one entry of an image index or manifest list.
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use super::Error;

/// An image platform as in OCI indexes: os, architecture and an optional CPU variant.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    pub variant: Option<String>,
}

impl Platform {
    /// The platform of this host: linux plus GOARCH naming of the CPU (amd64, arm64, arm/v7…).
    pub fn host() -> Platform {
        let (arch, variant) = match std::env::consts::ARCH {
            "x86_64" => ("amd64", None),
            "x86" => ("386", None),
            "aarch64" => ("arm64", None),
            "arm" => ("arm", Some("v7")),
            "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
            "powerpc64" => ("ppc64", None),
            "powerpc" => ("ppc", None),
            "riscv64" => ("riscv64", None),
            "s390x" => ("s390x", None),
            "loongarch64" => ("loong64", None),
            "mips64" if cfg!(target_endian = "little") => ("mips64le", None),
            "mips64" => ("mips64", None),
            "mips" if cfg!(target_endian = "little") => ("mipsle", None),
            other => (other, None),
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            variant: variant.map(String::from),
        }
    }

    /// Parse `os/arch[/variant]`, e.g. `linux/arm64/v8`; common aliases (x86_64, aarch64,
    /// armhf) are normalised.
    pub fn parse(s: &str) -> Result<Platform, Error> {
        let bad = |reason: &str| Error::InvalidPlatform {
            input: s.chars().take(100).collect(),
            reason: reason.to_string(),
        };
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) {
            return Err(bad("expected os/arch or os/arch/variant"));
        }
        let valid = |p: &str| {
            !p.is_empty()
                && p.len() <= 32
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
        };
        if !parts.iter().all(|p| valid(p)) {
            return Err(bad(
                "each part must be a non-empty word of letters and digits",
            ));
        }
        let os = parts[0].to_ascii_lowercase();
        let (architecture, variant) = normalise_arch(
            &parts[1].to_ascii_lowercase(),
            parts.get(2).map(|v| v.to_ascii_lowercase()),
        );
        Ok(Platform {
            os,
            architecture,
            variant,
        })
    }

    /// How well an entry's platform fits this wanted platform; None when it cannot run.
    fn score(&self, os: &str, arch: &str, variant: Option<&str>) -> Option<u32> {
        let (arch, variant) = normalise_arch(
            &arch.to_ascii_lowercase(),
            variant.map(|v| v.to_ascii_lowercase()),
        );
        if !os.eq_ignore_ascii_case(&self.os) || arch != self.architecture {
            return None;
        }
        let want = canonical_variant(&arch, self.variant.as_deref());
        let have = canonical_variant(&arch, variant.as_deref());
        match (want, have) {
            (w, h) if w == h => Some(100),
            // unspecified: anything of the architecture, variant-less (baseline) first
            (None, Some(_)) => Some(50),
            (Some(w), h) if arch == "arm" => {
                // an armv7 CPU runs v6 and v5 code; a variant-less arm entry is a last resort
                let level = |v: &str| v.strip_prefix('v').and_then(|n| n.parse::<u32>().ok());
                match (level(&w), h.as_deref().map(level)) {
                    (Some(w), Some(Some(h))) if h < w => Some(50 + h),
                    (_, None) => Some(10),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// arm64's v8 is its baseline, written or not.
fn canonical_variant(arch: &str, variant: Option<&str>) -> Option<String> {
    match (arch, variant) {
        ("arm64", Some("v8" | "8" | "v8.0")) => None,
        (_, Some("")) | (_, None) => None,
        (_, Some(v)) => Some(v.to_string()),
    }
}

fn normalise_arch(arch: &str, variant: Option<String>) -> (String, Option<String>) {
    // "7" and "8.2" mean v7 and v8.2; any other word is kept as it is (so that the printed
    // form, still within the 32-character limit, parses back to the same platform).
    let fix_v = |v: Option<String>| {
        v.map(|v| {
            let number =
                !v.is_empty() && v.len() < 32 && v.bytes().all(|b| b.is_ascii_digit() || b == b'.');
            if number { format!("v{v}") } else { v }
        })
    };
    match arch {
        "x86_64" | "x86-64" | "amd64" => ("amd64".into(), variant),
        "aarch64" | "arm64" => ("arm64".into(), fix_v(variant)),
        "armhf" | "armv7l" | "armv7" => ("arm".into(), Some("v7".into())),
        "armel" | "armv6l" | "armv6" => ("arm".into(), Some("v6".into())),
        "arm" => ("arm".into(), fix_v(variant)),
        "i386" | "i686" | "x86" | "386" => ("386".into(), variant),
        other => (other.into(), variant),
    }
}

impl fmt::Display for Platform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Platform::parse(s)
    }
}

/// The parts of an OCI image index / Docker manifest list entry that selection needs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct IndexEntry {
    #[serde(rename = "mediaType", default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<EntryPlatform>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct EntryPlatform {
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl fmt::Display for EntryPlatform {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match self.variant.as_deref() {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct Index {
    #[serde(default)]
    pub manifests: Vec<IndexEntry>,
}

/// Pick the entry of an index that best runs on `want`; Err carries the platforms on offer
/// (attestations and other `unknown/unknown` entries left out).
pub(crate) fn select<'a>(
    entries: &'a [IndexEntry],
    want: &Platform,
) -> Result<&'a IndexEntry, Vec<String>> {
    let mut best: Option<(u32, &IndexEntry)> = None;
    for e in entries {
        let Some(p) = &e.platform else { continue };
        if let Some(s) = want.score(&p.os, &p.architecture, p.variant.as_deref())
            && best.is_none_or(|(b, _)| s > b)
        {
            best = Some((s, e));
        }
    }
    match best {
        Some((_, e)) => Ok(e),
        None => {
            let mut avail: Vec<String> = entries
                .iter()
                .filter_map(|e| e.platform.as_ref())
                .filter(|p| p.os != "unknown" && !p.os.is_empty())
                .map(|p| p.to_string())
                .collect();
            avail.dedup();
            Err(avail)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plat(s: &str) -> Platform {
        Platform::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display() {
        assert_eq!(plat("linux/arm64/v8").to_string(), "linux/arm64/v8");
        assert_eq!(plat("linux/amd64").to_string(), "linux/amd64");
        assert_eq!(plat("linux/x86_64").to_string(), "linux/amd64");
        assert_eq!(plat("linux/aarch64").to_string(), "linux/arm64");
        assert_eq!(plat("linux/armhf").to_string(), "linux/arm/v7");
        assert_eq!(plat("Linux/ARM/7").to_string(), "linux/arm/v7");
        assert_eq!(plat("linux/arm64/8.2").to_string(), "linux/arm64/v8.2");
        // Found by fuzz/ (platform): a 32-character word variant got a 'v' and its printed
        // form no longer parsed.
        let long = plat("a/arm/namlnn8aAuw0aml71mw0amd64mn4mav4");
        assert_eq!(plat(&long.to_string()), long);
        for bad in [
            "",
            "linux",
            "linux/",
            "/amd64",
            "linux/amd64/v8/x",
            "linux/am d64",
            "a//b",
        ] {
            let e = Platform::parse(bad).unwrap_err().to_string();
            assert!(e.contains("platform") && !e.contains('\n'), "{bad}: {e}");
        }
        let h = Platform::host();
        assert_eq!(h.os, "linux");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(h.to_string(), "linux/amd64");
        }
        if cfg!(target_arch = "aarch64") {
            assert_eq!(h.to_string(), "linux/arm64");
        }
    }

    const INDEX: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:s390","size":1,
         "platform":{"architecture":"s390x","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:armv6","size":1,
         "platform":{"architecture":"arm","os":"linux","variant":"v6"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:armv7","size":1,
         "platform":{"architecture":"arm","os":"linux","variant":"v7"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:amd64v3","size":1,
         "platform":{"architecture":"amd64","os":"linux","variant":"v3"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:amd64","size":1,
         "platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:arm64","size":1,
         "platform":{"architecture":"arm64","os":"linux","variant":"v8"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:att","size":1,
         "annotations":{"vnd.docker.reference.type":"attestation-manifest"},
         "platform":{"architecture":"unknown","os":"unknown"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:win","size":1,
         "platform":{"architecture":"amd64","os":"windows","os.version":"10.0.17763.1"}}
      ]
    }"#;

    fn pick(want: &str) -> Result<String, Vec<String>> {
        let idx: Index = serde_json::from_str(INDEX).unwrap();
        select(&idx.manifests, &plat(want)).map(|e| e.digest.clone())
    }

    #[test]
    fn selects_the_right_entry() {
        assert_eq!(pick("linux/amd64").unwrap(), "sha256:amd64");
        assert_eq!(pick("linux/amd64/v3").unwrap(), "sha256:amd64v3");
        // arm64 without a variant matches v8, and so does an explicit v8
        assert_eq!(pick("linux/arm64").unwrap(), "sha256:arm64");
        assert_eq!(pick("linux/arm64/v8").unwrap(), "sha256:arm64");
        assert_eq!(pick("linux/arm/v7").unwrap(), "sha256:armv7");
        assert_eq!(pick("linux/arm/v6").unwrap(), "sha256:armv6");
        // armv8 32-bit runs v7 code: the best lower variant wins
        assert_eq!(pick("linux/arm/v8").unwrap(), "sha256:armv7");
        assert_eq!(pick("linux/s390x").unwrap(), "sha256:s390");
        assert_eq!(pick("windows/amd64").unwrap(), "sha256:win");
        assert_eq!(pick("linux/x86_64").unwrap(), "sha256:amd64");
    }

    #[test]
    fn no_match_lists_what_is_available() {
        let avail = pick("linux/riscv64").unwrap_err();
        assert_eq!(
            avail,
            [
                "linux/s390x",
                "linux/arm/v6",
                "linux/arm/v7",
                "linux/amd64/v3",
                "linux/amd64",
                "linux/arm64/v8",
                "windows/amd64"
            ]
        );
        assert!(pick("linux/arm/v5").is_err());
        assert!(pick("linux/arm64/v9").is_err());
    }

    #[test]
    fn first_of_equals_wins_and_variantless_preferred() {
        let json = r#"{"manifests":[
          {"digest":"sha256:a","size":1,"platform":{"os":"linux","architecture":"amd64","variant":"v2"}},
          {"digest":"sha256:b","size":1,"platform":{"os":"linux","architecture":"amd64"}},
          {"digest":"sha256:c","size":1,"platform":{"os":"linux","architecture":"amd64"}},
          {"digest":"sha256:d","size":1}
        ]}"#;
        let idx: Index = serde_json::from_str(json).unwrap();
        assert_eq!(
            select(&idx.manifests, &plat("linux/amd64")).unwrap().digest,
            "sha256:b"
        );
        let only_v2 = &idx.manifests[..1];
        assert_eq!(
            select(only_v2, &plat("linux/amd64")).unwrap().digest,
            "sha256:a"
        );
        assert_eq!(
            select(&idx.manifests[3..], &plat("linux/amd64")).unwrap_err(),
            Vec::<String>::new()
        );
    }
}

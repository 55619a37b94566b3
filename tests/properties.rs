//! Property tests (issue 9): box's parsers never panic and round-trip what they print, and
//! the layer unpacker never writes outside its directory, whatever the input. The same
//! functions are fuzzed with cargo-fuzz in `fuzz/` (see fuzz/README.md); these run in
//! `cargo test` within seconds and need neither root nor a registry.
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use boxctr::registry::auth::parse_www_authenticate;
use boxctr::registry::{Platform, Reference};
use boxctr::storage::unpack::{self, Options};
use proptest::prelude::*;

// ------------------------------------------------------------------ references

fn host() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("docker.io".to_string()),
        Just("index.docker.io".to_string()),
        Just("localhost".to_string()),
        Just("localhost:5000".to_string()),
        Just("127.0.0.1:5000".to_string()),
        Just("[::1]:5000".to_string()),
        Just("Registry.Example.COM".to_string()),
        "[a-z][a-z0-9-]{0,8}[a-z0-9](\\.[a-z][a-z0-9]{0,5}){1,2}(:[1-9][0-9]{0,3})?",
    ]
}

fn component() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,8}((\\.|_|__|-{1,3})[a-z0-9]{1,8}){0,2}"
}

/// References docker accepts: [host/]path[:tag][@digest].
fn valid_reference() -> impl Strategy<Value = String> {
    (
        proptest::option::of(host()),
        proptest::collection::vec(component(), 1..4),
        proptest::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,30}"),
        proptest::option::of("[0-9a-f]{64}"),
    )
        .prop_map(|(host, path, tag, digest)| {
            let mut s = String::new();
            // Without a host, a first component with a dot would be taken for one.
            let host = host.or_else(|| path[0].contains('.').then(|| "docker.io".to_string()));
            if let Some(h) = host {
                s.push_str(&h);
                s.push('/');
            }
            s.push_str(&path.join("/"));
            if let Some(t) = tag {
                s.push(':');
                s.push_str(&t);
            }
            if let Some(d) = digest {
                s.push_str("@sha256:");
                s.push_str(&d);
            }
            s
        })
}

/// Printable noise close to the reference alphabet, so the parser's branches get visited.
fn reference_like() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9._:/@\\[\\]-]{0,90}"
}

fn assert_round_trip(r: &Reference) -> Result<(), TestCaseError> {
    let shown = r.to_string();
    let again = Reference::parse(&shown)
        .map_err(|e| TestCaseError::fail(format!("{shown:?} (printed from {r:?}): {e}")))?;
    prop_assert_eq!(&again, r, "Display -> parse of {:?}", shown);
    let familiar = r.familiar();
    let again = Reference::parse(&familiar)
        .map_err(|e| TestCaseError::fail(format!("{familiar:?} (familiar of {r:?}): {e}")))?;
    prop_assert_eq!(&again, r, "familiar -> parse of {:?}", familiar);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn reference_parse_never_panics(s in any::<String>()) {
        let _ = Reference::parse(&s);
    }

    #[test]
    fn reference_noise_round_trips_when_it_parses(s in reference_like()) {
        if let Ok(r) = Reference::parse(&s) {
            assert_round_trip(&r)?;
        }
    }

    #[test]
    fn valid_references_parse_and_round_trip(s in valid_reference()) {
        let r = Reference::parse(&s).map_err(|e| TestCaseError::fail(format!("{s:?}: {e}")))?;
        prop_assert!(r.tag.is_some() || r.digest.is_some());
        prop_assert!(!r.registry.is_empty() && !r.repository.is_empty());
        assert_round_trip(&r)?;
    }

    #[test]
    fn platform_parse_never_panics_and_is_idempotent(s in "[a-zA-Z0-9_./-]{0,40}") {
        if let Ok(p) = Platform::parse(&s) {
            let again = Platform::parse(&p.to_string());
            prop_assert_eq!(again.ok(), Some(p));
        }
    }

    #[test]
    fn www_authenticate_never_panics(s in any::<String>()) {
        let _ = parse_www_authenticate(&s);
    }

    #[test]
    fn www_authenticate_noise_never_panics(s in "[a-zA-Z=\", \\t\\\\]{0,60}") {
        for c in parse_www_authenticate(&s) {
            prop_assert_eq!(c.scheme.to_ascii_lowercase(), c.scheme.clone());
        }
    }

    #[test]
    fn bearer_challenges_give_back_their_parameters(
        realm in "https://[a-z]{1,10}\\.[a-z]{2,3}/[a-z/]{0,10}",
        service in "[a-z][a-z0-9.:-]{0,20}",
        scope in "repository:[a-z0-9/]{1,20}:pull(,push)?",
        other in proptest::option::of("[A-Za-z]{1,8}"),
    ) {
        let mut h = format!("Bearer realm=\"{realm}\",service=\"{service}\",scope=\"{scope}\"");
        if let Some(o) = &other {
            h.push_str(&format!(", {o} realm=\"x\""));
        }
        let cs = parse_www_authenticate(&h);
        prop_assert!(!cs.is_empty());
        prop_assert_eq!(cs[0].scheme.as_str(), "bearer");
        prop_assert_eq!(cs[0].param("realm"), Some(realm.as_str()));
        prop_assert_eq!(cs[0].param("service"), Some(service.as_str()));
        prop_assert_eq!(cs[0].param("scope"), Some(scope.as_str()));
    }
}

// ------------------------------------------------------------------ layer entries

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn entry_components_are_plain_names(parts in proptest::collection::vec(
        prop_oneof![
            Just(".."), Just("."), Just(""), Just("a"), Just("b.c"), Just("..."), Just(".wh.x"),
        ],
        0..6,
    ), absolute in any::<bool>()) {
        let joined = format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"));
        let absolute = joined.starts_with('/');
        match unpack::entry_components(Path::new(&joined)) {
            Ok(comps) => {
                prop_assert!(!absolute, "{:?} is absolute", joined);
                prop_assert!(!parts.contains(&".."), "{:?} has ..", joined);
                for c in comps {
                    let c = c.to_string_lossy().into_owned();
                    prop_assert!(!c.is_empty() && c != "." && c != ".." && !c.contains('/'), "{:?}", c);
                }
            }
            Err(_) => prop_assert!(absolute || parts.contains(&"..")),
        }
    }
}

/// Where a path or link target of a generated entry points.
#[derive(Debug, Clone)]
enum Target {
    /// Used as is.
    Rel(&'static str),
    /// `<outside>/<rest>`, absolute: the directory next to the layer that must stay untouched.
    Outside(&'static str),
}

#[derive(Debug, Clone)]
enum Kind {
    Dir,
    File(Vec<u8>),
    Symlink(Target),
    Hardlink(Target),
}

#[derive(Debug, Clone)]
struct Entry {
    path: Target,
    kind: Kind,
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        3 => prop_oneof![
            Just("a"), Just("a/b"), Just("l"), Just("l/pwned"), Just("l/x/pwned"), Just("h"),
            Just("d/../../outside/pwned"), Just("../outside/pwned"), Just("../outside/canary"),
            Just("../../../../../../tmp"), Just("/"), Just(".."), Just("."), Just("./a"),
            Just("/a"), Just("d"), Just("d/l"), Just("d/l/pwned"), Just(".wh.a"),
            Just("d/.wh..wh..opq"), Just("a/./b"), Just("l/../pwned"), Just("../outside"),
            Just("../../outside"), Just("l/sub"), Just("l/.wh.canary"),
        ]
        .prop_map(Target::Rel),
        1 => prop_oneof![Just(""), Just("pwned"), Just("canary")].prop_map(Target::Outside),
    ]
}

fn entry() -> impl Strategy<Value = Entry> {
    let kind = prop_oneof![
        1 => Just(Kind::Dir),
        2 => proptest::collection::vec(any::<u8>(), 0..40).prop_map(Kind::File),
        2 => target().prop_map(Kind::Symlink),
        2 => target().prop_map(Kind::Hardlink),
    ];
    (target(), kind).prop_map(|(path, kind)| Entry { path, kind })
}

fn resolve(t: &Target, outside: &Path) -> Vec<u8> {
    match t {
        Target::Rel(s) => s.as_bytes().to_vec(),
        Target::Outside(rest) => {
            let mut p = outside.as_os_str().as_encoded_bytes().to_vec();
            if !rest.is_empty() {
                p.push(b'/');
                p.extend_from_slice(rest.as_bytes());
            }
            p
        }
    }
}

/// A tar made by hand (tar::Builder refuses `..` and absolute names, which is the point).
fn tar_of(entries: &[Entry], outside: &Path) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let mut h = tar::Header::new_gnu();
        let name = resolve(&e.path, outside);
        let n = name.len().min(99);
        h.as_old_mut().name[..n].copy_from_slice(&name[..n]);
        let (kind, link, data): (tar::EntryType, Vec<u8>, &[u8]) = match &e.kind {
            Kind::Dir => (tar::EntryType::Directory, Vec::new(), &[]),
            Kind::File(d) => (tar::EntryType::Regular, Vec::new(), d),
            Kind::Symlink(t) => (tar::EntryType::Symlink, resolve(t, outside), &[]),
            Kind::Hardlink(t) => (tar::EntryType::Link, resolve(t, outside), &[]),
        };
        let l = link.len().min(99);
        h.as_old_mut().linkname[..l].copy_from_slice(&link[..l]);
        h.set_entry_type(kind);
        h.set_mode(if kind == tar::EntryType::Directory {
            0o755
        } else {
            0o644
        });
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

/// Every path under `dir` (not following symlinks), with its size and link count.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, u64, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let p = e.path();
            let Ok(md) = p.symlink_metadata() else {
                continue;
            };
            let content = if md.is_file() {
                fs::read(&p).unwrap_or_default()
            } else {
                Vec::new()
            };
            if md.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, md.len(), md.nlink(), content));
        }
    }
    out.sort();
    out
}

/// Unpack `entries` next to an `outside` directory; nothing outside the layer may change.
fn check_unpack(entries: &[Entry], gzip: bool) -> Result<(), TestCaseError> {
    let jail = tempfile::tempdir().unwrap();
    let outside = jail.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), b"canary\n").unwrap();
    fs::create_dir(outside.join("sub")).unwrap();
    let before = snapshot(&outside);
    let dest = jail.path().join("layer");

    let mut blob = tar_of(entries, &outside);
    if gzip {
        use std::io::Write;
        let mut z = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(&blob).unwrap();
        blob = z.finish().unwrap();
    }
    let opts = Options {
        chown: false,
        sync: false,
        into_existing: false,
        ignore_chown_errors: false,
    };
    let result = unpack::unpack(&blob[..], &dest, None, &opts);

    prop_assert_eq!(
        snapshot(&outside),
        before,
        "outside changed; unpack said {:?}",
        result.as_ref().map(|_| ())
    );
    let mut top: Vec<String> = fs::read_dir(jail.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    prop_assert_eq!(top, vec!["layer".to_string(), "outside".to_string()]);
    // Every hard link of a file in the layer is in the layer too.
    let inside = snapshot(&dest);
    for (p, _, nlink, _) in &inside {
        let md = p.symlink_metadata().unwrap();
        if md.is_file() && *nlink > 1 {
            let ino = md.ino();
            let links = inside
                .iter()
                .filter(|(q, ..)| q.symlink_metadata().is_ok_and(|m| m.ino() == ino))
                .count() as u64;
            prop_assert_eq!(links, *nlink, "{:?} is linked outside the layer", p);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, failure_persistence: None, ..ProptestConfig::default() })]

    /// Whatever a layer holds (`..`, absolute names, symlinks and hardlinks pointing out,
    /// writes through them, whiteouts), nothing outside the layer directory changes.
    #[test]
    fn unpack_never_writes_outside_its_directory(
        entries in proptest::collection::vec(entry(), 1..10),
        gzip in any::<bool>(),
    ) {
        check_unpack(&entries, gzip)?;
    }
}

/// The classic escapes, through the same check (so a regression cannot hide behind luck).
#[test]
fn known_escapes_change_nothing_outside() {
    use Kind::*;
    use Target::*;
    let e = |path, kind| Entry { path, kind };
    let file = || File(b"pwned\n".to_vec());
    let cases: Vec<Vec<Entry>> = vec![
        vec![e(Rel("l"), Symlink(Outside(""))), e(Rel("l/pwned"), file())],
        vec![
            e(Rel("l"), Symlink(Rel("../outside"))),
            e(Rel("l/pwned"), file()),
        ],
        vec![
            e(Rel("d"), Dir),
            e(Rel("d/l"), Symlink(Rel("../../outside"))),
            e(Rel("d/l/pwned"), file()),
        ],
        vec![
            e(Rel("h"), Hardlink(Outside("canary"))),
            e(Rel("h"), file()),
        ],
        vec![
            e(Rel("h"), Hardlink(Rel("../outside/canary"))),
            e(Rel("h"), file()),
        ],
        vec![
            e(Rel("l"), Symlink(Outside("canary"))),
            e(Rel("h"), Hardlink(Rel("l"))),
            e(Rel("h"), file()),
        ],
        vec![e(Rel("../outside/pwned"), file())],
        vec![e(Outside("pwned"), file())],
        vec![e(Rel("d/../../outside/pwned"), file())],
        vec![
            e(Rel("l"), Symlink(Outside(""))),
            e(Rel("l/.wh.canary"), file()),
        ],
        vec![
            e(Rel("l"), Symlink(Outside(""))),
            e(Rel("l/.wh..wh..opq"), file()),
        ],
        vec![e(Rel("l"), Symlink(Outside(""))), e(Rel("l/sub"), Dir)],
    ];
    for (i, c) in cases.iter().enumerate() {
        for gzip in [false, true] {
            if let Err(e) = check_unpack(c, gzip) {
                panic!("case {i} {c:?}: {e}");
            }
        }
    }
}

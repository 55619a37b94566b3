//! The layer unpacker on any bytes (plain, gzip or zstd tar): never a panic, and nothing
//! outside the layer directory changes (a sibling directory with a canary file stays as is).
#![no_main]
use std::fs;
use std::path::Path;

use boxctr::storage::unpack::{Options, unpack};
use libfuzzer_sys::fuzz_target;

fn listing(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let len = e.path().symlink_metadata().map(|m| m.len()).unwrap_or(0);
                    (e.file_name().to_string_lossy().into_owned(), len)
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fuzz_target!(|data: &[u8]| {
    let jail = tempfile::tempdir().expect("tempdir");
    let outside = jail.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::write(outside.join("canary"), b"canary\n").unwrap();
    let before = listing(&outside);
    let opts = Options {
        chown: false,
        sync: false,
    };
    let _ = unpack(data, &jail.path().join("layer"), None, &opts);
    assert_eq!(
        listing(&outside),
        before,
        "the unpack wrote outside its directory"
    );
    assert_eq!(fs::read(outside.join("canary")).unwrap(), b"canary\n");
    let top = listing(jail.path());
    assert!(
        top.iter().all(|(n, _)| n == "layer" || n == "outside"),
        "{top:?}"
    );
});

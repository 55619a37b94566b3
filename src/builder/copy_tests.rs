use std::os::fd::AsFd;

use super::*;

fn req<'a>(sources: &'a [String], dest: &'a str, f: &'a dyn Fn(&str) -> bool) -> Request<'a> {
    Request {
        sources,
        dest,
        is_dir_in_image: f,
        exists_in_image: f,
        chown: None,
        chmod: None,
        extract: false,
        ignore: None,
        root: Root::Context,
        root_name: "the build context",
    }
}

#[test]
fn globs_match_one_element() {
    assert!(fnmatch(b"*.txt", b"a.txt"));
    assert!(!fnmatch(b"*.txt", b"a.txt.bak"));
    assert!(fnmatch(b"f?le[0-9]", b"file7"));
    assert!(!fnmatch(b"f[!i]le", b"file"));
    assert!(fnmatch(b"\\*", b"*"));
}

#[test]
fn directory_semantics_and_refusals() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path();
    std::fs::create_dir_all(root.join("d/sub")).unwrap();
    std::fs::write(root.join("d/sub/x"), "x").unwrap();
    std::fs::write(root.join("a.txt"), "a").unwrap();
    std::fs::write(root.join("b.txt"), "b").unwrap();
    std::os::unix::fs::symlink("/etc/passwd", root.join("escape")).unwrap();
    std::os::unix::fs::symlink("a.txt", root.join("inside")).unwrap();
    let dir = std::fs::File::open(root).unwrap();
    let no = |_: &str| false;
    // A directory's contents go into the destination.
    let s = vec!["d".to_string()];
    let (e, _) = collect(dir.as_fd(), &req(&s, "/app", &no)).unwrap();
    let keys: Vec<&str> = e.keys().map(String::as_str).collect();
    assert_eq!(keys, ["app", "app/sub", "app/sub/x"]);
    // A file to a path without `/` is that path; globs into a directory.
    let s = vec!["a.txt".to_string()];
    let (e, _) = collect(dir.as_fd(), &req(&s, "/etc/conf", &no)).unwrap();
    assert!(e.contains_key("etc/conf") && e.contains_key("etc"));
    let s = vec!["*.txt".to_string()];
    let (e, d1) = collect(dir.as_fd(), &req(&s, "/x/", &no)).unwrap();
    assert!(e.contains_key("x/a.txt") && e.contains_key("x/b.txt"));
    // A symlink inside the context is followed; one leading out is refused; so is `..`.
    let s = vec!["inside".to_string()];
    let (e, _) = collect(dir.as_fd(), &req(&s, "/i", &no)).unwrap();
    assert!(matches!(e["i"].data, Data::File { .. }));
    let s = vec!["escape".to_string()];
    let err = collect(dir.as_fd(), &req(&s, "/e", &no)).unwrap_err();
    assert!(err.contains("outside the build context"), "{err}");
    let s = vec!["../x".to_string()];
    let err = collect(dir.as_fd(), &req(&s, "/e", &no)).unwrap_err();
    assert!(err.contains("outside the build context"), "{err}");
    let s = vec!["missing".to_string()];
    let err = collect(dir.as_fd(), &req(&s, "/e", &no)).unwrap_err();
    assert!(err.contains("no such file"), "{err}");
    // The content digest follows the contents.
    std::fs::write(root.join("b.txt"), "B").unwrap();
    let s = vec!["*.txt".to_string()];
    let (_, d2) = collect(dir.as_fd(), &req(&s, "/x/", &no)).unwrap();
    assert_ne!(d1, d2);
}

#[test]
fn written_layer_is_sorted_with_owners() {
    let t = tempfile::tempdir().unwrap();
    std::fs::create_dir(t.path().join("d")).unwrap();
    std::fs::write(t.path().join("d/f"), "hello").unwrap();
    let dir = std::fs::File::open(t.path()).unwrap();
    let no = |_: &str| false;
    let s = vec!["d".to_string()];
    let mut r = req(&s, "/app/", &no);
    r.chown = Some((1000, 1001));
    let (e, _) = collect(dir.as_fd(), &r).unwrap();
    let out = t.path().join("layer.tgz");
    let d = write(
        dir.as_fd(),
        Root::Context,
        &e,
        std::fs::File::create(&out).unwrap(),
        Some(5),
    )
    .unwrap();
    assert!(d.diff_id.starts_with("sha256:"));
    let f = std::fs::File::open(&out).unwrap();
    let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(f));
    let got: Vec<(String, u64, u64)> = ar
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let h = e.header();
            (
                e.path().unwrap().display().to_string(),
                h.uid().unwrap(),
                h.mtime().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("app/".to_string(), 1000, 5),
            ("app/f".to_string(), 1000, 5)
        ]
    );
}

//! Cases from moby/patternmatcher's tests and docker's `.dockerignore` documentation.
use super::*;

fn ig(lines: &[&str]) -> Ignore {
    Ignore::parse(&lines.join("\n"), ".dockerignore").unwrap()
}

#[test]
fn single_patterns_as_patternmatcher() {
    let cases: &[(&str, &str, bool)] = &[
        ("**", "file", true),
        ("**", "file/", true),
        ("**/", "file", true),
        ("**", "dir/file", true),
        ("**/**", "dir/file", true),
        ("dir/**", "dir/file", true),
        ("dir/**", "dir/dir2/file", true),
        ("**/dir", "dir", true),
        ("**/dir", "dir/file", true),
        ("**/dir2/*", "dir/dir2/file", true),
        ("**/dir2/**", "dir/dir2/dir3/file", true),
        ("**file", "file", true),
        ("**file", "dir/file", true),
        ("**/file", "dir/dir/file", true),
        ("**/file*", "dir/dir/file.txt", true),
        ("**/file*txt", "dir/dir/file.txt", true),
        ("**/file*.txt*", "dir/dir/file.txt", true),
        ("**/**/*.txt", "dir/dir/file.txt", true),
        ("**/**/*.txt2", "dir/dir/file.txt", false),
        ("**/*.txt", "file.txt", true),
        ("**/**/*.txt", "file.txt", true),
        ("a**/*.txt", "a/file.txt", true),
        ("a**/*.txt", "a/dir/file.txt", true),
        ("a**/*.txt", "a/dir/dir/file.txt", true),
        ("a/*.txt", "a/dir/file.txt", false),
        ("a/*.txt", "a/file.txt", true),
        ("a/*.txt**", "a/file.txt", true),
        ("a[b-d]e", "ae", false),
        ("a[b-d]e", "ace", true),
        ("a[b-d]e", "aae", false),
        ("a[^b-d]e", "aze", true),
        (".*", ".foo", true),
        (".*", "foo", false),
        ("abc.def", "abcdef", false),
        ("abc.def", "abc.def", true),
        ("abc?def", "abcZdef", true),
        ("abc?def", "abcdef", false),
        ("a\\\\", "a\\", true),
        ("**/foo/bar", "foo/bar", true),
        ("**/foo/bar", "dir/dir2/foo/bar", true),
        ("abc/**", "abc", false),
        ("abc/**", "abc/def/ghi", true),
        ("**/.foo", ".foo", true),
        ("**/.foo", "bar.foo", false),
        ("a(b)c/def", "a(b)c/def", true),
        ("a(b)c/def", "a(b)c/xyz", false),
        ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
        (
            "dist/*.whl",
            "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
            true,
        ),
        ("a*/b", "abc/b", true),
        ("a*/b", "a/c/b", false),
        ("a*b*c*d*e*/f", "axbxcxdxexxx/f", true),
        ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", false),
        ("a*b?c*x", "abxbbxdbxebxczzx", true),
        ("a*b?c*x", "abxbbxdbxebxczzy", false),
        ("ab[^e-g]", "abc", true),
        ("a\\*b", "a*b", true),
        ("a\\*b", "ab", false),
        ("a?b", "a☺b", true),
        ("a???b", "a☺b", false),
        // Cleaning: leading `/` and `./`, trailing `/`, `..`.
        ("/docs", "docs/README.md", true),
        ("./docs/", "docs/README.md", true),
        ("a//b/../c", "a/c", true),
        ("*", "fileutils.go", true),
        ("*.go", "fileutils.go", true),
        ("docs", "docs/README.md", true),
        ("*", "a/b/c", true),
        ("*.go", "dir/x.go", false),
    ];
    for (pat, path, want) in cases {
        assert_eq!(ig(&[pat]).excluded(path), *want, "{pat:?} vs {path:?}");
    }
}

#[test]
fn exceptions_last_match_wins() {
    let cases: &[(&[&str], &str, bool)] = &[
        (&["!fileutils.go", "*.go"], "fileutils.go", true),
        (&["*.go", "!fileutils.go"], "fileutils.go", false),
        (&["docs", "!docs/README.md"], "docs/README.md", false),
        (&["docs/", "!docs/README.md"], "docs/README.md", false),
        (&["docs/*", "!docs/README.md"], "docs/README.md", false),
        (&["docs", "!docs/README.md"], "docs/other.md", true),
        (&["**", "!util/docker/web"], "util/docker/web/foo", false),
        (
            &["**", "!util/docker/web", "util/docker/web/foo"],
            "util/docker/web/foo",
            true,
        ),
        (&["**", "!dist/*.whl"], "dist/x-1.0-py3-none-any.whl", false),
        (
            &["*.md", "!README*.md", "README-secret.md"],
            "README-secret.md",
            true,
        ),
        (
            &["*.md", "!README*.md", "README-secret.md"],
            "README.md",
            false,
        ),
        (
            &["*.md", "README-secret.md", "!README*.md"],
            "README-secret.md",
            false,
        ),
        (&[], "anything", false),
    ];
    for (pats, path, want) in cases {
        assert_eq!(ig(pats).excluded(path), *want, "{pats:?} vs {path:?}");
    }
}

#[test]
fn file_format() {
    let i = Ignore::parse(
        "\u{feff}# comment\n\n  *.tmp  \n #not a comment\n!  keep.tmp\n/abs\n",
        ".dockerignore",
    )
    .unwrap();
    assert!(i.excluded("x.tmp"));
    assert!(!i.excluded("keep.tmp"));
    assert!(i.excluded("#not a comment"));
    assert!(i.excluded("abs/x"));
    assert!(!i.excluded("."));
    assert_eq!(
        Ignore::parse("a\n!\n", ".dockerignore")
            .unwrap_err()
            .to_string(),
        ".dockerignore:2: illegal exclusion pattern \"!\": write the path to re-include after it"
    );
    assert!(
        Ignore::parse("ok\n[\n", ".containerignore")
            .unwrap_err()
            .to_string()
            .starts_with(".containerignore:2: bad pattern \"[\"")
    );
}

#[test]
fn directories_prune_unless_an_exception_could_match_below() {
    let i = ig(&["docs", "!docs/keep/*.md", "build"]);
    // Excluded with nothing to re-include below: skip the subtree.
    assert!(i.matches("build", true));
    assert!(i.matches("build/x", false));
    // Excluded, but an exception may match below: walk it.
    assert!(!i.matches("docs", true));
    assert!(!i.matches("docs/keep", true));
    assert!(i.matches("docs/other", true));
    assert!(i.matches("docs/keep/a.txt", false));
    assert!(!i.matches("docs/keep/a.md", false));
    // Not excluded at all.
    assert!(!i.matches("src", true));
    assert!(!i.matches("src/main.rs", false));
    // Wildcard exceptions: `*` matches the element, `**` anything.
    let i = ig(&["vendor", "*/node_modules", "!*/node_modules/keep"]);
    assert!(
        !i.matches("vendor", true),
        "vendor/node_modules/keep may be kept"
    );
    assert!(i.matches("vendor/lib", true));
    assert!(!i.matches("web/node_modules", true));
    assert!(!i.matches("web/node_modules/keep", false));
    assert!(i.matches("web/node_modules/other", true));
    let i = ig(&["tmp", "!**/y"]);
    assert!(!i.matches("tmp", true));
    assert!(!i.matches("tmp/a/y", false));
    // Without exceptions every excluded directory prunes.
    assert!(ig(&["a"]).matches("a", true));
}

#[test]
fn load_prefers_containerignore() {
    let dir = tempfile::tempdir().unwrap();
    assert!(!Ignore::load(dir.path()).unwrap().excluded("x"));
    std::fs::write(dir.path().join(".dockerignore"), "x\n").unwrap();
    let i = Ignore::load(dir.path()).unwrap();
    assert!(i.excluded("x") && !i.excluded("y"));
    assert_eq!(i.file.as_deref(), Some(".dockerignore"));
    std::fs::write(dir.path().join(".containerignore"), "y\n").unwrap();
    let i = Ignore::load(dir.path()).unwrap();
    assert!(!i.excluded("x") && i.excluded("y"));
    assert_eq!(i.file.as_deref(), Some(".containerignore"));
}

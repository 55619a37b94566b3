//! Crafted tars against the unpacker. Ownership and mknod of devices need root (or a user
//! namespace); those parts check what they can as an ordinary user.
use super::*;
use crate::storage::whiteout;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, PermissionsExt};

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn opts() -> Options {
    Options {
        chown: is_root(),
        sync: false,
        into_existing: false,
        ignore_chown_errors: false,
    }
}

/// A tar built entry by entry with raw names (so `..` and absolute paths get through).
struct Tar(Vec<u8>);

impl Tar {
    fn new() -> Tar {
        Tar(Vec::new())
    }
    fn raw(
        &mut self,
        name: &str,
        kind: tar::EntryType,
        link: &str,
        mode: u32,
        uid: u64,
        data: &[u8],
    ) -> &mut Self {
        let mut h = tar::Header::new_ustar();
        {
            let old = h.as_old_mut();
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
        }
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(uid);
        h.set_gid(uid);
        h.set_mtime(1_600_000_000);
        h.set_size(data.len() as u64);
        h.set_cksum();
        self.0.extend_from_slice(h.as_bytes());
        self.0.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.0.extend(std::iter::repeat_n(0u8, pad));
        self
    }
    fn dir(&mut self, name: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Directory, "", 0o755, 0, b"")
    }
    fn file(&mut self, name: &str, data: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Regular, "", 0o644, 0, data.as_bytes())
    }
    fn symlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Symlink, target, 0o777, 0, b"")
    }
    fn hardlink(&mut self, name: &str, target: &str) -> &mut Self {
        self.raw(name, tar::EntryType::Link, target, 0o644, 0, b"")
    }
    fn bytes(&self) -> Vec<u8> {
        let mut b = self.0.clone();
        b.extend(std::iter::repeat_n(0u8, 1024));
        b
    }
}

fn run(t: &Tar) -> (tempfile::TempDir, Result<Stats, Error>) {
    let dir = tempfile::tempdir().unwrap();
    let res = unpack(&t.bytes()[..], &dir.path().join("diff"), None, &opts());
    (dir, res)
}

fn entry_err(res: Result<Stats, Error>, entry: &str) {
    match res {
        Err(Error::Entry { entry: e, reason }) => {
            assert_eq!(e, entry, "reason: {reason}")
        }
        other => panic!("expected an error naming {entry}, got {other:?}"),
    }
}

#[test]
fn plain_files_dirs_and_diff_id() {
    let mut t = Tar::new();
    t.dir("./")
        .dir("etc/")
        .file("etc/hostname", "box\n")
        .file("bin/implicit", "x");
    let bytes = t.bytes();
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("diff");
    let stats = unpack(&bytes[..], &d, Some(&expected), &opts()).unwrap();
    assert_eq!(stats.diff_id, expected);
    assert_eq!(stats.size, 5);
    assert_eq!(
        std::fs::read_to_string(d.join("etc/hostname")).unwrap(),
        "box\n"
    );
    let md = std::fs::metadata(d.join("etc")).unwrap();
    assert_eq!(md.permissions().mode() & 0o777, 0o755);
    assert_eq!(
        md.mtime(),
        1_600_000_000,
        "dir mtime set after its contents"
    );
    assert!(d.join("bin/implicit").is_file());

    // The same stream with a wrong diff_id is refused.
    let d2 = dir.path().join("diff2");
    let wrong = format!("sha256:{}", "0".repeat(64));
    match unpack(&bytes[..], &d2, Some(&wrong), &opts()) {
        Err(Error::DiffIdMismatch { .. }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn gzip_and_zstd_streams() {
    let mut t = Tar::new();
    t.file("a", "hello");
    let bytes = t.bytes();
    let expected = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&bytes).unwrap();
    let gz = gz.finish().unwrap();
    let zs = zstd::encode_all(&bytes[..], 1).unwrap();
    for blob in [gz, zs] {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("diff");
        let s = unpack(&blob[..], &d, Some(&expected), &opts()).unwrap();
        assert_eq!(s.diff_id, expected);
        assert_eq!(std::fs::read_to_string(d.join("a")).unwrap(), "hello");
    }
}

#[test]
fn rejects_parent_traversal() {
    let mut t = Tar::new();
    t.file("a/../../escape", "x");
    let (dir, res) = run(&t);
    entry_err(res, "a/../../escape");
    assert!(!dir.path().join("escape").exists());
}

#[test]
fn rejects_absolute_paths() {
    let mut t = Tar::new();
    t.file("/tmp/box-abs-escape", "x");
    let (_dir, res) = run(&t);
    entry_err(res, "/tmp/box-abs-escape");
    assert!(!Path::new("/tmp/box-abs-escape").exists());
}

#[test]
fn rejects_writing_through_a_symlink() {
    let outside = tempfile::tempdir().unwrap();
    let mut t = Tar::new();
    t.symlink("link", outside.path().to_str().unwrap())
        .file("link/pwned", "x");
    let (_dir, res) = run(&t);
    entry_err(res, "link/pwned");
    assert!(!outside.path().join("pwned").exists());

    // A relative symlink climbing out is refused the same way.
    let mut t = Tar::new();
    t.symlink("up", "../../../../../../../../tmp")
        .file("up/box-rel-escape", "x");
    let (_dir, res) = run(&t);
    entry_err(res, "up/box-rel-escape");
    assert!(!Path::new("/tmp/box-rel-escape").exists());
}

#[test]
fn symlink_then_same_name_file_replaces_the_link() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("victim"), "keep").unwrap();
    let target = outside.path().join("victim");
    let mut t = Tar::new();
    t.symlink("f", target.to_str().unwrap()).file("f", "new");
    let (dir, res) = run(&t);
    res.unwrap();
    assert_eq!(
        std::fs::read_to_string(outside.path().join("victim")).unwrap(),
        "keep"
    );
    let f = dir.path().join("diff/f");
    assert!(std::fs::symlink_metadata(&f).unwrap().is_file());
}

#[test]
fn hardlinks_inside_and_outside() {
    let mut t = Tar::new();
    t.file("a", "data")
        .hardlink("b", "a")
        .symlink("s", "/etc/passwd")
        .hardlink("c", "s");
    let (dir, res) = run(&t);
    res.unwrap();
    let d = dir.path().join("diff");
    let a = std::fs::metadata(d.join("a")).unwrap();
    let b = std::fs::metadata(d.join("b")).unwrap();
    assert_eq!(a.ino(), b.ino());
    // A hardlink to a symlink links the symlink itself, never what it points to.
    let c = std::fs::symlink_metadata(d.join("c")).unwrap();
    assert!(c.file_type().is_symlink());

    for bad in ["../../etc/passwd", "/etc/passwd"] {
        let mut t = Tar::new();
        t.hardlink("x", bad);
        let (_dir, res) = run(&t);
        entry_err(res, "x");
    }
    // Through a symlinked directory.
    let mut t = Tar::new();
    t.symlink("etc", "/etc").hardlink("x", "etc/passwd");
    let (_dir, res) = run(&t);
    entry_err(res, "x");
}

#[test]
fn whiteouts_and_opaque_dirs() {
    let mut t = Tar::new();
    t.dir("d/")
        .file("d/.wh..wh..opq", "")
        .file("d/.wh.gone", "")
        .file(".wh.top", "");
    let (dir, res) = run(&t);
    if let Err(Error::Entry { reason, .. }) = &res
        && (reason.contains("whiteout device") || reason.contains("user xattrs"))
        && !is_root()
    {
        eprintln!("skipped: needs root or a user namespace: {reason}");
        return;
    }
    res.unwrap();
    let d = dir.path().join("diff");
    for w in ["d/gone", "top"] {
        let md = std::fs::symlink_metadata(d.join(w)).unwrap();
        assert!(md.file_type().is_char_device() && md.rdev() == 0, "{w}");
        assert!(whiteout::is_whiteout(&md));
    }
    assert!(!d.join("d/.wh.gone").exists());
    assert!(whiteout::is_opaque(&d.join("d")));
    assert!(!whiteout::is_opaque(&d));
}

#[test]
fn modes_links_fifos_and_ownership() {
    let mut t = Tar::new();
    t.raw("suid", tar::EntryType::Regular, "", 0o4755, 1000, b"x")
        .raw("sticky/", tar::EntryType::Directory, "", 0o1777, 0, b"")
        .raw("fifo", tar::EntryType::Fifo, "", 0o600, 0, b"")
        .symlink("sl", "suid");
    let (dir, res) = run(&t);
    res.unwrap();
    let d = dir.path().join("diff");
    let md = std::fs::metadata(d.join("suid")).unwrap();
    assert_eq!(md.permissions().mode() & 0o7777, 0o4755);
    if is_root() {
        assert_eq!(md.uid(), 1000);
    }
    assert_eq!(
        std::fs::metadata(d.join("sticky"))
            .unwrap()
            .permissions()
            .mode()
            & 0o7777,
        0o1777
    );
    assert!(
        std::fs::symlink_metadata(d.join("fifo"))
            .unwrap()
            .file_type()
            .is_fifo()
    );
    assert_eq!(std::fs::read_link(d.join("sl")).unwrap(), Path::new("suid"));
}

#[test]
fn device_nodes_are_skipped_when_not_permitted() {
    let mut t = Tar::new();
    t.raw("dev/null", tar::EntryType::Char, "", 0o666, 0, b"");
    // Device 1:3 (a raw header: set the numbers and fix the checksum).
    let mut h = tar::Header::from_byte_slice(&t.0[..512]).clone();
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    h.set_cksum();
    t.0[..512].copy_from_slice(h.as_bytes());
    let (_dir, res) = run(&t);
    let s = res.unwrap();
    if !is_root() {
        assert_eq!(s.warnings.len(), 1, "{:?}", s.warnings);
    }
}

#[test]
fn overlay_xattrs_from_images_are_dropped() {
    use std::io::Cursor;
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    b.append_pax_extensions([
        ("SCHILY.xattr.user.overlay.redirect", &b"/etc"[..]),
        ("SCHILY.xattr.user.box-test", &b"1"[..]),
    ])
    .unwrap();
    b.append_data(&mut h, "d", Cursor::new(Vec::new())).unwrap();
    let bytes = b.into_inner().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("diff");
    let s = unpack(&bytes[..], &d, None, &opts()).unwrap();
    assert!(
        s.notes.iter().any(|n| n.contains("user.overlay.redirect")),
        "{:?}",
        s.notes
    );
    let f = File::open(d.join("d")).unwrap();
    let mut buf = [0u8; 8];
    // SAFETY: valid fd and buffer.
    let n = unsafe {
        libc::fgetxattr(
            f.as_raw_fd(),
            c"user.overlay.redirect".as_ptr(),
            buf.as_mut_ptr().cast(),
            8,
        )
    };
    assert!(n < 0);
}

#[test]
fn entry_components_rules() {
    assert_eq!(entry_components(Path::new("./a/./b/")).unwrap().len(), 2);
    assert!(entry_components(Path::new("a/../b")).is_err());
    assert!(entry_components(Path::new("/a")).is_err());
    assert!(entry_components(Path::new("./")).unwrap().is_empty());
}

/// A PAX extended header (`x`) whose records are `kv`, as raw tar bytes.
fn pax(kv: &[(&str, &[u8])]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    b.append_pax_extensions(kv.iter().map(|(k, v)| (*k, *v)))
        .unwrap();
    let mut v = b.into_inner().unwrap();
    v.truncate(v.len() - 1024); // the end-of-archive blocks
    v
}

#[test]
fn long_paths_are_refused_in_one_short_line() {
    // One million components, as a PAX path record.
    let long = "a/".repeat(1 << 20);
    let mut t = Tar::new();
    t.0.extend(pax(&[("path", long.as_bytes())]));
    t.file("short-name-in-the-header", "x");
    let (dir, res) = run(&t);
    let e = res.unwrap_err();
    let msg = e.to_string();
    assert!(msg.len() < 300, "a short message: {} bytes", msg.len());
    assert!(msg.contains("PATH_MAX") && msg.contains("a/a/a/"), "{msg}");
    assert!(msg.contains(&format!("{} bytes", long.len())), "{msg}");
    assert_eq!(
        std::fs::read_dir(dir.path().join("diff")).unwrap().count(),
        0,
        "nothing was created"
    );

    // The same for link names, hard and symbolic.
    for kind in [tar::EntryType::Link, tar::EntryType::Symlink] {
        let mut t = Tar::new();
        t.0.extend(pax(&[("linkpath", long.as_bytes())]));
        t.raw("l", kind, "x", 0o644, 0, b"");
        let (_dir, res) = run(&t);
        match res {
            Err(Error::Entry { entry, reason }) => {
                assert_eq!(entry, "l");
                assert!(
                    reason.contains("link name") && reason.len() < 200,
                    "{reason}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    // At PATH_MAX the name is accepted (and the kernel decides).
    let mut ok = "d/".repeat(10);
    ok.push_str(&"f".repeat(200));
    let mut t = Tar::new();
    t.0.extend(pax(&[("path", ok.as_bytes())]));
    t.file("x", "data");
    let (dir, res) = run(&t);
    res.unwrap();
    assert!(dir.path().join("diff").join(&ok).is_file());
}

#[test]
fn shown_names_are_bounded() {
    assert_eq!(shown_name(b"etc/passwd"), "etc/passwd");
    let long = vec![b'x'; 10_000];
    let s = shown_name(&long);
    assert!(s.starts_with(&"x".repeat(100)) && s.contains("…") && s.contains("10000 bytes"));
    assert!(s.len() < 130);
}

/// An old-GNU sparse entry ('S'): `segments` are (offset, data) in the file, `real` its
/// apparent size (a last empty segment at `real` when it ends in a hole).
fn gnu_sparse(t: &mut Tar, name: &str, real: u64, segments: &[(u64, &[u8])]) {
    fn num(field: &mut [u8], v: u64) {
        // Octal when it fits, else GNU base-256.
        let digits = field.len() - 1;
        if v < 1u64 << (3 * digits) {
            let s = format!("{v:0digits$o}");
            field[..digits].copy_from_slice(s.as_bytes());
            field[digits] = 0;
        } else {
            field.fill(0);
            field[0] = 0x80;
            let n = field.len();
            field[n - 8..].copy_from_slice(&v.to_be_bytes());
        }
    }
    assert!(segments.len() < 4);
    let mut h = tar::Header::new_gnu();
    h.set_path(name).unwrap();
    h.set_entry_type(tar::EntryType::GNUSparse);
    h.set_mode(0o644);
    h.set_mtime(1_600_000_000);
    let stored: u64 = segments.iter().map(|(_, d)| d.len() as u64).sum();
    h.set_size(stored);
    {
        let g = h.as_gnu_mut().unwrap();
        let mut all: Vec<(u64, u64)> = segments.iter().map(|(o, d)| (*o, d.len() as u64)).collect();
        all.push((real, 0));
        for (slot, (o, n)) in g.sparse.iter_mut().zip(all) {
            num(&mut slot.offset, o);
            num(&mut slot.numbytes, n);
        }
        num(&mut g.realsize, real);
    }
    h.set_cksum();
    t.0.extend_from_slice(h.as_bytes());
    for (_, d) in segments {
        assert_eq!(d.len() % 512, 0, "data segments fill whole blocks here");
        t.0.extend_from_slice(d);
    }
}

#[test]
fn gnu_sparse_files_stay_sparse() {
    const MIB: u64 = 1 << 20;
    let a = [b'a'; 512];
    let b = [b'b'; 1024];
    let mut t = Tar::new();
    gnu_sparse(&mut t, "holes", 256 * MIB, &[(0, &a), (100 * MIB, &b)]);
    gnu_sparse(&mut t, "all-hole", 64 * MIB, &[]);
    t.file("after", "still read");
    let (dir, res) = run(&t);
    let stats = res.unwrap();
    let d = dir.path().join("diff");
    let md = std::fs::metadata(d.join("holes")).unwrap();
    assert_eq!(md.len(), 256 * MIB);
    assert!(
        md.blocks() * 512 < MIB,
        "{} blocks of 512 bytes allocated",
        md.blocks()
    );
    let f = File::open(d.join("holes")).unwrap();
    let mut buf = vec![0u8; 2048];
    f.read_exact_at(&mut buf, 0).unwrap();
    assert!(buf[..512].iter().all(|&c| c == b'a') && buf[512..].iter().all(|&c| c == 0));
    f.read_exact_at(&mut buf, 100 * MIB - 512).unwrap();
    assert!(buf[..512].iter().all(|&c| c == 0));
    assert!(buf[512..1536].iter().all(|&c| c == b'b'));
    assert!(buf[1536..].iter().all(|&c| c == 0));
    let md = std::fs::metadata(d.join("all-hole")).unwrap();
    assert_eq!((md.len(), md.blocks()), (64 * MIB, 0));
    assert_eq!(
        std::fs::read_to_string(d.join("after")).unwrap(),
        "still read"
    );
    assert_eq!(stats.size, 320 * MIB + "still read".len() as u64);
}

#[test]
fn files_larger_than_the_free_space_are_refused_before_writing() {
    // 1 PiB of holes: far more than any test machine's disk.
    let mut t = Tar::new();
    t.file("small", "ok");
    gnu_sparse(&mut t, "huge", 1 << 50, &[(0, &[b'x'; 512])]);
    let started = std::time::Instant::now();
    let (dir, res) = run(&t);
    match res {
        Err(Error::Entry { entry, reason }) => {
            assert_eq!(entry, "huge");
            assert!(
                reason.contains("1.0 PiB (1125899906842624 bytes)") && reason.contains("free"),
                "{reason}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(!dir.path().join("diff/huge").exists(), "nothing written");

    // Many files of a few GiB each add up the same way.
    let free = nix::sys::statvfs::statvfs(dir.path()).unwrap();
    let free = free.blocks_available() as u64 * free.fragment_size() as u64;
    let each = 8u64 << 30;
    let mut t = Tar::new();
    for i in 0..=free / each {
        gnu_sparse(&mut t, &format!("f{i}"), each, &[]);
    }
    let (_dir, res) = run(&t);
    match res {
        Err(Error::Entry { reason, .. }) => assert!(reason.contains("free"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

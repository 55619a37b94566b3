#!/usr/bin/env python3
"""Craft the exact layer tarballs of box's test images (used by scripts/build-test-images).

    mklayers.py layers BUSYBOX OUTDIR   -> OUTDIR/layer1.tar layer2.tar layer3.tar
    mklayers.py evil OUTDIR             -> OUTDIR/{all,dotdot,abs,symlink,hardlink}.tar
    mklayers.py index LAYOUT AMD64_TAG ARM64_TAG NEW_TAG
                                        -> adds an OCI image index (arm64 first) to LAYOUT

Every entry has mtime 2024-09-06T00:00:00Z and PAX format, so the tarballs (and the image
digests) only change when this file or the busybox binary does.

=== test/layers (three layers; busybox-static 1.35 from Debian) =================================

Layer 1 (base):
  /bin/busybox                 0755 0:0   the static busybox binary
  /bin/<applet> -> busybox     symlink for every applet of `busybox --list` (sh, ls, cat, id,
                               stat, find, readlink, getfattr is NOT one of them, ...)
  /etc/passwd /etc/group       root(0), user(1000:1000), odd(1234, group oddgrp 5678), nobody
  /etc/box-test-image          "layers\n"
  /root 0700, /tmp 1777, /home/user 0755 1000:1000, /proc /sys /dev (empty)
  /base/keep.txt               "kept from layer 1\n"
  /base/remove-me.txt          "layer 1, whited out by layer 2\n"
  /whdir/a.txt                 "layer 1, the whole dir is whited out by layer 2\n"
  /opq/lower.txt               "layer 1, hidden by the opaque dir of layer 2\n"
  /opq/sub/deep.txt            "layer 1, hidden by the opaque dir of layer 2\n"
  /replace.txt                 "v1\n"
  /becomes-file/child.txt      "layer 1, the dir becomes a file in layer 3\n"

Layer 2 (deletions):
  /base/.wh.remove-me.txt      whiteout: /base/remove-me.txt disappears
  /.wh.whdir                   whiteout: the directory /whdir disappears with its contents
  /opq/ + /opq/.wh..wh..opq    opaque dir: nothing of /opq from layer 1 stays visible
  /opq/upper.txt               "layer 2\n"
  /replace.txt                 "v2\n"

Layer 3 (metadata):
  /owned/                      0755 1000:1000
  /owned/user.txt              0644 1000:1000 "owned by 1000:1000\n"
  /owned/odd.txt               0640 1234:5678 "owned by 1234:5678\n"
  /links/target.txt            0644 0:0 "hardlinked content\n"
  /links/hardlink.txt          hardlink to /links/target.txt (same inode, 2 links)
  /links/rel-symlink           -> target.txt
  /links/abs-symlink           -> /links/target.txt
  /links/dangling              -> /nonexistent
  /bin/suid                    04755 0:0 "#!/bin/sh\necho suid\n" (setuid root)
  /bin/sgid                    02755 0:5678 "#!/bin/sh\necho sgid\n" (setgid oddgrp)
  /sticky/                     01777 0:0
  /fifo                        fifo, 0644 0:0
  /xattr.txt                   0644 0:0 "has an xattr\n", xattr user.box.test=hello
  /replace.txt                 "v3\n"
  /becomes-file                0644 "layer 3: was a directory in layer 1\n" (replaces the
                               directory of layer 1 without an explicit whiteout)

Merged view (what `box run test/layers ...` must show):
  /base/keep.txt present; /base/remove-me.txt absent; /base/.wh.* absent
  /whdir absent
  /opq contains exactly upper.txt ("layer 2\n"); no lower.txt, no sub/, no .wh..wh..opq
  /replace.txt = "v3\n"
  /becomes-file is a regular file "layer 3: was a directory in layer 1\n"
  /owned 1000:1000 0755; /owned/user.txt 1000:1000 0644; /owned/odd.txt 1234:5678 0640
  /links/target.txt and /links/hardlink.txt: same inode, link count 2, "hardlinked content\n"
  /links/rel-symlink -> target.txt; /links/abs-symlink -> /links/target.txt (both read
  "hardlinked content\n"); /links/dangling -> /nonexistent
  /bin/suid mode 4755 owner 0:0; /bin/sgid mode 2755 group 5678
  /sticky mode 1777; /tmp mode 1777; /root mode 0700
  /fifo is a fifo (stat -c %F: "fifo")
  /xattr.txt has user.box.test=hello (where the storage keeps user xattrs)
  /etc/box-test-image = "layers\n"
  Config: Cmd ["/bin/sh"], Env PATH=/bin, WorkingDir /, label box.test=layers.

=== test/evil (security: each tag has one layer; nothing may land outside the layer) ===========
  :dotdot    ok.txt, ../escape ("escaped via ..\n"), sub/../../escape-nested
  :abs       ok.txt, /tmp/box-escape-marker ("escaped via an absolute path\n")
  :symlink   ok.txt, link -> /tmp, link/box-escape-marker ("escaped via a symlink\n")
  :hardlink  ok.txt, host-link: hardlink to /tmp/box-escape-hardlink-target, then host-link
             again as a regular file ("overwritten through a hardlink\n"). A naive unpacker
             links to the host file and then writes through the link. A test creates that
             host file first (mode 0666, so even a rootless box could write it) and checks
             it is unchanged afterwards.
  :latest    all of the above in one layer, in that order
  Every tag's config: Cmd ["/ok.txt"], architecture amd64, os linux. ok.txt = "ok\n".
"""
import io
import json
import hashlib
import os
import sys
import tarfile

MTIME = 1725580800  # 2024-09-06T00:00:00Z


class Layer:
    def __init__(self, path):
        self.tar = tarfile.open(path, "w", format=tarfile.PAX_FORMAT)

    def _info(self, name, kind, mode, uid=0, gid=0):
        ti = tarfile.TarInfo(name)
        ti.type = kind
        ti.mode = mode
        ti.uid, ti.gid = uid, gid
        ti.uname, ti.gname = "", ""
        ti.mtime = MTIME
        return ti

    def dir(self, name, mode=0o755, uid=0, gid=0):
        self.tar.addfile(self._info(name.rstrip("/") + "/", tarfile.DIRTYPE, mode, uid, gid))

    def file(self, name, data, mode=0o644, uid=0, gid=0, xattrs=None):
        if isinstance(data, str):
            data = data.encode()
        ti = self._info(name, tarfile.REGTYPE, mode, uid, gid)
        ti.size = len(data)
        if xattrs:
            ti.pax_headers = {"SCHILY.xattr." + k: v for k, v in xattrs.items()}
        self.tar.addfile(ti, io.BytesIO(data))

    def symlink(self, name, target):
        ti = self._info(name, tarfile.SYMTYPE, 0o777)
        ti.linkname = target
        self.tar.addfile(ti)

    def hardlink(self, name, target):
        ti = self._info(name, tarfile.LNKTYPE, 0o644)
        ti.linkname = target
        self.tar.addfile(ti)

    def fifo(self, name, mode=0o644):
        self.tar.addfile(self._info(name, tarfile.FIFOTYPE, mode))

    def close(self):
        self.tar.close()


def layers(busybox, out):
    with open(busybox, "rb") as f:
        bb = f.read()
    applets = sorted(
        a
        for a in os.popen(f"'{busybox}' --list").read().split()
        if a and "/" not in a and a != "busybox"
    )

    l1 = Layer(os.path.join(out, "layer1.tar"))
    for d in ["bin", "etc", "home", "proc", "sys", "dev", "base", "whdir", "opq", "opq/sub",
              "becomes-file"]:
        l1.dir(d)
    l1.dir("root", 0o700)
    l1.dir("tmp", 0o1777)
    l1.dir("home/user", 0o755, 1000, 1000)
    l1.file("bin/busybox", bb, 0o755)
    for a in applets:
        l1.symlink("bin/" + a, "busybox")
    l1.file("etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\n"
            "user:x:1000:1000:user:/home/user:/bin/sh\n"
            "odd:x:1234:5678:odd:/:/bin/sh\n"
            "nobody:x:65534:65534:nobody:/:/bin/false\n")
    l1.file("etc/group", "root:x:0:\nuser:x:1000:\noddgrp:x:5678:odd\nnogroup:x:65534:\n")
    l1.file("etc/box-test-image", "layers\n")
    l1.file("base/keep.txt", "kept from layer 1\n")
    l1.file("base/remove-me.txt", "layer 1, whited out by layer 2\n")
    l1.file("whdir/a.txt", "layer 1, the whole dir is whited out by layer 2\n")
    l1.file("opq/lower.txt", "layer 1, hidden by the opaque dir of layer 2\n")
    l1.file("opq/sub/deep.txt", "layer 1, hidden by the opaque dir of layer 2\n")
    l1.file("replace.txt", "v1\n")
    l1.file("becomes-file/child.txt", "layer 1, the dir becomes a file in layer 3\n")
    l1.close()

    l2 = Layer(os.path.join(out, "layer2.tar"))
    l2.dir("base")
    l2.file("base/.wh.remove-me.txt", b"")
    l2.file(".wh.whdir", b"")
    l2.dir("opq")
    l2.file("opq/.wh..wh..opq", b"")
    l2.file("opq/upper.txt", "layer 2\n")
    l2.file("replace.txt", "v2\n")
    l2.close()

    l3 = Layer(os.path.join(out, "layer3.tar"))
    l3.dir("owned", 0o755, 1000, 1000)
    l3.file("owned/user.txt", "owned by 1000:1000\n", 0o644, 1000, 1000)
    l3.file("owned/odd.txt", "owned by 1234:5678\n", 0o640, 1234, 5678)
    l3.dir("links")
    l3.file("links/target.txt", "hardlinked content\n")
    l3.hardlink("links/hardlink.txt", "links/target.txt")
    l3.symlink("links/rel-symlink", "target.txt")
    l3.symlink("links/abs-symlink", "/links/target.txt")
    l3.symlink("links/dangling", "/nonexistent")
    l3.dir("bin")
    l3.file("bin/suid", "#!/bin/sh\necho suid\n", 0o4755)
    l3.file("bin/sgid", "#!/bin/sh\necho sgid\n", 0o2755, 0, 5678)
    l3.dir("sticky", 0o1777)
    l3.fifo("fifo")
    l3.file("xattr.txt", "has an xattr\n", xattrs={"user.box.test": "hello"})
    l3.file("replace.txt", "v3\n")
    l3.file("becomes-file", "layer 3: was a directory in layer 1\n")
    l3.close()


def evil(out):
    def dotdot(t):
        t.file("../escape", "escaped via ..\n")
        t.dir("sub")
        t.file("sub/../../escape-nested", "escaped via sub/../..\n")

    def absolute(t):
        t.file("/tmp/box-escape-marker", "escaped via an absolute path\n")

    def symlink(t):
        t.symlink("link", "/tmp")
        t.file("link/box-escape-marker", "escaped via a symlink\n")

    def hardlink(t):
        t.hardlink("host-link", "/tmp/box-escape-hardlink-target")
        t.file("host-link", "overwritten through a hardlink\n")

    attacks = {"dotdot": [dotdot], "abs": [absolute], "symlink": [symlink],
               "hardlink": [hardlink], "all": [dotdot, absolute, symlink, hardlink]}
    for name, parts in attacks.items():
        t = Layer(os.path.join(out, name + ".tar"))
        t.file("ok.txt", "ok\n", 0o755)
        for p in parts:
            p(t)
        t.close()


def index(layout, amd64_tag, arm64_tag, new_tag):
    """Add NEW_TAG to LAYOUT: an OCI image index listing ARM64_TAG first, then AMD64_TAG."""
    path = os.path.join(layout, "index.json")
    with open(path) as f:
        top = json.load(f)
    by_tag = {
        m.get("annotations", {}).get("org.opencontainers.image.ref.name"): m
        for m in top["manifests"]
    }
    entries = []
    for tag, platform in [(arm64_tag, {"architecture": "arm64", "os": "linux", "variant": "v8"}),
                          (amd64_tag, {"architecture": "amd64", "os": "linux"})]:
        d = by_tag[tag]
        entries.append({"mediaType": d["mediaType"], "digest": d["digest"],
                        "size": d["size"], "platform": platform})
    blob = json.dumps({"schemaVersion": 2,
                       "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": entries}, indent=2).encode()
    digest = hashlib.sha256(blob).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(blob)
    keep = [m for m in top["manifests"]
            if m.get("annotations", {}).get("org.opencontainers.image.ref.name") != new_tag]
    keep.append({"mediaType": "application/vnd.oci.image.index.v1+json",
                 "digest": "sha256:" + digest, "size": len(blob),
                 "annotations": {"org.opencontainers.image.ref.name": new_tag}})
    top["manifests"] = keep
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(top, f)
    os.replace(tmp, path)
    print("sha256:" + digest)


def main(argv):
    if len(argv) >= 2 and argv[1] == "layers" and len(argv) == 4:
        layers(argv[2], argv[3])
    elif len(argv) == 3 and argv[1] == "evil":
        evil(argv[2])
    elif len(argv) == 6 and argv[1] == "index":
        index(*argv[2:])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)

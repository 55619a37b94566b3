#!/usr/bin/env python3
"""Split a root filesystem tarball into N layer tarballs for the pull benchmark.

    split-rootfs.py ROOTFS.tar OUTDIR [N]

Layer 1 holds every directory and the files outside the big trees; the big trees
(/usr/lib/x86_64-linux-gnu, the rest of /usr/lib and /usr/libexec, /usr/share) go to the
later layers, so each layer is tens to hundreds of MB like a real multi-layer image.
A hard link always travels with the file it links to.
"""
import sys
import tarfile

src, outdir = sys.argv[1], sys.argv[2]
BUCKETS = [
    ("usr/share/",),
    ("usr/lib/x86_64-linux-gnu/",),
    ("usr/lib/", "usr/libexec/", "usr/include/"),
]


def bucket(name: str) -> int:
    name = name.lstrip("./")
    for i, prefixes in enumerate(BUCKETS):
        if name.startswith(prefixes):
            return len(BUCKETS) - i  # 3, 2, 1
    return 0


with tarfile.open(src) as tin:
    members = tin.getmembers()
    where = {}
    for m in members:
        where[m.name] = 0 if m.isdir() else bucket(m.name)
    for m in members:
        if m.islnk():
            where[m.name] = where.get(m.linkname, where.get("./" + m.linkname.lstrip("./"), 0))
    outs = [tarfile.open(f"{outdir}/layer{i + 1}.tar", "w", format=tarfile.PAX_FORMAT) for i in range(4)]
    for m in members:
        f = tin.extractfile(m) if m.isreg() else None
        outs[where[m.name]].addfile(m, f)
    for t in outs:
        t.close()

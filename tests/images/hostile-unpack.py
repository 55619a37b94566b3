#!/usr/bin/env python3
"""Craft hostile layer tarballs for tests/integration/hostile_unpack.rs (pushed there with
umoci and skopeo, never by box).

    hostile-unpack.py longpath OUT.tar N   a PAX path of N components ("a/a/.../f"), 2N+1 bytes
    hostile-unpack.py longlink OUT.tar N   ok.txt, then a hardlink whose PAX linkpath is that long
    hostile-unpack.py sparse OUT.tar SPEC  old-GNU sparse files ('S' entries), then ok.txt.
        SPEC is NAME:REALSIZE[:OFFSET=CHAR...][,NAME:...]: a file of REALSIZE bytes (suffixes
        K M G T P: powers of 1024) holding 512 bytes of CHAR at each OFFSET, holes elsewhere.

Python's tarfile reads GNU sparse files but cannot write them, so the 'S' headers are written
by hand: the old GNU format keeps up to 4 (offset, numbytes) pairs and the real size in the
header itself; the data blocks follow in order. Numbers that do not fit 11 octal digits use
GNU base-256. Every other entry is plain PAX (tarfile).
"""
import io
import sys
import tarfile

MTIME = 1725580800  # 2024-09-06T00:00:00Z
BLOCK = 512


def size_of(text):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40, "P": 1 << 50}
    if text[-1:] in units:
        return int(text[:-1]) * units[text[-1]]
    return int(text)


def num(value, width):
    """A numeric header field: octal with a NUL when it fits, else GNU base-256."""
    if value < 8 ** (width - 1):
        return b"%0*o\0" % (width - 1, value)
    return b"\x80" + value.to_bytes(width - 1, "big")


def sparse_header(name, realsize, segments):
    """The 512-byte old-GNU header of a sparse file; segments: [(offset, numbytes)]."""
    assert len(segments) <= 4
    h = bytearray(BLOCK)

    def put(off, data):
        h[off:off + len(data)] = data

    put(0, name.encode())
    put(100, num(0o644, 8))
    put(108, num(0, 8))
    put(116, num(0, 8))
    put(124, num(sum(n for _, n in segments), 12))  # bytes stored in the archive
    put(136, num(MTIME, 12))
    put(156, b"S")
    put(257, b"ustar  \0")  # GNU magic + version
    for i, (offset, numbytes) in enumerate(segments):
        put(386 + 24 * i, num(offset, 12))
        put(386 + 24 * i + 12, num(numbytes, 12))
    put(482, b"\0")  # not extended
    put(483, num(realsize, 12))
    put(148, b" " * 8)
    put(148, b"%06o\0 " % sum(h))
    return bytes(h)


def plain(tar, name, data):
    ti = tarfile.TarInfo(name)
    ti.mode, ti.mtime, ti.size = 0o644, MTIME, len(data)
    tar.addfile(ti, io.BytesIO(data))


def longpath(out, n):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        plain(tar, "a/" * n + "f", b"deep\n")


def longlink(out, n):
    with tarfile.open(out, "w", format=tarfile.PAX_FORMAT) as tar:
        plain(tar, "ok.txt", b"ok\n")
        ti = tarfile.TarInfo("link")
        ti.type, ti.mtime, ti.linkname = tarfile.LNKTYPE, MTIME, "a/" * n + "ok.txt"
        tar.addfile(ti)


def sparse(out, spec):
    with open(out, "wb") as f:
        for item in spec.split(","):
            name, real, *data = item.split(":")
            realsize = size_of(real)
            chunks = []
            for d in data:
                offset, char = d.split("=")
                chunks.append((size_of(offset), char.encode() * BLOCK))
            chunks.sort()
            # The last pair marks the real size when the file ends in a hole.
            segments = [(o, len(b)) for o, b in chunks]
            if not chunks or chunks[-1][0] + BLOCK < realsize:
                segments.append((realsize, 0))
            f.write(sparse_header(name, realsize, segments))
            for _, b in chunks:
                f.write(b)
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            plain(tar, "ok.txt", b"ok\n")
        f.write(buf.getvalue())  # ok.txt and the end-of-archive blocks


def main(argv):
    if len(argv) == 4 and argv[1] == "longpath":
        longpath(argv[2], int(argv[3]))
    elif len(argv) == 4 and argv[1] == "longlink":
        longlink(argv[2], int(argv[3]))
    elif len(argv) == 4 and argv[1] == "sparse":
        sparse(argv[2], argv[3])
    else:
        sys.exit(__doc__.split("\n\n")[1])


if __name__ == "__main__":
    main(sys.argv)

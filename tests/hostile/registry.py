#!/usr/bin/env python3
"""A registry that misbehaves on purpose, for box's reliability tests.

    registry.py PORTFILE

Listens on 127.0.0.1 (a free port, written to PORTFILE once ready) and speaks just enough of
the distribution API v2 for `box pull 127.0.0.1:PORT/hostile/<scenario>:latest`. A real
registry (Debian's docker-registry) cannot be made to lie, so this one does, one way per
scenario; every other byte it serves is valid:

  ok            a valid one-layer image (sanity check for the server itself)
  truncated     the layer's body stops halfway (Content-Length promises the full size)
  oversized     the layer body is 1 MiB longer than its descriptor's size
  digest        the layer body has one byte flipped (same size, wrong digest)
  badlength     Content-Length and body are 10 bytes short of the descriptor's size
  notjson       the manifest is not JSON
  hugemanifest  the manifest is 100 MB
  hang          the manifest request is accepted and never answered
  hangblob      the layer request sends headers and half the body, then stalls
  bomb          a 4.5 MiB gzip layer inflating to a 1 GiB file of zeros (diff_id of a tiny tar)
  badconfig     the config blob is not JSON (digest and size valid)
  trickle       the layer is sent one byte a second (Content-Length right, every byte valid)
  tricklemanifest  the manifest is sent one byte a second
  bigtoken      every request needs a Bearer token, and the token service (/token on this
                server) hands out a 1,000,000-byte token

Images that are valid but hostile in what they hold (pulls must succeed or fail cleanly):

  devnode       a layer with a char device (dev/null 1:3), a block device (dev/sda 8:0) and
                a fifo: a rootless unpack skips the devices with a warning, keeps the rest
  escape        a runnable image for escape checks: static busybox (from the host's
                /bin/busybox) with applet links in /bin, `evil -> /tmp` and
                `up -> ../../../../../../tmp` symlinks, and two tiny static ELF probes:
                /probe/keyctl (exit status = errno of keyctl(KEYCTL_GET_KEYRING_ID,
                session, create), 0 when it worked) and /probe/unshare-user (the same for
                unshare(CLONE_NEWUSER)). Cmd ["/bin/sh"], Env PATH=/bin.
  million       one layer of 1,000,000 empty files in 1000 directories (gzip, built once and
                cached in /var/tmp; slow tests only)

    registry.py --prepare bomb|million

builds the cached layer of a big scenario and exits (so a test can time box alone).
"""
import gzip
import hashlib
import http.server
import io
import json
import os
import struct
import sys
import tarfile
import threading
import time
import zlib

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZ = "application/vnd.oci.image.layer.v1.tar+gzip"


def sha(b: bytes) -> str:
    return "sha256:" + hashlib.sha256(b).hexdigest()


def tar_of(files: dict) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            ti.mode = 0o755
            ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def gz(b: bytes) -> bytes:
    return gzip.compress(b, mtime=0)


BOMB_SIZE = 1 << 30


def bomb_layer() -> bytes:
    """gzip of a tar holding one 1 GiB file of zeros (about 4.5 MiB compressed). Built once
    and cached in /var/tmp, since deflating a GiB takes seconds."""
    cache = "/var/tmp/box-hostile-bomb-v1.tar.gz"
    if os.path.exists(cache):
        with open(cache, "rb") as f:
            return f.read()
    c = zlib.compressobj(1, zlib.DEFLATED, 31)
    ti = tarfile.TarInfo("zeros")
    ti.size = BOMB_SIZE
    out = [c.compress(ti.tobuf(format=tarfile.PAX_FORMAT))]
    chunk = bytes(1 << 20)
    out += [c.compress(chunk) for _ in range(BOMB_SIZE >> 20)]
    out.append(c.compress(bytes(1024)))  # end-of-archive blocks
    out.append(c.flush())
    data = b"".join(out)
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.rename(tmp, cache)
    return data


class Image:
    def __init__(self, layer_tar: bytes, layer_blob: bytes = None, config: bytes = None,
                 layers=None, cmd=None, env=None):
        """One layer (`layer_tar`, served as `layer_blob` or its gzip), or `layers`: a list
        of (diff_id, blob) pairs. The hostile scenarios act on the *last* layer."""
        if layers is None:
            blob = layer_blob if layer_blob is not None else gz(layer_tar)
            layers = [(sha(layer_tar), blob)]
        self.layers = [blob for _, blob in layers]
        self.layer = self.layers[-1]
        cfg = {"Cmd": cmd or ["/hello"]}
        if env:
            cfg["Env"] = env
        self.config = config or json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": cfg,
            "rootfs": {"type": "layers", "diff_ids": [d for d, _ in layers]},
        }).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER_GZ, "digest": sha(b), "size": len(b)}
                       for b in self.layers],
        }).encode()
        self.blobs = {sha(self.config): self.config}
        for b in self.layers:
            self.blobs[sha(b)] = b


HELLO = tar_of({"hello": b"#!/bin/sh\necho hello\n"})
IMAGES = {name: Image(HELLO) for name in
          ["ok", "truncated", "oversized", "digest", "badlength", "notjson", "hugemanifest",
           "hang", "hangblob", "trickle", "tricklemanifest", "bigtoken"]}
IMAGES["badconfig"] = Image(HELLO, config=b"this is not json {")


def devnode_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, kind, mode, major, minor in [("dev", tarfile.DIRTYPE, 0o755, 0, 0),
                                               ("dev/null", tarfile.CHRTYPE, 0o666, 1, 3),
                                               ("dev/sda", tarfile.BLKTYPE, 0o660, 8, 0),
                                               ("dev/fifo", tarfile.FIFOTYPE, 0o644, 0, 0)]:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.devmajor, ti.devminor = kind, mode, major, minor
            ti.mtime = 1700000000
            t.addfile(ti)
        ti = tarfile.TarInfo("ok.txt")
        ti.size, ti.mode, ti.mtime = 3, 0o644, 1700000000
        t.addfile(ti, io.BytesIO(b"ok\n"))
    return buf.getvalue()


def tiny_elf(code: bytes) -> bytes:
    """A static x86-64 ELF executable: one R+X segment holding `code` after the headers."""
    base = 0x400000
    ehdr, phdr = 64, 56
    total = ehdr + phdr + len(code)
    header = struct.pack("<16sHHIQQQIHHHHHH", b"\x7fELF\x02\x01\x01" + bytes(9), 2, 0x3E, 1,
                         base + ehdr + phdr, ehdr, 0, 0, ehdr, phdr, 1, 64, 0, 0)
    prog = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, total, total, 0x1000)
    return header + prog + code


def syscall_probe(nr: int, a1: int, a2: int = 0, a3: int = 0) -> bytes:
    """exit(r < 0 ? -r : 0) where r = syscall(nr, a1, a2, a3, 0)."""
    def imm(op, v):
        return bytes([op]) + struct.pack("<i", v)
    code = (imm(0xB8, nr) + imm(0xBF, a1) + imm(0xBE, a2) + imm(0xBA, a3)
            + b"\x45\x31\xd2"          # xor r10d, r10d
            + b"\x0f\x05"              # syscall
            + b"\x31\xff"              # xor edi, edi
            + b"\x48\x85\xc0"          # test rax, rax
            + b"\x79\x06"              # jns +6
            + b"\x48\x89\xc7"          # mov rdi, rax
            + b"\x48\xf7\xdf"          # neg rdi
            + imm(0xB8, 60)             # mov eax, SYS_exit
            + b"\x0f\x05")             # syscall
    return tiny_elf(code)


SYS_KEYCTL, SYS_UNSHARE = 250, 272
KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING = 0, -3
CLONE_NEWUSER = 0x10000000
BUSYBOX = os.environ.get("BOX_BUSYBOX", "/bin/busybox")


def escape_layer() -> bytes:
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    applets = sorted(a for a in os.popen(f"'{BUSYBOX}' --list").read().split()
                     if a and "/" not in a and a != "busybox")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        def add(name, kind=tarfile.REGTYPE, mode=0o755, data=None, link=""):
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname = kind, mode, 1700000000, link
            if data is not None:
                ti.size = len(data)
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
        for d in ["bin", "etc", "proc", "sys", "dev", "probe", "data"]:
            add(d, tarfile.DIRTYPE)
        add("tmp", tarfile.DIRTYPE, 0o1777)
        add("bin/busybox", data=bb)
        for a in applets:
            add("bin/" + a, tarfile.SYMTYPE, 0o777, link="busybox")
        add("etc/passwd", mode=0o644, data=b"root:x:0:0:root:/:/bin/sh\n")
        add("etc/group", mode=0o644, data=b"root:x:0:\n")
        add("evil", tarfile.SYMTYPE, 0o777, link="/tmp")
        add("up", tarfile.SYMTYPE, 0o777, link="../../../../../../tmp")
        add("data/evil", tarfile.SYMTYPE, 0o777, link="/tmp")
        add("probe/keyctl", data=syscall_probe(SYS_KEYCTL, KEYCTL_GET_KEYRING_ID,
                                               KEY_SPEC_SESSION_KEYRING, 1))
        add("probe/unshare-user", data=syscall_probe(SYS_UNSHARE, CLONE_NEWUSER))
    return buf.getvalue()


MILLION = 1_000_000


class _Sha256Writer:
    """A file-like sink that hashes what passes through it on its way to `inner`."""

    def __init__(self, inner):
        self.inner, self.h = inner, hashlib.sha256()

    def write(self, b):
        self.h.update(b)
        return self.inner.write(b)


def million_layer():
    """(diff_id, gzip blob) of a tar with 1000 directories of 1000 empty files each,
    cached in /var/tmp (the diff_id beside it)."""
    cache = "/var/tmp/box-hostile-million-v1.tar.gz"
    if not (os.path.exists(cache) and os.path.exists(cache + ".diffid")):
        _build_million(cache)
    with open(cache, "rb") as f:
        blob = f.read()
    with open(cache + ".diffid") as f:
        return f.read().strip(), blob


def _build_million(cache):
    tmp = f"{cache}.{os.getpid()}"
    with open(tmp, "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as z:
            hashing = _Sha256Writer(z)
            with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.USTAR_FORMAT) as t:
                for d in range(MILLION // 1000):
                    ti = tarfile.TarInfo(f"d{d:03}")
                    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, 0o755, 1700000000
                    t.addfile(ti)
                    for f in range(1000):
                        ti = tarfile.TarInfo(f"d{d:03}/f{f:03}")
                        ti.mode, ti.mtime = 0o644, 1700000000
                        t.addfile(ti)
    with open(tmp + ".diffid", "w") as f:
        f.write("sha256:" + hashing.h.hexdigest())
    os.rename(tmp + ".diffid", cache + ".diffid")
    os.rename(tmp, cache)


_lazy = {}
_lazy_lock = threading.Lock()


def _build(name: str) -> Image:
    if name == "bomb":
        return Image(HELLO, layer_blob=bomb_layer())
    if name == "devnode":
        return Image(devnode_layer(), cmd=["/ok.txt"])
    if name == "escape":
        return Image(escape_layer(), cmd=["/bin/sh"], env=["PATH=/bin"])
    if name == "million":
        return Image(None, layers=[million_layer()], cmd=["/d000/f000"])
    return None


def image(name: str) -> Image:
    if name in IMAGES:
        return IMAGES[name]
    if name not in ("bomb", "devnode", "escape", "million"):
        return None
    with _lazy_lock:
        if name not in _lazy:
            _lazy[name] = _build(name)
        return _lazy[name]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send(self, code, body=b"", ctype="application/json", length=None, headers=()):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def trickle(self, body, ctype):
        """Headers at once, then the body one byte a second (until the client leaves)."""
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(1)
        except (BrokenPipeError, ConnectionResetError):
            pass
        self.close_connection = True

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["v2"]:
            return self.send(200, b"{}")
        if parts == ["token"]:
            return self.send(200, json.dumps({"token": "A" * 1_000_000}).encode())
        if (len(parts) > 2 and parts[:3] == ["v2", "hostile", "bigtoken"]
                and not self.headers.get("Authorization")):
            port = self.server.server_address[1]
            challenge = (f'Bearer realm="http://127.0.0.1:{port}/token",service="hostile",'
                         'scope="repository:hostile/bigtoken:pull"')
            return self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}',
                             headers=[("WWW-Authenticate", challenge)])
        # v2/hostile/<scenario>/{manifests,blobs}/<ref>
        if len(parts) != 5 or parts[0] != "v2" or parts[1] != "hostile":
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        scenario, kind, ref = parts[2], parts[3], parts[4]
        img = image(scenario)
        if img is None:
            return self.send(404, b'{"errors":[{"code":"NAME_UNKNOWN"}]}')
        if kind == "manifests":
            return self.manifest(scenario, img)
        if kind == "blobs":
            blob = img.blobs.get(ref)
            if blob is None:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            return self.blob(scenario, img, blob, is_layer=(ref == sha(img.layer)))
        return self.send(404)

    def manifest(self, scenario, img):
        digest = ("Docker-Content-Digest", sha(img.manifest))
        if scenario == "notjson":
            return self.send(200, b"<html>not a manifest</html>", OCI_MANIFEST)
        if scenario == "hugemanifest":
            size = 100 * 1024 * 1024
            self.send_response(200)
            self.send_header("Content-Type", OCI_MANIFEST)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if self.command == "HEAD":
                return
            chunk = b" " * (1 << 20)
            try:
                for _ in range(100):
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                pass
            return
        if scenario == "hang":
            time.sleep(3600)
            return
        if scenario == "tricklemanifest":
            return self.trickle(img.manifest, OCI_MANIFEST)
        return self.send(200, img.manifest, OCI_MANIFEST, headers=[digest])

    def blob(self, scenario, img, blob, is_layer):
        if not is_layer:
            return self.send(200, blob, "application/octet-stream")
        if scenario == "truncated":
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if scenario == "oversized":
            return self.send(200, blob + bytes(1 << 20), "application/octet-stream")
        if scenario == "digest":
            bad = bytearray(blob)
            bad[len(bad) // 2] ^= 0xFF
            return self.send(200, bytes(bad), "application/octet-stream")
        if scenario == "badlength":
            return self.send(200, blob[:-10], "application/octet-stream")
        if scenario == "trickle":
            return self.trickle(blob, "application/octet-stream")
        if scenario == "hangblob":
            self.send_response(200)
            self.send_header("Content-Length", str(len(blob)))
            self.end_headers()
            self.wfile.write(blob[: len(blob) // 2])
            self.wfile.flush()
            time.sleep(3600)
            return
        return self.send(200, blob, "application/octet-stream")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--prepare":
        {"bomb": bomb_layer, "million": million_layer}[sys.argv[2]]()
        return
    portfile = sys.argv[1]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    srv.daemon_threads = True
    tmp = portfile + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, portfile)
    srv.serve_forever()


if __name__ == "__main__":
    main()

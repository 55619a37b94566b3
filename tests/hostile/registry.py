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
"""
import gzip
import hashlib
import http.server
import io
import json
import os
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
    def __init__(self, layer_tar: bytes, layer_blob: bytes = None, config: bytes = None):
        self.layer = layer_blob if layer_blob is not None else gz(layer_tar)
        self.config = config or json.dumps({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [sha(layer_tar)]},
        }).encode()
        self.manifest = json.dumps({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": sha(self.config), "size": len(self.config)},
            "layers": [{"mediaType": OCI_LAYER_GZ, "digest": sha(self.layer), "size": len(self.layer)}],
        }).encode()
        self.blobs = {sha(self.layer): self.layer, sha(self.config): self.config}


HELLO = tar_of({"hello": b"#!/bin/sh\necho hello\n"})
IMAGES = {name: Image(HELLO) for name in
          ["ok", "truncated", "oversized", "digest", "badlength", "notjson", "hugemanifest",
           "hang", "hangblob"]}
IMAGES["badconfig"] = Image(HELLO, config=b"this is not json {")
_bomb = None
_bomb_lock = threading.Lock()


def image(name: str) -> Image:
    global _bomb
    if name == "bomb":
        with _bomb_lock:
            if _bomb is None:
                _bomb = Image(HELLO, layer_blob=bomb_layer())
        return _bomb
    return IMAGES.get(name)


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

    def do_GET(self):
        parts = self.path.split("?")[0].strip("/").split("/")
        if parts == ["v2"]:
            return self.send(200, b"{}")
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

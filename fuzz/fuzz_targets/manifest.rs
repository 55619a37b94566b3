//! The manifest, index and config parsing of `Client::resolve`, end to end: a registry on
//! loopback (in this process) serves the fuzz input as the tag's manifest, as the manifest an
//! index points to, and as the config blob. Never a panic; what resolves keeps box's
//! invariants (one diff_id per layer, the digest of the bytes it returns).
//!
//! Input: byte 0 picks the Content-Type, byte 1 holds flags (bit 0: patch the digests and
//! sizes in the JSON so that they match the other parts, which random bytes never do; bit 1:
//! ask for linux/arm64/v8 instead of the host), then up to three parts separated by
//! `\n--8<--\n`: the tag's manifest, the manifest an index points to, the config.
#![no_main]
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use boxctr::registry::{Client, ClientConfig, Platform, Reference};
use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const SEP: &[u8] = b"\n--8<--\n";
const TYPES: &[&str] = &[
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/json",
    "",
];

#[derive(Default)]
struct Served {
    top: Vec<u8>,
    top_type: String,
    child: Vec<u8>,
    child_digest: String,
    config: Vec<u8>,
    config_digest: String,
}

static SERVED: Mutex<Option<Served>> = Mutex::new(None);
static ADDR: OnceLock<String> = OnceLock::new();
static CLIENT: OnceLock<Client> = OnceLock::new();

fn sha(b: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(b)))
}

fn respond(s: &mut TcpStream, head_only: bool, status: u16, ctype: &str, body: &[u8]) {
    let mut h = format!(
        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\
         Docker-Distribution-API-Version: registry/2.0\r\n",
        body.len()
    );
    if !ctype.is_empty() {
        h.push_str(&format!("Content-Type: {ctype}\r\n"));
    }
    h.push_str("\r\n");
    let _ = s.write_all(h.as_bytes());
    if !head_only {
        let _ = s.write_all(body);
    }
}

fn handle(mut s: TcpStream) {
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 65536 {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let line = String::from_utf8_lossy(&buf);
    let mut words = line.split_whitespace();
    let method = words.next().unwrap_or("");
    let path = words.next().unwrap_or("").split('?').next().unwrap_or("");
    let head = method == "HEAD";
    let guard = SERVED.lock().unwrap();
    let Some(sv) = guard.as_ref() else {
        return respond(&mut s, head, 500, "", b"");
    };
    if path == "/v2/" {
        return respond(&mut s, head, 200, "application/json", b"{}");
    }
    if let Some(r) = path.strip_prefix("/v2/fuzz/manifests/") {
        if r == "latest" {
            return respond(&mut s, head, 200, &sv.top_type, &sv.top);
        }
        if r == sv.child_digest {
            return respond(&mut s, head, 200, "", &sv.child);
        }
    }
    if let Some(d) = path.strip_prefix("/v2/fuzz/blobs/")
        && d == sv.config_digest
    {
        return respond(&mut s, head, 200, "application/octet-stream", &sv.config);
    }
    respond(
        &mut s,
        head,
        404,
        "application/json",
        br#"{"errors":[{"code":"MANIFEST_UNKNOWN"}]}"#,
    )
}

fn addr() -> &'static str {
    ADDR.get_or_init(|| {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let a = l.local_addr().unwrap().to_string();
        std::thread::spawn(move || {
            for c in l.incoming().flatten() {
                handle(c);
            }
        });
        a
    })
}

/// Point `v`'s descriptor at `bytes` when `v` is a JSON object with that field.
fn patch_desc(v: &mut Value, bytes: &[u8]) {
    if let Some(o) = v.as_object_mut() {
        o.insert("digest".into(), json!(sha(bytes)));
        o.insert("size".into(), json!(bytes.len()));
    }
}

fn patched(json_bytes: &[u8], config: &[u8], child: Option<&[u8]>) -> Vec<u8> {
    let Ok(mut v) = serde_json::from_slice::<Value>(json_bytes) else {
        return json_bytes.to_vec();
    };
    if let Some(c) = v.get_mut("config") {
        patch_desc(c, config);
    }
    if let (Some(child), Some(ms)) = (child, v.get_mut("manifests").and_then(Value::as_array_mut)) {
        for m in ms {
            patch_desc(m, child);
        }
    }
    serde_json::to_vec(&v).unwrap_or_else(|_| json_bytes.to_vec())
}

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while parts.len() < 2 {
        match rest.windows(SEP.len()).position(|w| w == SEP) {
            Some(i) => {
                parts.push(&rest[..i]);
                rest = &rest[i + SEP.len()..];
            }
            None => break,
        }
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let (ty, flags, parts) = (data[0], data[1], split(&data[2..]));
    let top = parts[0];
    let child = parts.get(1).copied().unwrap_or(b"");
    let config = parts.get(2).copied().unwrap_or(b"");
    let (top, child) = if flags & 1 != 0 {
        let child = patched(child, config, None);
        (patched(top, config, Some(&child)), child)
    } else {
        (top.to_vec(), child.to_vec())
    };
    *SERVED.lock().unwrap() = Some(Served {
        top_type: TYPES[ty as usize % TYPES.len()].to_string(),
        child_digest: sha(&child),
        config_digest: sha(config),
        top,
        child,
        config: config.to_vec(),
    });
    let platform = if flags & 2 != 0 {
        Platform::parse("linux/arm64/v8").unwrap()
    } else {
        Platform::host()
    };
    let reference = Reference::parse(&format!("{}/fuzz:latest", addr())).unwrap();
    let client = CLIENT.get_or_init(|| {
        Client::new(ClientConfig::default()).with_timing(
            Duration::from_secs(2),
            Duration::from_secs(2),
            Duration::from_millis(1),
        )
    });
    if let Ok(r) = client.resolve(&reference, &platform) {
        assert_eq!(
            r.manifest.layers().len(),
            r.config.rootfs().diff_ids().len()
        );
        assert_eq!(r.manifest_digest, sha(&r.manifest_bytes));
        assert_eq!(
            sha(&r.config_bytes),
            r.manifest.config().digest().to_string()
        );
    }
});

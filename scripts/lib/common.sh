# Shared helpers for the scripts in scripts/. Source it; it sets nothing but functions and
# REPO_ROOT (the checkout this file belongs to).
# shellcheck shell=bash

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

say() { printf '%s\n' "$*" >&2; }
step() { printf '\n==> %s\n' "$*" >&2; }
die() {
    printf 'error: %s\n' "$*" >&2
    exit 1
}

require_root() {
    if [ "$(id -u)" -ne 0 ]; then
        die "$(basename "$0") must run as root: in a root shell (su -) run $0 $*, or sudo $0 $*"
    fi
}

# The fixtures directory: $BOX_FIXTURES, else ../shared/fixtures beside the checkout.
fixtures_dir() {
    if [ -n "${BOX_FIXTURES:-}" ]; then
        printf '%s\n' "$BOX_FIXTURES"
    else
        printf '%s\n' "$(cd "$REPO_ROOT/.." && pwd)/shared/fixtures"
    fi
}

# A free TCP port on 127.0.0.1 (the kernel picks it; tiny race until the caller binds it).
free_port() {
    python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# Make `cargo` usable: PATH, root's rustup install, or install rustup for root (needs the
# internet; set BOX_NO_RUSTUP=1 to refuse). Exports PATH.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        for dir in "${CARGO_HOME:-$HOME/.cargo}/bin" /root/.cargo/bin; do
            if [ -x "$dir/cargo" ]; then
                export PATH="$dir:$PATH"
                break
            fi
        done
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        if [ -n "${BOX_NO_RUSTUP:-}" ]; then
            die "cargo not found: install Rust >= 1.85 (https://rustup.rs) or put cargo on PATH"
        fi
        step "cargo not found: installing Rust with rustup (https://rustup.rs) into $HOME/.cargo"
        command -v curl >/dev/null || die "curl is missing: run scripts/setup-test-host first"
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
            sh -s -- -y --profile minimal --component clippy,rustfmt >&2 ||
            die "cannot install Rust with rustup: install Rust >= 1.85 by hand and retry"
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
    local v
    v="$(cargo --version | awk '{print $2}')"
    local major="${v%%.*}" minor
    minor="$(printf '%s' "$v" | cut -d. -f2)"
    if [ "$major" -lt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -lt 85 ]; }; then
        die "cargo $v is too old (box uses edition 2024): install Rust >= 1.85 with rustup"
    fi
}

# When a normal user runs a script through sudo, build into target/sudo so root-owned build
# files never land in the user's own target/ (their next plain `cargo build` would fail).
choose_target_dir() {
    if [ -z "${CARGO_TARGET_DIR:-}" ] && [ -n "${SUDO_UID:-}" ] && [ "${SUDO_UID}" != 0 ]; then
        if [ ! -d "$REPO_ROOT/target" ]; then
            install -d -o "$SUDO_UID" -g "${SUDO_GID:-$SUDO_UID}" "$REPO_ROOT/target"
        fi
        export CARGO_TARGET_DIR="$REPO_ROOT/target/sudo"
        say "building as root into $CARGO_TARGET_DIR (your own target/ stays yours)"
    fi
}

target_dir() {
    printf '%s\n' "${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
}

# Start Debian's docker-registry on a free 127.0.0.1 port with its storage under DIR (no auth,
# plain http). Sets REGISTRY_PID and REGISTRY_PORT; stop it with stop_registry.
start_registry() { # DIR
    local dir=$1 tries
    command -v docker-registry >/dev/null || die "docker-registry is missing: run sudo scripts/setup-test-host"
    mkdir -p "$dir/storage"
    for tries in 1 2 3 4 5; do
        REGISTRY_PORT="$(free_port)"
        cat >"$dir/config.yml" <<YML
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
YML
        docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
        REGISTRY_PID=$!
        local i
        for i in $(seq 1 100); do
            if curl -fsS -o /dev/null "http://127.0.0.1:$REGISTRY_PORT/v2/" 2>/dev/null; then
                say "registry listening on 127.0.0.1:$REGISTRY_PORT (pid $REGISTRY_PID, log $dir/registry.log)"
                return 0
            fi
            kill -0 "$REGISTRY_PID" 2>/dev/null || break
            sleep 0.1
        done
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
        say "registry did not start on port $REGISTRY_PORT (try $tries): $(tail -n 3 "$dir/registry.log")"
    done
    die "cannot start docker-registry: see $dir/registry.log"
}

stop_registry() {
    if [ -n "${REGISTRY_PID:-}" ]; then
        kill "$REGISTRY_PID" 2>/dev/null || true
        wait "$REGISTRY_PID" 2>/dev/null || true
        REGISTRY_PID=""
    fi
}

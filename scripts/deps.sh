#!/usr/bin/env bash
# Install the Debian packages syscont needs to build, run and test, only if
# they are missing. Runs `apt-get update` at most once. Needs root.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

PACKAGES=(runc docker.io containerd libseccomp-dev busybox-static debootstrap
          lxcfs procps util-linux python3 gcc libc6-dev jq)

missing=()
for p in "${PACKAGES[@]}"; do
    status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
    [ "$status" = "install ok installed" ] || missing+=("$p")
done

if [ "${#missing[@]}" -gt 0 ]; then
    log "installing missing packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
else
    log "all ${#PACKAGES[@]} packages present"
fi

if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null 2>&1 ||
    die "cargo not found: install the Rust toolchain (https://rustup.rs) and put cargo on PATH"
log "cargo: $(cargo --version)"

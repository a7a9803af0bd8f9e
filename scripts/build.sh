#!/usr/bin/env bash
# Build the two binaries (release).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
cd "$SYSCONT_ROOT"
log "cargo build --release"
cargo build --release
for b in syscont-runc syscont-supervisor; do
    [ -x "$SYSCONT_BIN_DIR/$b" ] || die "build did not produce $SYSCONT_BIN_DIR/$b"
done

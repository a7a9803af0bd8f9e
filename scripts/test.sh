#!/usr/bin/env bash
# The test command: install what is missing, build, start the test
# environment (supervisor + dedicated containerd/dockerd), build the images,
# run every test (unit and integration), and stop the environment on exit.
#
# With CI set, a missing piece of the environment fails the tests; without it
# the integration tests print "SKIPPED: <reason>" instead.
# Extra arguments go to `cargo test` (e.g. scripts/test.sh --test docker_tools).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"
cd "$SYSCONT_ROOT"
start=$(date +%s)

"$SYSCONT_ROOT/scripts/deps.sh"
"$SYSCONT_ROOT/scripts/build.sh"
trap '"$SYSCONT_ROOT/scripts/env-down.sh" || true' EXIT
"$SYSCONT_ROOT/scripts/env-up.sh"
"$SYSCONT_ROOT/scripts/images.sh" busybox bookworm systemd

export DOCKER_HOST SYSCONT_TEST_STATE_DIR
export SYSCONT_TEST_LOGS
log "cargo test --release (DOCKER_HOST=$DOCKER_HOST)"
cargo test --release --no-fail-fast "$@" -- --test-threads="${SYSCONT_TEST_THREADS:-4}"
log "all tests passed in $(( $(date +%s) - start )) s"

# shellcheck shell=bash
# Common settings and helpers for the syscont scripts. Sourced, not run.
#
# Everything the scripts start lives under these paths, so that it never
# touches the host's own Docker (/var/run/docker.sock) or anything else.

SYSCONT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SYSCONT_BIN_DIR="${SYSCONT_BIN_DIR:-$SYSCONT_ROOT/target/release}"

# Test environment (overridable, but the Rust tests use the same defaults).
SYSCONT_TEST_RUN="${SYSCONT_TEST_RUN:-/run/syscont-test}"
SYSCONT_TEST_STATE_DIR="${SYSCONT_TEST_STATE_DIR:-$SYSCONT_TEST_RUN/supervisor}"
SYSCONT_TEST_DATA="${SYSCONT_TEST_DATA:-/var/lib/syscont-test}"
SYSCONT_TEST_LOGS="${SYSCONT_TEST_LOGS:-/var/log/syscont-test}"
# syscont-runc's --syscont-data-dir for the test daemons (per-container state, id pool).
SYSCONT_TEST_SYSCONT_DATA="${SYSCONT_TEST_SYSCONT_DATA:-$SYSCONT_TEST_DATA/syscont}"
SYSCONT_TEST_CACHE="${SYSCONT_TEST_CACHE:-/var/cache/syscont-test}"
SYSCONT_DOCKER_SOCK="$SYSCONT_TEST_RUN/docker.sock"
SYSCONT_CONTAINERD_SOCK="$SYSCONT_TEST_RUN/containerd/containerd.sock"
export DOCKER_HOST="unix://$SYSCONT_DOCKER_SOCK"
export SYSCONT_TEST_STATE_DIR SYSCONT_TEST_SYSCONT_DATA

# Images built locally (never pulled).
SYSCONT_BUSYBOX_IMAGE="syscont-busybox:test"
SYSCONT_BOOKWORM_IMAGE="syscont-bookworm:test"
SYSCONT_SYSTEMD_IMAGE="syscont-systemd:test"
SYSCONT_DEMO_IMAGE="$SYSCONT_BOOKWORM_IMAGE"

log() { printf '[syscont %s] %s\n' "$(basename "$0" .sh)" "$*" >&2; }
die() { printf '[syscont %s] ERROR: %s\n' "$(basename "$0" .sh)" "$*" >&2; exit 1; }

require_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (try: sudo $0)"
}

# pid_alive PIDFILE EXE: true if PIDFILE names a live process running a
# program named like EXE (so a recycled pid is never mistaken for our daemon;
# the same daemon built in another checkout still counts).
pid_alive() {
    local pidfile="$1" exe="$2" pid real
    [ -s "$pidfile" ] || return 1
    pid="$(cat "$pidfile")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    [ -d "/proc/$pid" ] || return 1
    real="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    real="${real% (deleted)}"
    [ "$(basename "$real")" = "$(basename "$exe")" ]
}

# pid_current PIDFILE EXE: pid_alive, and running exactly EXE as built now
# (not a replaced binary, not another checkout's).
pid_current() {
    pid_alive "$1" "$2" || return 1
    [ "$(readlink "/proc/$(cat "$1")/exe")" = "$(readlink -f "$2")" ]
}

# stop_pidfile NAME PIDFILE EXE: SIGTERM the daemon named by PIDFILE, wait,
# then SIGKILL. Only that pid, never a name match.
stop_pidfile() {
    local name="$1" pidfile="$2" exe="$3" pid i
    if ! pid_alive "$pidfile" "$exe"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(cat "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do
        [ -d "/proc/$pid" ] || break
        sleep 0.2
    done
    if [ -d "/proc/$pid" ]; then
        log "$name (pid $pid) did not stop in 30 s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.5
    fi
    rm -f "$pidfile"
}

# wait_for DESCRIPTION SECONDS COMMAND...: poll COMMAND until it succeeds.
wait_for() {
    local what="$1" secs="$2" i
    shift 2
    for i in $(seq 1 $((secs * 5))); do
        if "$@" >/dev/null 2>&1; then return 0; fi
        sleep 0.2
    done
    return 1
}

docker_cli() { docker -H "unix://$SYSCONT_DOCKER_SOCK" "$@"; }

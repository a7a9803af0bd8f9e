#!/usr/bin/env bash
# Start the test environment if it is not already running:
#   - syscont-supervisor --state-dir $SYSCONT_TEST_STATE_DIR
#   - a dedicated containerd and dockerd (own data root, exec root, sockets,
#     no bridge, no iptables) with the syscont-runc runtime registered.
# Every daemon is tracked by a pid file and checked for liveness by pid and
# executable; nothing here touches the host's own Docker or containerd.
#
# SYSCONT_TEST_SUPERVISOR=0 skips the supervisor (to run the tests' plain-runc
# baseline before the binaries exist).
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

SUPERVISOR="$SYSCONT_BIN_DIR/syscont-supervisor"
RUNTIME="$SYSCONT_BIN_DIR/syscont-runc"
CONTAINERD="$(command -v containerd)" || die "containerd not installed (run scripts/deps.sh)"
DOCKERD="$(command -v dockerd)" || die "dockerd not installed (run scripts/deps.sh)"

mkdir -p "$SYSCONT_TEST_RUN" "$SYSCONT_TEST_DATA" "$SYSCONT_TEST_LOGS"
chmod 0711 "$SYSCONT_TEST_RUN"
# One env-up at a time: two at once would both start daemons, and the pid
# file would name the one that lost (and exited). flock -o: the daemons
# started below do not inherit the lock.
if [ -z "${ENV_UP_HOLDS_LOCK:-}" ]; then
    ENV_UP_HOLDS_LOCK=1 exec flock -o "$SYSCONT_TEST_RUN/env-up.lock" bash "${BASH_SOURCE[0]}" "$@"
fi

# --- supervisor -------------------------------------------------------------
SV_PID="$SYSCONT_TEST_RUN/supervisor.pid"
if [ "${SYSCONT_TEST_SUPERVISOR:-1}" != 0 ]; then
    [ -x "$SUPERVISOR" ] || die "$SUPERVISOR not built (run scripts/build.sh)"
    if pid_alive "$SV_PID" "$SUPERVISOR" && ! pid_current "$SV_PID" "$SUPERVISOR"; then
        log "supervisor (pid $(cat "$SV_PID")) runs another build ($(readlink "/proc/$(cat "$SV_PID")/exe")); restarting it"
        stop_pidfile supervisor "$SV_PID" "$SUPERVISOR"
    fi
    if pid_alive "$SV_PID" "$SUPERVISOR"; then
        log "supervisor already running (pid $(cat "$SV_PID"))"
    else
        log "starting syscont-supervisor --state-dir $SYSCONT_TEST_STATE_DIR (log: $SYSCONT_TEST_LOGS/supervisor.log)"
        NO_COLOR=1 SYSCONT_LOG="${SYSCONT_LOG:-info}" setsid "$SUPERVISOR" --state-dir "$SYSCONT_TEST_STATE_DIR" \
            --data-dir "$SYSCONT_TEST_SYSCONT_DATA" \
            >>"$SYSCONT_TEST_LOGS/supervisor.log" 2>&1 </dev/null &
        echo $! >"$SV_PID"
        # After a crash the old sockets are still there: ready means answering.
        if ! wait_for "supervisor" 20 "$SUPERVISOR" --stats --state-dir "$SYSCONT_TEST_STATE_DIR"; then
            tail -n 20 "$SYSCONT_TEST_LOGS/supervisor.log" >&2 || true
            stop_pidfile supervisor "$SV_PID" "$SUPERVISOR"
            die "syscont-supervisor did not answer on $SYSCONT_TEST_STATE_DIR within 20 s (log above)"
        fi
        pid_alive "$SV_PID" "$SUPERVISOR" || die "syscont-supervisor exited at start (see $SYSCONT_TEST_LOGS/supervisor.log)"
        log "supervisor ready (pid $(cat "$SV_PID"))"
    fi
else
    log "SYSCONT_TEST_SUPERVISOR=0: not starting the supervisor"
fi

# --- containerd -------------------------------------------------------------
CTRD_PID="$SYSCONT_TEST_RUN/containerd.pid"
CTRD_CONF="$SYSCONT_TEST_RUN/containerd.toml"
# syscont-runc started by containerd's shim (ctr run --runc-binary) takes
# its directories from the environment it inherits.
CTRD_ENV="SYSCONT_STATE_DIR=$SYSCONT_TEST_STATE_DIR SYSCONT_DATA_DIR=$SYSCONT_TEST_SYSCONT_DATA"
if pid_alive "$CTRD_PID" "$CONTAINERD" && [ "$(cat "$CTRD_PID.env" 2>/dev/null)" != "$CTRD_ENV" ]; then
    log "containerd runs with another environment; restarting it (and dockerd)"
    stop_pidfile dockerd "$SYSCONT_TEST_RUN/dockerd.pid" "$DOCKERD"
    stop_pidfile containerd "$CTRD_PID" "$CONTAINERD"
fi
if pid_alive "$CTRD_PID" "$CONTAINERD"; then
    log "containerd already running (pid $(cat "$CTRD_PID"))"
else
    mkdir -p "$SYSCONT_TEST_RUN/containerd" "$SYSCONT_TEST_DATA/containerd"
    cat >"$CTRD_CONF" <<TOML
version = 2
root = "$SYSCONT_TEST_DATA/containerd"
state = "$SYSCONT_TEST_RUN/containerd"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$SYSCONT_CONTAINERD_SOCK"
[ttrpc]
  address = "$SYSCONT_CONTAINERD_SOCK.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
TOML
    log "starting containerd (log: $SYSCONT_TEST_LOGS/containerd.log)"
    env SYSCONT_STATE_DIR="$SYSCONT_TEST_STATE_DIR" SYSCONT_DATA_DIR="$SYSCONT_TEST_SYSCONT_DATA" \
        setsid "$CONTAINERD" --config "$CTRD_CONF" >>"$SYSCONT_TEST_LOGS/containerd.log" 2>&1 </dev/null &
    echo $! >"$CTRD_PID"
    printf '%s' "$CTRD_ENV" >"$CTRD_PID.env"
    wait_for "containerd socket" 30 test -S "$SYSCONT_CONTAINERD_SOCK" ||
        die "containerd did not start within 30 s (see $SYSCONT_TEST_LOGS/containerd.log)"
fi

# --- dockerd ----------------------------------------------------------------
# Runtimes: syscont-runc under test, and syscont-runc-nonotify, the same
# system container without the supervisor (the tests' reference for what
# the kernel itself answers in a user-namespaced container).
DOCKERD_PID="$SYSCONT_TEST_RUN/dockerd.pid"
DAEMON_JSON="$SYSCONT_TEST_RUN/daemon.json"
want_json="$(jq -n --arg path "$RUNTIME" --arg sd "$SYSCONT_TEST_STATE_DIR" --arg dd "$SYSCONT_TEST_SYSCONT_DATA" \
    '{runtimes: {
        "syscont-runc": {path: $path, runtimeArgs: ["--syscont-state-dir", $sd, "--syscont-data-dir", $dd]},
        "syscont-runc-nonotify": {path: $path, runtimeArgs: ["--syscont-state-dir", $sd, "--syscont-data-dir", $dd, "--syscont-intercept", "none"]}
    }}')"
if pid_alive "$DOCKERD_PID" "$DOCKERD" && [ "$(cat "$DAEMON_JSON" 2>/dev/null)" = "$want_json" ]; then
    log "dockerd already running (pid $(cat "$DOCKERD_PID"))"
else
    stop_pidfile dockerd "$DOCKERD_PID" "$DOCKERD"
    printf '%s\n' "$want_json" >"$DAEMON_JSON"
    mkdir -p "$SYSCONT_TEST_DATA/docker" "$SYSCONT_TEST_RUN/docker-exec"
    log "starting dockerd on $DOCKER_HOST (log: $SYSCONT_TEST_LOGS/dockerd.log)"
    setsid "$DOCKERD" \
        --config-file "$DAEMON_JSON" \
        --data-root "$SYSCONT_TEST_DATA/docker" \
        --exec-root "$SYSCONT_TEST_RUN/docker-exec" \
        --pidfile "$DOCKERD_PID" \
        --containerd "$SYSCONT_CONTAINERD_SOCK" \
        -H "unix://$SYSCONT_DOCKER_SOCK" \
        --bridge=none --iptables=false --ip6tables=false \
        >>"$SYSCONT_TEST_LOGS/dockerd.log" 2>&1 </dev/null &
    # dockerd writes its own pid file; record ours until it does.
    echo $! >"$DOCKERD_PID.start"
    if ! wait_for "dockerd" 60 docker_cli version; then
        tail -n 20 "$SYSCONT_TEST_LOGS/dockerd.log" >&2 || true
        die "dockerd did not answer on $DOCKER_HOST within 60 s (log above)"
    fi
    rm -f "$DOCKERD_PID.start"
fi
docker_cli info --format '{{json .Runtimes}}' | grep -q '"syscont-runc"' ||
    die "dockerd on $DOCKER_HOST does not list the syscont-runc runtime"
log "ready: DOCKER_HOST=$DOCKER_HOST, supervisor state dir $SYSCONT_TEST_STATE_DIR"

#!/usr/bin/env bash
# Stop exactly the daemons env-up.sh started (by their pid files), after
# removing the test containers. Never matches processes by name.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root

DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"
CONTAINERD="$(command -v containerd || echo /usr/bin/containerd)"

if pid_alive "$SYSCONT_TEST_RUN/dockerd.pid" "$DOCKERD"; then
    ids="$(docker_cli ps -aq --filter label=syscont-test 2>/dev/null || true)"
    if [ -n "$ids" ]; then
        log "removing leftover test containers: $(echo $ids)"
        # shellcheck disable=SC2086
        docker_cli rm -f $ids >/dev/null || true
    fi
fi
stop_pidfile dockerd "$SYSCONT_TEST_RUN/dockerd.pid" "$DOCKERD"
stop_pidfile containerd "$SYSCONT_TEST_RUN/containerd.pid" "$CONTAINERD"

# dockerd leaves the bind of the host's network namespace it made for
# --network host in its exec root; nothing uses it once dockerd is gone.
awk -v root="$SYSCONT_TEST_RUN/docker-exec/" 'index($5, root) == 1 { print $5 }' /proc/self/mountinfo |
    sort -r | while read -r m; do
        log "unmounting dockerd's leftover $m"
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
    done

# containerd-shims of our containerd outlive it only if a container was left
# running; they are ours by their unique -address argument.
for d in /proc/[0-9]*; do
    cmd="$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null || true)"
    case "$cmd" in
        *containerd-shim*"-address $SYSCONT_CONTAINERD_SOCK "*)
            log "killing leftover shim ${d#/proc/}: $cmd"
            kill -KILL "${d#/proc/}" 2>/dev/null || true ;;
    esac
done

stop_pidfile supervisor "$SYSCONT_TEST_RUN/supervisor.pid" "$SYSCONT_BIN_DIR/syscont-supervisor"

# The supervisor's fd holder (started by the supervisor, pid file in its state
# dir) exits by itself once it keeps no listener and no supervisor is
# connected; give it a moment, then stop it.
HOLDER_PID="$SYSCONT_TEST_STATE_DIR/holder.pid"
if pid_alive "$HOLDER_PID" "$SYSCONT_BIN_DIR/syscont-supervisor"; then
    wait_for "fd holder exit" 5 sh -c "! kill -0 $(cat "$HOLDER_PID") 2>/dev/null" ||
        stop_pidfile "fd holder" "$HOLDER_PID" "$SYSCONT_BIN_DIR/syscont-supervisor"
fi
rm -f "$HOLDER_PID"
log "test environment stopped (data kept in $SYSCONT_TEST_DATA, logs in $SYSCONT_TEST_LOGS)"

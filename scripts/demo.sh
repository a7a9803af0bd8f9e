#!/usr/bin/env bash
# The "try it" command: install what is missing, build, start the supervisor
# and a dockerd with the syscont-runc runtime (if not running), build the
# default image, and run a system container limited to 256 MiB and one CPU
# that shows its own free, uptime and nproc.
# The environment stays up for you to play with; scripts/env-down.sh stops it.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_root
command -v cargo >/dev/null 2>&1 || export PATH="$HOME/.cargo/bin:$PATH"

"$SYSCONT_ROOT/scripts/deps.sh"
"$SYSCONT_ROOT/scripts/build.sh"
"$SYSCONT_ROOT/scripts/env-up.sh"
"$SYSCONT_ROOT/scripts/images.sh" demo

cmd=(docker run --rm --runtime=syscont-runc --network none --pull never
     --memory 256m --cpuset-cpus 0 "$SYSCONT_DEMO_IMAGE"
     sh -c 'free -m; uptime; nproc; id; cat /proc/self/uid_map; stat -c "%U %n" /etc/passwd')
echo
echo "On the host:"
free -m; uptime; nproc
echo
echo "\$ DOCKER_HOST=$DOCKER_HOST ${cmd[*]}"
"${cmd[@]}"
echo
echo "The supervisor and dockerd keep running: export DOCKER_HOST=$DOCKER_HOST to use them,"
echo "scripts/env-down.sh stops them. Logs: $SYSCONT_TEST_LOGS"

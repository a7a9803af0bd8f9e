#!/bin/sh
# One command for the whole benchmark (as root, from anywhere):
#   benches/run.sh [--rounds 5] [--iters 200000] [--emu-iters 50000]
#                  [--lxcfs-iters 20000] [--idle-secs 10] [--fds 200,1000]
#                  [--skip trap,lxcfs,pinned,idle,mem] [--out FILE]
# Builds syscont-supervisor (release) and the C reference probe (copied into
# a scratch dir: the shared tree is never written), then runs benches/notify.rs,
# which interleaves our supervisor, the probe and LXCFS round by round and
# prints a markdown report (also written to $SCRATCH/results.md unless --out).
# Then benches/start.sh times container starts through syscont-runc against
# runc on the test dockerd (scripts/env-up.sh must be up; report also in
# $SCRATCH/start.md); BENCH_START=0 skips it, BENCH_START_RUNS sets its rounds.
# SECCOMP_PROBE_DIR: probe sources (default ../shared/bench/seccomp-probe
# beside the repository); SCRATCH: scratch dir (default /tmp/syscont-bench).
set -eu
repo=$(cd "$(dirname "$0")/.." && pwd)
probe_src=${SECCOMP_PROBE_DIR:-$repo/../shared/bench/seccomp-probe}
scratch=${SCRATCH:-/tmp/syscont-bench}
[ "$(id -u)" = 0 ] || { echo "benches/run.sh: run as root" >&2; exit 1; }
mkdir -p "$scratch/probe"
cp "$probe_src/seccomp_probe.c" "$probe_src/Makefile" "$scratch/probe/"
make -s -C "$scratch/probe" seccomp-probe
cd "$repo"
cargo build --release --quiet --bin syscont-supervisor
cargo bench --quiet --bench notify -- \
    --probe "$scratch/probe/seccomp-probe" \
    --supervisor "$repo/target/release/syscont-supervisor" \
    --scratch "$scratch" --out "$scratch/results.md" "$@"
if [ "${BENCH_START:-1}" != 0 ]; then
    BENCH_START_OUT="$scratch/start.md" bash "$repo/benches/start.sh"
fi

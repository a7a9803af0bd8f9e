#!/usr/bin/env bash
# Container start cost: syscont-runc against plain runc (issue 3).
#
#   benches/start.sh            # as root, with the test environment up
#                               # (scripts/env-up.sh, scripts/images.sh busybox)
#
# Times `docker run --rm --network none --runtime RT IMAGE true`, wall clock,
# on the test dockerd (DOCKER_HOST=unix:///run/syscont-test/docker.sock), for
# RT in {runc, syscont-runc} and IMAGE in {syscont-busybox:test,
# syscont-bench-100k:test} (the busybox rootfs plus 100,000 small files,
# built here once and kept). Every round runs the four cells once, in forward
# order on odd rounds and reverse order on even ones, so that drift of the
# machine's load falls on every cell alike. Reports median and p90 per cell and
# the ratios syscont-runc/runc per image (target: <= 1.5) and
# syscont-runc 100k/small (target: ~1, the ID-mapped rootfs does not grow
# with the image). Exits non-zero only if a container fails to run, never on
# a ratio.
#
# BENCH_START_RUNS: timed rounds (default 20), after BENCH_START_WARMUP
# (default 2) untimed ones. BENCH_START_OUT: also write the report there.
# BENCH_START_SPLIT=1: then as many rounds of `docker create`, `docker start
# -a`, `docker rm`, each timed (the OCI runtime runs in the last two).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR source=../scripts/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib.sh"
require_root

RUNS="${BENCH_START_RUNS:-20}"
WARMUP="${BENCH_START_WARMUP:-2}"
OUT="${BENCH_START_OUT:-}"
SPLIT="${BENCH_START_SPLIT:-0}"
SMALL_IMAGE="$SYSCONT_BUSYBOX_IMAGE"
BIG_IMAGE="syscont-bench-100k:test"
BIG_DIRS=100
BIG_FILES_PER_DIR=1000
RUNTIMES=(runc syscont-runc)
LABEL="syscont-test=bench-start"
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || die "BENCH_START_RUNS must be a positive integer (got '$RUNS')"
[[ "$WARMUP" =~ ^[0-9]+$ ]] || die "BENCH_START_WARMUP must be a non-negative integer (got '$WARMUP')"

docker_cli version >/dev/null 2>&1 || die "no test dockerd on $DOCKER_HOST (run scripts/env-up.sh)"
docker_cli info --format '{{json .Runtimes}}' | grep -q '"syscont-runc"' ||
    die "dockerd on $DOCKER_HOST does not list the syscont-runc runtime (run scripts/env-up.sh)"
docker_cli image inspect "$SMALL_IMAGE" >/dev/null 2>&1 ||
    die "$SMALL_IMAGE missing (run scripts/images.sh busybox)"
command -v python3 >/dev/null || die "python3 missing (run scripts/deps.sh)"

work="$(mktemp -d "${TMPDIR:-/tmp}/syscont-bench-start.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# --- the 100k-file image ----------------------------------------------------
# The layer of syscont-busybox:test (exactly the rootfs scripts/images.sh
# imports: /bin/busybox from busybox-static, its applet links, the users)
# copied into a new tar, followed by /data/NNN/fNNNN (BIG_DIRS directories of
# BIG_FILES_PER_DIR files of a few bytes), imported as one layer. The image's
# comment records the base image id and the layout; it is rebuilt only when
# either changes.
base_id="$(docker_cli image inspect --format '{{.Id}}' "$SMALL_IMAGE")"
big_recipe="recipe=bench-100k base=${base_id#sha256:} dirs=$BIG_DIRS files=$BIG_FILES_PER_DIR"
if [ "$(docker_cli image inspect --format '{{.Comment}}' "$BIG_IMAGE" 2>/dev/null || true)" = "$big_recipe" ]; then
    log "$BIG_IMAGE up to date"
else
    log "building $BIG_IMAGE ($((BIG_DIRS * BIG_FILES_PER_DIR)) files over $SMALL_IMAGE's rootfs)"
    docker_cli save -o "$work/base.tar" "$SMALL_IMAGE"
    python3 - "$work/base.tar" "$BIG_DIRS" "$BIG_FILES_PER_DIR" <<'PY' |
import io, json, sys, tarfile, time
saved, ndirs, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
now = int(time.time())
with tarfile.open(saved) as outer:
    layers = json.load(outer.extractfile("manifest.json"))[0]["Layers"]
    out = tarfile.open(fileobj=sys.stdout.buffer, mode="w|", format=tarfile.GNU_FORMAT)
    for layer in layers:
        with tarfile.open(fileobj=outer.extractfile(layer), mode="r|") as lt:
            for m in lt:
                out.addfile(m, lt.extractfile(m) if m.isreg() else None)
    def add_dir(name):
        d = tarfile.TarInfo(name)
        d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, now
        out.addfile(d)
    add_dir("data")
    for i in range(ndirs):
        add_dir("data/%03d" % i)
        for j in range(nfiles):
            body = b"%03d/%04d\n" % (i, j)
            f = tarfile.TarInfo("data/%03d/f%04d" % (i, j))
            f.size, f.mode, f.mtime = len(body), 0o644, now
            out.addfile(f, io.BytesIO(body))
    out.close()
PY
        docker_cli import -m "$big_recipe" -c 'CMD ["/bin/sh"]' - "$BIG_IMAGE" >/dev/null
    rm -f "$work/base.tar"
    log "$BIG_IMAGE imported"
fi
big_count="$(docker_cli run --rm --network none --label "$LABEL" --runtime runc "$BIG_IMAGE" \
    sh -c 'find /data -type f | wc -l')"
[ "$big_count" -eq $((BIG_DIRS * BIG_FILES_PER_DIR)) ] ||
    die "$BIG_IMAGE has $big_count files under /data, expected $((BIG_DIRS * BIG_FILES_PER_DIR))"

# --- timing -------------------------------------------------------------------
CMD=(docker run --rm --network none --label "$LABEL" --runtime RUNTIME IMAGE true)
cells=()
for image in "$SMALL_IMAGE" "$BIG_IMAGE"; do
    for rt in "${RUNTIMES[@]}"; do cells+=("$image $rt"); done
done

# run_once IMAGE RUNTIME: one docker run; prints its wall time in ns.
run_once() {
    local t0 t1
    t0="$(date +%s%N)"
    if ! docker_cli run --rm --network none --label "$LABEL" --runtime "$2" "$1" true \
        >"$work/run.out" 2>"$work/run.err"; then
        cat "$work/run.out" "$work/run.err" >&2
        die "docker run --runtime $2 $1 true failed (see also $SYSCONT_TEST_LOGS/dockerd.log)"
    fi
    t1="$(date +%s%N)"
    echo $((t1 - t0))
}

# split_once IMAGE RUNTIME: docker create, start -a, rm of one container;
# prints the three wall times in ns. docker create does not call the OCI
# runtime; its create, start and delete all fall in start -a and rm.
split_once() {
    local t0 t1 t2 t3 id
    t0="$(date +%s%N)"
    id="$(docker_cli create --network none --label "$LABEL" --runtime "$2" "$1" true)" ||
        die "docker create --runtime $2 $1 true failed"
    t1="$(date +%s%N)"
    if ! docker_cli start -a "$id" >"$work/run.out" 2>"$work/run.err"; then
        cat "$work/run.out" "$work/run.err" >&2
        docker_cli rm -f "$id" >/dev/null 2>&1 || true
        die "docker start -a (--runtime $2 $1 true) failed (see also $SYSCONT_TEST_LOGS/dockerd.log)"
    fi
    t2="$(date +%s%N)"
    docker_cli rm "$id" >/dev/null || die "docker rm $id (--runtime $2) failed"
    t3="$(date +%s%N)"
    echo "$((t1 - t0)) $((t2 - t1)) $((t3 - t2))"
}

# round FUNCTION FILE N: FUNCTION on every cell once, forward on odd N,
# reversed on even N; appends "N IMAGE RUNTIME NS..." lines to FILE
# (warm-up rounds: N <= 0, not recorded).
round() {
    local fn="$1" file="$2" n="$3" k idx cell ns
    for k in "${!cells[@]}"; do
        if [ $((n % 2)) -eq 0 ]; then idx=$((${#cells[@]} - 1 - k)); else idx="$k"; fi
        cell="${cells[$idx]}"
        # shellcheck disable=SC2086 # cell is "IMAGE RUNTIME"
        ns="$("$fn" $cell)"
        [ "$n" -le 0 ] || echo "$n $cell $ns" >>"$file"
    done
}

# What is measured: the syscont-runc the test dockerd runs (not built here).
rt_path="$(docker_cli info --format '{{json .Runtimes}}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["syscont-runc"]["path"])')"
rt_sha="$(sha256sum "$rt_path" | cut -c1-12)"
rt_info="$rt_path (sha256 $rt_sha, built $(date -u -r "$rt_path" '+%F %H:%M UTC'))"
head_info="$(git -C "$SYSCONT_ROOT" describe --always --dirty 2>/dev/null || echo unknown)"
runc_info="$(runc --version 2>/dev/null | head -n1 || echo 'runc: unknown')"

load1() { cut -d' ' -f1 /proc/loadavg; }
: >"$work/times"
: >"$work/load"
load_start="$(cut -d' ' -f1-3 /proc/loadavg)"
log "warm-up: $WARMUP round(s) of ${#cells[@]} containers"
for ((i = 1 - WARMUP; i <= 0; i++)); do round run_once "$work/times" "$i"; done
log "timing: $RUNS rounds of ${#cells[@]} containers (${CMD[*]})"
for ((i = 1; i <= RUNS; i++)); do
    round run_once "$work/times" "$i"
    load1 >>"$work/load"
done
load_end="$(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$(sha256sum "$rt_path" | cut -c1-12)" != "$rt_sha" ]; then
    rt_info="$rt_info; WARNING: the binary was replaced during the run, figures mix two builds"
fi

# --- report -------------------------------------------------------------------
CMD_TEXT="${CMD[*]}" WARMUP="$WARMUP" RT_INFO="$rt_info" HEAD_INFO="$head_info" RUNC_INFO="$runc_info" \
    KERNEL="$(uname -r)" LOAD_START="$load_start" LOAD_END="$load_end" \
    python3 - "$work/times" "$work/load" "$SMALL_IMAGE" "$BIG_IMAGE" >"$work/report" <<'PY'
import math, os, statistics as st, sys
times, loadf, small, big = sys.argv[1:5]
env = os.environ
rows = [l.split() for l in open(times)]
ms = {}
per_round = {}
for n, image, rt, ns in rows:
    ms.setdefault((image, rt), []).append(int(ns) / 1e6)
    per_round[(int(n), image, rt)] = int(ns) / 1e6
rounds = sorted({int(r[0]) for r in rows})
def p90(v):
    s = sorted(v)
    return s[max(0, math.ceil(0.9 * len(s)) - 1)]
med = {k: st.median(v) for k, v in ms.items()}
loads = [float(x) for x in open(loadf)]
print("### Container start: syscont-runc against runc")
print()
print("Command, per cell: `%s`, wall clock around the docker CLI; "
      "%d timed rounds after %s warm-up round(s), the four cells interleaved per round "
      "(order reversed every other round)." % (env["CMD_TEXT"], len(rounds), env["WARMUP"]))
print()
print("syscont-runc: %s; repository at %s; %s; kernel %s."
      % (env["RT_INFO"], env["HEAD_INFO"], env["RUNC_INFO"], env["KERNEL"]))
print()
print("| image | runtime | median ms | p90 ms | min ms | max ms | p90/median |")
print("|---|---|---|---|---|---|---|")
noisy = []
for image in (small, big):
    for rt in ("runc", "syscont-runc"):
        v = ms[(image, rt)]
        q = p90(v) / med[(image, rt)]
        if q > 2:
            noisy.append("%s %s" % (image, rt))
        print("| %s | %s | %.0f | %.0f | %.0f | %.0f | %.2f |"
              % (image, rt, med[(image, rt)], p90(v), min(v), max(v), q))
print()
def per_round_ratios(a, b):
    return sorted(per_round[(n,) + a] / per_round[(n,) + b] for n in rounds)
def spread(r):
    return "%.2f [p10 %.2f, p90 %.2f]" % (st.median(r), r[max(0, math.ceil(0.1 * len(r)) - 1)], p90(r))
print("| ratio | of medians | per round: median [p10, p90] | target | verdict |")
print("|---|---|---|---|---|")
verdicts = []
for image in (small, big):
    a, b = (image, "syscont-runc"), (image, "runc")
    r = med[a] / med[b]
    v = "TARGET MET" if r <= 1.5 else "TARGET MISSED (%.2f > 1.5)" % r
    verdicts.append("%s: syscont-runc/runc = %.2f: %s" % (image, r, v))
    print("| syscont-runc / runc, %s | %.2f | %s | <= 1.5 | %s |" % (image, r, spread(per_round_ratios(a, b)), v))
for rt in ("syscont-runc", "runc"):
    a, b = (big, rt), (small, rt)
    r = med[a] / med[b]
    print("| %s: 100k / small | %.2f | %s | ~1 (no growth with the image) | %s |"
          % (rt, r, spread(per_round_ratios(a, b)), "reported"))
print()
print("1-minute load: at start %s; after each round median %.2f [%.2f-%.2f]; at end %s (%d CPUs)."
      % (env["LOAD_START"], st.median(loads), min(loads), max(loads), env["LOAD_END"], os.cpu_count()))
if noisy:
    print("NOISY: p90 > 2x median for " + ", ".join(noisy) + "; re-run on a quieter machine.")
print()
for v in verdicts:
    print(v)
PY
cat "$work/report"
[ -z "$OUT" ] || cp "$work/report" "$OUT"

# --- optional split: docker create / start -a / rm ----------------------------
[ "$SPLIT" = 1 ] || exit 0
log "split: $RUNS rounds of docker create / start -a / rm"
: >"$work/split"
for ((i = 1; i <= RUNS; i++)); do round split_once "$work/split" "$i"; done
python3 - "$work/split" "$SMALL_IMAGE" "$BIG_IMAGE" >"$work/split.md" <<'PY'
import statistics as st, sys
splitf, small, big = sys.argv[1:4]
split = {}
for l in open(splitf):
    n, image, rt, c, s, r = l.split()
    split.setdefault((image, rt), []).append([int(x) / 1e6 for x in (c, s, r)])
print()
print("Split (`docker create`, `docker start -a`, `docker rm` of one container, each timed; "
      "%d interleaved rounds), median ms:" % len(split[(small, "runc")]))
print()
print("| image | runtime | create | start -a | rm | sum |")
print("|---|---|---|---|---|---|")
for image in (small, big):
    for rt in ("runc", "syscont-runc"):
        v = split[(image, rt)]
        print("| %s | %s | %.0f | %.0f | %.0f | %.0f |" % ((image, rt)
              + tuple(st.median(x[i] for x in v) for i in range(3)) + (st.median(sum(x) for x in v),)))
PY
cat "$work/split.md"
[ -z "$OUT" ] || cat "$work/split.md" >>"$OUT"

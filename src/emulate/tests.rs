//! End-to-end tests of [`ContainerSource`]: fixture host trees with v1 and
//! v2 cgroups, limited and unlimited, and the real host.

use std::path::Path;
use std::sync::atomic::Ordering;

use super::clock::NSEC_PER_SEC;
use super::*;
use crate::cgroup::fixtures::{self, write, Spec, MIB};
use crate::cgroup::Cgroup;

const HOST_MEMINFO: &str = super::meminfo::tests::HOST;

const HOST_STAT: &str = "cpu  8172 0 2642 41623 459 0 86 48 0 0
cpu0 3490 0 1039 21899 39 0 19 19 0 0
cpu1 4681 0 1603 19723 419 0 66 28 0 0
cpu2 1 0 0 1 0 0 0 0 0 0
cpu3 1 0 0 1 0 0 0 0 0 0
intr 146388 0 0 1
ctxt 267651
btime 1795912004
processes 4675
procs_running 2
procs_blocked 0
softirq 88860 0 8803 4 3780 33668 0 43 22328 0 20234
";

const HOST_DISKSTATS: &str =
    " 254       0 vda 29071 6239 2577082 11100 7407 10836 1793784 6514 0 6412 19112 3856 66 268048 905 1125 590\n";

/// Host /proc and /sys files under `root` (4 cpus), tasks 100-102.
fn host_files(root: &Path) {
    write(root, "proc/meminfo", HOST_MEMINFO);
    write(root, "proc/stat", HOST_STAT);
    write(root, "proc/diskstats", HOST_DISKSTATS);
    write(
        root,
        "proc/swaps",
        "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n/dev/vdb                                partition\t2097148\t\t0\t\t-2\n",
    );
    write(root, "proc/loadavg", "0.53 0.36 0.15 1/82 4677\n");
    let mut cpuinfo = String::new();
    for i in 0..4 {
        cpuinfo.push_str(&format!(
            "processor\t: {i}\nmodel name\t: AMD EPYC\nsiblings\t: 4\ncpu cores\t: 4\n\n"
        ));
    }
    write(root, "proc/cpuinfo", &cpuinfo);
    write(root, "sys/devices/system/cpu/online", "0-3\n");
    write(root, "proc/100/stat", "100 (init) S 0 1 1 0 -1 0");
    write(root, "proc/101/stat", "101 (worker) R 1 1 1 0 -1 0");
    write(root, "proc/102/stat", "102 (sd) S 1 1 1 0 -1 0");
    write(root, "proc/102/status", "Name:\tsd\nNSpid:\t102\t3\n");
}

/// A source over a fixture tree; the container started at 10 s, now is 110 s.
fn source(
    v2: bool,
    spec: &Spec,
) -> (
    tempfile::TempDir,
    ContainerSource,
    std::sync::Arc<std::sync::atomic::AtomicU64>,
) {
    let (t, cg) = if v2 {
        fixtures::v2_cgroup(spec)
    } else {
        fixtures::v1_cgroup(spec)
    };
    host_files(t.path());
    let (clock, handle) = Clock::manual(110 * NSEC_PER_SEC);
    let src = ContainerSource::with_roots(
        t.path().join("proc"),
        t.path().join("sys"),
        cg,
        10 * NSEC_PER_SEC,
        clock,
    )
    .expect("source");
    (t, src, handle)
}

fn render(src: &ContainerSource, f: EmulatedFile) -> String {
    let mut out = Vec::new();
    src.render(f, &mut out).expect("render");
    String::from_utf8(out).expect("utf8")
}

fn meminfo_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap_or_else(|| panic!("{key} in {text}"))
}

#[test]
fn limited_container_both_versions() {
    for v2 in [false, true] {
        let (_t, src, _clock) = source(v2, &Spec::limited());
        let mem = render(&src, EmulatedFile::Meminfo);
        assert_eq!(meminfo_kb(&mem, "MemTotal"), 262_144, "v2={v2}");
        assert_eq!(meminfo_kb(&mem, "MemFree"), 159_744);
        assert_eq!(meminfo_kb(&mem, "SwapTotal"), 0);
        // cpuset 1-3 narrowed by 1.5 CPUs of quota: 2 CPUs.
        assert_eq!(render(&src, EmulatedFile::CpuOnline), "0-1\n");
        assert_eq!(render(&src, EmulatedFile::CpuPossible), "0-1\n");
        assert_eq!(render(&src, EmulatedFile::CpuPresent), "0-1\n");
        let cpuinfo = render(&src, EmulatedFile::Cpuinfo);
        assert_eq!(cpuinfo.matches("processor").count(), 2);
        // 100 s up, 2 CPUs, 3 s used.
        assert_eq!(render(&src, EmulatedFile::Uptime), "100.00 197.00\n");
        let stat = render(&src, EmulatedFile::Stat);
        let lines: Vec<&str> = stat.lines().collect();
        assert!(lines[0].starts_with("cpu  "), "{stat}");
        assert!(lines[1].starts_with("cpu0 ") && lines[2].starts_with("cpu1 "));
        assert!(lines[3].starts_with("intr "), "{stat}");
        assert!(stat.contains("\nbtime 1795912004\n"));
        assert!(
            stat.contains("\nprocesses 3\nprocs_running 2\nprocs_blocked 0\n"),
            "{stat}"
        );
        let user: u64 = lines[0]
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .expect("user");
        let system: u64 = lines[0]
            .split_whitespace()
            .nth(3)
            .and_then(|v| v.parse().ok())
            .expect("sys");
        assert!((298..=300).contains(&(user + system)), "{stat}");
        assert_eq!(
            render(&src, EmulatedFile::Loadavg),
            "0.00 0.00 0.00 2/3 3\n"
        );
        assert_eq!(
            render(&src, EmulatedFile::Swaps),
            String::from_utf8_lossy(swaps::HEADER)
        );
        assert_eq!(
            render(&src, EmulatedFile::Diskstats),
            " 254       0 vda 10 0 2048 0 5 0 1024 0 0 0 0 0 0 0 0 0 0\n"
        );
        let si = src.sysinfo().expect("sysinfo");
        assert_eq!(si.totalram, 256 * MIB);
        assert_eq!(si.freeram, meminfo_kb(&mem, "MemFree") * 1024);
        assert_eq!(si.sharedram, meminfo_kb(&mem, "Shmem") * 1024);
        assert_eq!(si.bufferram, 0);
        assert_eq!((si.totalswap, si.freeswap), (0, 0));
        assert_eq!(si.procs, 3);
        assert_eq!(si.uptime, 100);
    }
}

#[test]
fn unlimited_container_sees_host_figures() {
    for v2 in [false, true] {
        let (t, src, _clock) = source(v2, &Spec::unlimited());
        assert_eq!(render(&src, EmulatedFile::Meminfo), HOST_MEMINFO);
        let swaps = std::fs::read_to_string(t.path().join("proc/swaps")).expect("swaps");
        assert_eq!(render(&src, EmulatedFile::Swaps), swaps);
        assert_eq!(render(&src, EmulatedFile::CpuOnline), "0-3\n");
        let cpuinfo = std::fs::read_to_string(t.path().join("proc/cpuinfo")).expect("cpuinfo");
        assert_eq!(render(&src, EmulatedFile::Cpuinfo), cpuinfo);
        let si = src.sysinfo().expect("sysinfo");
        assert_eq!(si.totalram, 16_384_000 * 1024);
        assert_eq!(si.freeram, 12_000_000 * 1024);
        assert_eq!(si.totalswap, 2_097_148 * 1024);
    }
}

#[test]
fn cpuset_zero() {
    let spec = Spec {
        cpuset: "0",
        quota: None,
        ..Spec::limited()
    };
    let (_t, src, _clock) = source(false, &spec);
    assert_eq!(render(&src, EmulatedFile::CpuOnline), "0\n");
    let stat = render(&src, EmulatedFile::Stat);
    assert_eq!(stat.lines().filter(|l| l.starts_with("cpu")).count(), 2);
    // All 3 s of usage land on the one cpu.
    assert!(stat.contains("\ncpu0 200 0 100 9700 "), "{stat}");
}

#[test]
fn fresh_on_every_render_and_load_moves() {
    let (t, src, clock) = source(true, &Spec::limited());
    let before = render(&src, EmulatedFile::Meminfo);
    write(
        t.path(),
        "sys/fs/cgroup/system.slice/docker-c1.scope/memory.current",
        &format!("{}\n", 200 * MIB),
    );
    let after = render(&src, EmulatedFile::Meminfo);
    assert_ne!(before, after);
    assert_eq!(meminfo_kb(&after, "MemFree"), 56 * 1024);
    // One running task for a minute; the reader shows as running too.
    clock.fetch_add(60 * NSEC_PER_SEC, Ordering::Relaxed);
    assert_eq!(
        render(&src, EmulatedFile::Loadavg),
        "0.63 0.18 0.06 2/3 3\n"
    );
    let si = src.sysinfo().expect("sysinfo");
    assert!(
        si.loads[0] > 40_000 && si.loads[0] < 42_000,
        "{:?}",
        si.loads
    );
    assert_eq!(
        render(&src, EmulatedFile::Uptime).split(' ').next(),
        Some("160.00")
    );
}

#[test]
fn missing_and_malformed_files_are_errors() {
    let (t, src, _clock) = source(false, &Spec::limited());
    std::fs::remove_file(t.path().join("proc/meminfo")).expect("rm");
    let mut out = b"kept".to_vec();
    let err = src
        .render(EmulatedFile::Meminfo, &mut out)
        .expect_err("missing");
    assert!(matches!(err, EmulateError::Io { .. }), "{err}");
    assert_eq!(out, b"kept");
    assert!(src.sysinfo().is_err());
    write(t.path(), "sys/devices/system/cpu/online", "zero\n");
    let err = src
        .render(EmulatedFile::Cpuinfo, &mut Vec::new())
        .expect_err("malformed");
    assert!(matches!(err, EmulateError::Malformed { .. }), "{err}");
    std::fs::remove_file(
        t.path()
            .join("sys/fs/cgroup/cpuacct/docker/c1/cpuacct.usage"),
    )
    .expect("rm");
    write(t.path(), "sys/devices/system/cpu/online", "0-3\n");
    let err = src
        .render(EmulatedFile::Uptime, &mut Vec::new())
        .expect_err("cgroup");
    assert!(matches!(err, EmulateError::Cgroup(_)), "{err}");
}

#[test]
fn init_start_time() {
    let t = tempfile::TempDir::new().expect("tempdir");
    write(
        t.path(),
        "7/stat",
        "7 (sh) S 1 7 7 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 4242 1000 10",
    );
    assert_eq!(
        source::init_start_ns(t.path(), 7, 100).expect("start"),
        42_420_000_000
    );
    write(t.path(), "8/stat", "8 (sh) S 1");
    assert!(matches!(
        source::init_start_ns(t.path(), 8, 100),
        Err(EmulateError::Malformed { .. })
    ));
}

/// Every file rendered from the real host for this very process, parsed back.
#[test]
fn real_host_renders_parse_back() {
    let pid = i32::try_from(std::process::id()).expect("pid");
    let src = match ContainerSource::for_init_pid(pid) {
        Ok(s) => s,
        Err(EmulateError::Cgroup(crate::cgroup::CgroupError::NoHierarchy { .. })) => return,
        Err(e) => panic!("for_init_pid: {e}"),
    };
    let mem = render(&src, EmulatedFile::Meminfo);
    let total = meminfo_kb(&mem, "MemTotal");
    assert!(meminfo_kb(&mem, "MemFree") <= total);
    assert!(meminfo_kb(&mem, "MemAvailable") <= total);
    for line in mem.lines() {
        assert!(host::meminfo_line(line.as_bytes()).is_some(), "{line:?}");
    }
    let up = render(&src, EmulatedFile::Uptime);
    let f: Vec<f64> = up
        .split_whitespace()
        .map(|v| v.parse().expect("float"))
        .collect();
    assert_eq!(f.len(), 2);
    let n = render(&src, EmulatedFile::CpuOnline);
    let ncpu = crate::cgroup::parse::parse_cpulist(n.as_bytes())
        .expect("cpulist")
        .len();
    assert!(ncpu >= 1);
    let cpuinfo = render(&src, EmulatedFile::Cpuinfo);
    assert_eq!(
        cpuinfo.matches("\nprocessor").count() + usize::from(cpuinfo.starts_with("processor")),
        ncpu
    );
    let stat = render(&src, EmulatedFile::Stat);
    assert_eq!(
        stat.lines().filter(|l| l.starts_with("cpu")).count(),
        ncpu + 1
    );
    for l in stat.lines().filter(|l| l.starts_with("cpu")) {
        assert_eq!(l.split_whitespace().count(), 11, "{l}");
        assert!(
            l.split_whitespace()
                .skip(1)
                .all(|v| v.parse::<u64>().is_ok()),
            "{l}"
        );
    }
    let load = render(&src, EmulatedFile::Loadavg);
    let lf: Vec<&str> = load.split_whitespace().collect();
    assert_eq!(lf.len(), 5, "{load}");
    assert!(lf[3].contains('/'));
    let swaps = render(&src, EmulatedFile::Swaps);
    assert!(swaps.starts_with("Filename\t"));
    let disk = render(&src, EmulatedFile::Diskstats);
    let host_disk = std::fs::read_to_string("/proc/diskstats").expect("diskstats");
    assert_eq!(disk.lines().count(), host_disk.lines().count());
    for (a, b) in disk.lines().zip(host_disk.lines()) {
        assert_eq!(a.split_whitespace().count(), b.split_whitespace().count());
    }
    let si = src.sysinfo().expect("sysinfo");
    assert_eq!(si.totalram, total * 1024);
    assert!(si.procs >= 1);
}

/// Rough cost of a meminfo render on this host (run with `--ignored
/// --nocapture`, preferably in release mode).
#[test]
#[ignore]
fn render_cost() {
    let pid = i32::try_from(std::process::id()).expect("pid");
    let src = ContainerSource::for_init_pid(pid).expect("source");
    let mut out = Vec::with_capacity(8192);
    // Baseline in the same run: a native read of the host's file.
    let n = 2000u32;
    let t = std::time::Instant::now();
    for _ in 0..n {
        out = std::fs::read("/proc/meminfo").expect("read");
    }
    let native = t.elapsed() / n;
    println!(
        "{:>12}: {native:?} per read (native /proc/meminfo)",
        "baseline"
    );
    for f in EmulatedFile::ALL {
        let n = 2000u32;
        let t = std::time::Instant::now();
        for _ in 0..n {
            out.clear();
            src.render(f, &mut out).expect("render");
        }
        println!("{:>12}: {:?} per render", f.name(), t.elapsed() / n);
    }
    let t = std::time::Instant::now();
    for _ in 0..2000 {
        src.sysinfo().expect("sysinfo");
    }
    println!("{:>12}: {:?} per call", "sysinfo", t.elapsed() / 2000);
}

#[test]
fn source_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<ContainerSource>();
}

#[test]
fn limited_swap_is_consistent_everywhere() {
    let mut spec = Spec::limited();
    spec.swap = Some(Some(64 * MIB));
    for v2 in [false, true] {
        let (_t, src, _clock) = source(v2, &spec);
        let mem = render(&src, EmulatedFile::Meminfo);
        assert_eq!(meminfo_kb(&mem, "SwapTotal"), 65_536, "v2={v2}");
        assert_eq!(meminfo_kb(&mem, "SwapFree"), 65_536 - 10_240);
        let swaps = render(&src, EmulatedFile::Swaps);
        let line: Vec<&str> = swaps
            .lines()
            .nth(1)
            .expect("line")
            .split_whitespace()
            .collect();
        assert_eq!(line, vec!["none", "virtual", "65536", "10240", "0"]);
        let si = src.sysinfo().expect("sysinfo");
        assert_eq!(si.totalswap, 64 * MIB);
        assert_eq!(si.freeswap, 54 * MIB);
    }
}

#[test]
fn host_root_cgroup_sees_host_load_and_disks() {
    let t = tempfile::TempDir::new().expect("tempdir");
    host_files(t.path());
    write(
        t.path(),
        "sys/fs/cgroup/memory.stat",
        "anon 1048576\nfile 2097152\n",
    );
    write(t.path(), "sys/fs/cgroup/cgroup.threads", "100\n");
    write(t.path(), "sys/fs/cgroup/cpu.stat", "usage_usec 5\n");
    let cg =
        Cgroup::from_texts(fixtures::V2_MOUNTINFO.as_bytes(), b"0::/\n", t.path()).expect("locate");
    let (clock, _h) = Clock::manual(NSEC_PER_SEC);
    let src =
        ContainerSource::with_roots(t.path().join("proc"), t.path().join("sys"), cg, 0, clock)
            .expect("source");
    assert_eq!(
        render(&src, EmulatedFile::Loadavg),
        "0.53 0.36 0.15 1/82 4677\n"
    );
    assert_eq!(render(&src, EmulatedFile::Diskstats), HOST_DISKSTATS);
    assert_eq!(render(&src, EmulatedFile::Meminfo), HOST_MEMINFO);
    assert_eq!(render(&src, EmulatedFile::CpuOnline), "0-3\n");
    let si = src.sysinfo().expect("sysinfo");
    assert_eq!(si.loads[0], 53 * 65536 / 100);
}

/// Renders `/proc/meminfo` of this process's own container
/// `SYSCONT_RENDERS` times (default 1000), for `strace -c -f`:
/// `cargo test --release --lib render_loop -- --ignored` under strace, then
/// divide the counts by the number of renders.
#[test]
#[ignore = "a syscall-count harness, run by hand under strace"]
fn render_loop() {
    let pid = i32::try_from(std::process::id()).expect("pid");
    let src = ContainerSource::for_init_pid(pid).expect("source");
    let n: u32 = std::env::var("SYSCONT_RENDERS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1000);
    let file = std::env::var("SYSCONT_RENDER_FILE")
        .ok()
        .and_then(|s| EmulatedFile::from_name(&s))
        .unwrap_or(EmulatedFile::Meminfo);
    let mut out = Vec::with_capacity(8192);
    for _ in 0..n {
        out.clear();
        src.render(file, &mut out).expect("render");
    }
    assert!(!out.is_empty());
}

#[test]
fn meminfo_reads_no_cpu_files() {
    for v2 in [false, true] {
        let (t, src, _clock) = source(v2, &Spec::limited());
        let fresh = render(&src, EmulatedFile::Meminfo);
        // Every CPU-side file gone: meminfo does not need them.
        for dir in ["cpu", "cpuacct", "cpuset"] {
            let _ = std::fs::remove_dir_all(t.path().join("sys/fs/cgroup").join(dir));
        }
        let _ = std::fs::remove_file(t.path().join("sys/devices/system/cpu/online"));
        let _ = std::fs::remove_file(t.path().join("proc/stat"));
        let _ = std::fs::remove_file(t.path().join("proc/cpuinfo"));
        let scope = t.path().join("sys/fs/cgroup/system.slice/docker-c1.scope");
        for f in ["cpu.max", "cpu.stat", "cpuset.cpus.effective"] {
            let _ = std::fs::remove_file(scope.join(f));
        }
        assert_eq!(render(&src, EmulatedFile::Meminfo), fresh, "v2={v2}");
    }
}

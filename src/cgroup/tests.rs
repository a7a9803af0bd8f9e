//! Tests of both cgroup versions on fixture trees.

use super::fixtures::{self, Spec, MIB};
use super::CpuDetail;
use super::*;

fn check_memory_limited(m: &MemoryStats) {
    assert_eq!(m.limit, Some(256 * MIB));
    assert_eq!(m.usage, 100 * MIB);
    assert_eq!(m.cache, 60 * MIB);
    assert_eq!(m.rss, 30 * MIB);
    assert_eq!(m.shmem, 4 * MIB);
    assert_eq!(m.mapped_file, 8 * MIB);
    assert_eq!(m.active_file, 40 * MIB);
    assert_eq!(m.inactive_file, 16 * MIB);
    assert_eq!(m.active_anon, 20 * MIB);
    assert_eq!(m.inactive_anon, 14 * MIB);
}

#[test]
fn v1_limited() {
    let (_t, cg) = fixtures::v1_cgroup(&Spec::limited());
    assert_eq!(cg.version(), Version::V1);
    assert!(!cg.is_root());
    let s = cg.stats().expect("stats");
    check_memory_limited(&s.memory);
    assert_eq!(s.memory.swap, None);
    assert_eq!(s.memory.slab_reclaimable, None);
    assert_eq!(s.cpu.cpuset, Some(vec![1, 2, 3]));
    assert_eq!(
        s.cpu.quota,
        Some(CpuQuota {
            quota_us: 150_000,
            period_us: 100_000
        })
    );
    assert_eq!(s.cpu.quota.map(|q| q.cpus()), Some(2));
    assert_eq!(s.cpu.usage_ns, 3_000_000_000);
    assert_eq!(s.cpu.user_ns, 2_000_000_000);
    assert_eq!(s.cpu.system_ns, 1_000_000_000);
    assert_eq!(
        s.cpu.per_cpu_ns,
        Some(vec![0, 2_000_000_000, 1_000_000_000, 0])
    );
    assert_eq!(
        s.blkio,
        vec![BlkioDevice {
            major: 254,
            minor: 0,
            read_bytes: 1 << 20,
            write_bytes: 1 << 19,
            reads: 10,
            writes: 5,
            discard_bytes: 0,
            discards: 0
        }]
    );
    // Tasks of the cgroup and of its child.
    assert_eq!(s.tasks, vec![100, 101, 102]);
}

#[test]
fn v2_limited() {
    let (_t, cg) = fixtures::v2_cgroup(&Spec::limited());
    assert_eq!(cg.version(), Version::V2);
    let s = cg.stats().expect("stats");
    check_memory_limited(&s.memory);
    assert_eq!(s.memory.slab_reclaimable, Some(1 << 20));
    assert_eq!(s.memory.kernel_stack, Some(16384));
    assert_eq!(s.cpu.cpuset, Some(vec![1, 2, 3]));
    assert_eq!(s.cpu.quota.map(|q| q.cpus()), Some(2));
    assert_eq!(s.cpu.usage_ns, 3_000_000_000);
    assert_eq!(s.cpu.user_ns, 2_000_000_000);
    assert_eq!(s.cpu.per_cpu_ns, None);
    assert_eq!(s.blkio.len(), 1);
    assert_eq!(s.blkio[0].reads, 10);
    assert_eq!(s.blkio[0].write_bytes, 1 << 19);
    assert_eq!(s.tasks, vec![100, 101, 102]);
}

#[test]
fn unlimited_both_versions() {
    for (_t, cg) in [
        fixtures::v1_cgroup(&Spec::unlimited()),
        fixtures::v2_cgroup(&Spec::unlimited()),
    ] {
        let m = cg.memory(&mut Vec::new()).expect("memory");
        assert_eq!(m.limit, None);
        let c = cg.cpu(&mut Vec::new()).expect("cpu");
        assert_eq!(c.quota, None);
        assert_eq!(c.cpuset, Some(vec![0, 1, 2, 3]));
    }
}

#[test]
fn v2_parent_limit_wins() {
    let t = fixtures::v2_tree(&Spec::unlimited());
    fixtures::write(
        t.path(),
        "sys/fs/cgroup/system.slice/memory.max",
        &format!("{}\n", 128 * MIB),
    );
    let cg = Cgroup::from_texts(
        fixtures::V2_MOUNTINFO.as_bytes(),
        fixtures::V2_PROC_CGROUP.as_bytes(),
        t.path(),
    )
    .expect("locate");
    assert_eq!(
        cg.memory(&mut Vec::new()).expect("memory").limit,
        Some(128 * MIB)
    );
}

#[test]
fn v1_hierarchical_limit_wins() {
    let t = fixtures::v1_tree(&Spec::unlimited());
    let stat = t.path().join("sys/fs/cgroup/memory/docker/c1/memory.stat");
    let text = std::fs::read_to_string(&stat).expect("read");
    let text = text.replace(
        &format!("hierarchical_memory_limit {}", fixtures::V1_UNLIMITED),
        &format!("hierarchical_memory_limit {}", 64 * MIB),
    );
    std::fs::write(&stat, text).expect("write");
    let cg = Cgroup::from_texts(
        fixtures::V1_MOUNTINFO.as_bytes(),
        fixtures::V1_PROC_CGROUP.as_bytes(),
        t.path(),
    )
    .expect("locate");
    assert_eq!(
        cg.memory(&mut Vec::new()).expect("memory").limit,
        Some(64 * MIB)
    );
}

#[test]
fn swap_accounting() {
    let mut spec = Spec::limited();
    spec.swap = Some(Some(64 * MIB));
    let (_t, cg) = fixtures::v1_cgroup(&spec);
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!(
        m.swap,
        Some(SwapStats {
            limit: Some(64 * MIB),
            usage: 10 * MIB
        })
    );
    let (_t, cg) = fixtures::v2_cgroup(&spec);
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!(
        m.swap,
        Some(SwapStats {
            limit: Some(64 * MIB),
            usage: 10 * MIB
        })
    );
    spec.swap = Some(None);
    let (_t, cg) = fixtures::v2_cgroup(&spec);
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!(m.swap.map(|s| s.limit), Some(None));
}

#[test]
fn malformed_files_are_errors() {
    let (t, cg) = fixtures::v1_cgroup(&Spec::limited());
    let mem = t.path().join("sys/fs/cgroup/memory/docker/c1");
    std::fs::write(mem.join("memory.usage_in_bytes"), "lots\n").expect("write");
    let err = cg.memory(&mut Vec::new()).expect_err("malformed");
    assert!(matches!(err, CgroupError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("memory.usage_in_bytes"), "{err}");
    std::fs::remove_file(mem.join("memory.stat")).expect("rm");
    // Files are kept open from their first read (a removed cgroup fails
    // reads of kept fds, `kept_files_*` below): a fixture file unlinked
    // after that is not noticed, so the missing file is seen by a cgroup
    // whose first read comes after the removal.
    let cg = Cgroup::from_texts(
        fixtures::V1_MOUNTINFO.as_bytes(),
        fixtures::V1_PROC_CGROUP.as_bytes(),
        t.path(),
    )
    .expect("locate");
    let err = cg.memory(&mut Vec::new()).expect_err("missing");
    assert!(matches!(err, CgroupError::Io { .. }), "{err}");

    let cpuset = t
        .path()
        .join("sys/fs/cgroup/cpuset/docker/c1/cpuset.effective_cpus");
    std::fs::write(cpuset, "0-x\n").expect("write");
    assert!(matches!(
        cg.cpu(&mut Vec::new()),
        Err(CgroupError::Malformed { .. })
    ));

    let (t, cg) = fixtures::v2_cgroup(&Spec::limited());
    let d = t.path().join("sys/fs/cgroup/system.slice/docker-c1.scope");
    std::fs::write(d.join("io.stat"), "254:0 rbytes\n").expect("write");
    assert!(matches!(
        cg.blkio(&mut Vec::new()),
        Err(CgroupError::Malformed { .. })
    ));
    std::fs::write(d.join("cpu.max"), "12\n").expect("write");
    assert!(matches!(
        cg.cpu(&mut Vec::new()),
        Err(CgroupError::Malformed { .. })
    ));
    std::fs::write(d.join("cgroup.threads"), "1\nx\n").expect("write");
    assert!(matches!(
        cg.tasks(&mut Vec::new(), &mut Vec::new()),
        Err(CgroupError::Malformed { .. })
    ));
}

#[test]
fn locate_errors() {
    let t = tempfile::TempDir::new().expect("tempdir");
    let err = Cgroup::from_texts(b"", b"0::/\n", t.path()).expect_err("no mounts");
    assert!(matches!(err, CgroupError::NoHierarchy { .. }));
    let err = Cgroup::from_texts(fixtures::V2_MOUNTINFO.as_bytes(), b"garbage\n", t.path())
        .expect_err("bad proc cgroup");
    assert!(matches!(err, CgroupError::Malformed { .. }));
    let err = Cgroup::from_texts(fixtures::V2_MOUNTINFO.as_bytes(), b"0::/../x\n", t.path())
        .expect_err("dotdot");
    assert!(matches!(err, CgroupError::Malformed { .. }));
    // The directory does not exist in the (empty) tree.
    let err = Cgroup::from_texts(fixtures::V2_MOUNTINFO.as_bytes(), b"0::/gone\n", t.path())
        .expect_err("missing dir");
    assert!(matches!(err, CgroupError::Io { .. }));
}

#[test]
fn mount_root_is_stripped() {
    let t = fixtures::v2_tree(&Spec::limited());
    let mi = "31 23 0:28 /system.slice /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
    // Mount point now shows system.slice as its root.
    std::fs::rename(
        t.path().join("sys/fs/cgroup/system.slice"),
        t.path().join("moved"),
    )
    .expect("rename");
    std::fs::remove_dir_all(t.path().join("sys/fs/cgroup")).expect("rm");
    std::fs::rename(t.path().join("moved"), t.path().join("sys/fs/cgroup")).expect("rename");
    let cg = Cgroup::from_texts(mi.as_bytes(), fixtures::V2_PROC_CGROUP.as_bytes(), t.path())
        .expect("locate");
    assert_eq!(cg.memory(&mut Vec::new()).expect("memory").usage, 100 * MIB);
    let err = Cgroup::from_texts(mi.as_bytes(), b"0::/other/x\n", t.path()).expect_err("outside");
    assert!(matches!(err, CgroupError::OutsideMount { .. }));
}

#[test]
fn mountinfo_parsing() {
    let m =
        parse_mountinfo(b"1 2 0:1 / /a\\040b rw shared:1 - cgroup cgroup rw,cpu,cpuacct\nbad\n");
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].mount_point, "/a b");
    assert!(!m[0].v2);
    let p = parse_proc_cgroup(b"3:cpu,cpuacct:/x\n0::/\n").expect("parse");
    assert_eq!(p[0].controllers, vec!["cpu", "cpuacct"]);
    assert!(p[1].controllers.is_empty());
}

#[test]
fn host_cgroup_of_self_reads() {
    // Whatever this host runs (v1 here, v2 elsewhere), our own cgroup reads.
    let cg = match Cgroup::for_pid(i32::try_from(std::process::id()).expect("pid")) {
        Ok(cg) => cg,
        Err(CgroupError::NoHierarchy { .. }) => return,
        Err(e) => panic!("locate own cgroup: {e}"),
    };
    let s = cg.stats().expect("stats");
    assert!(s.memory.usage > 0);
    let me = std::process::id();
    assert!(
        s.tasks.contains(&me) || cg.version() == Version::V2,
        "{cg:?} {:?}",
        s.tasks
    );
}

#[test]
fn v1_old_kernel_without_hierarchical_figures() {
    let mut spec = Spec::limited();
    spec.swap = Some(Some(64 * MIB));
    let t = fixtures::v1_tree(&spec);
    let d = t.path().join("sys/fs/cgroup/memory/docker/c1");
    let stat = std::fs::read_to_string(d.join("memory.stat")).expect("read");
    let stat: String = stat
        .lines()
        .filter(|l| !l.starts_with("hierarchical_") && !l.starts_with("total_swap"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(d.join("memory.stat"), stat).expect("write");
    std::fs::write(d.join("memory.limit_in_bytes"), format!("{}\n", 128 * MIB)).expect("write");
    std::fs::write(
        d.join("memory.memsw.limit_in_bytes"),
        format!("{}\n", 192 * MIB),
    )
    .expect("write");
    let cg = Cgroup::from_texts(
        fixtures::V1_MOUNTINFO.as_bytes(),
        fixtures::V1_PROC_CGROUP.as_bytes(),
        t.path(),
    )
    .expect("locate");
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!(m.limit, Some(128 * MIB));
    assert_eq!(m.swap.map(|s| s.limit), Some(Some(64 * MIB)));
    // Without the per-cgroup total_* keys, the plain ones are used.
    std::fs::write(d.join("memory.stat"), "cache 7\nrss 9\n").expect("write");
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!((m.cache, m.rss, m.shmem), (7, 9, 0));
}

#[test]
fn cpu_detail_levels_read_less() {
    for (_t, cg) in [
        fixtures::v1_cgroup(&Spec::limited()),
        fixtures::v2_cgroup(&Spec::limited()),
    ] {
        let mut buf = Vec::new();
        let l = cg.cpu_detail(&mut buf, CpuDetail::Limits).expect("limits");
        assert_eq!(l.cpuset, Some(vec![1, 2, 3]));
        assert!(l.quota.is_some());
        assert_eq!((l.usage_ns, l.per_cpu_ns.as_ref()), (0, None));
        let u = cg.cpu_detail(&mut buf, CpuDetail::Usage).expect("usage");
        assert_eq!(u.usage_ns, 3_000_000_000);
        let f = cg.cpu(&mut buf).expect("full");
        assert_eq!(f.user_ns + f.system_ns, f.usage_ns);
    }
}

#[test]
fn v2_root_cgroup_has_no_memory_current() {
    let t = tempfile::TempDir::new().expect("tempdir");
    fixtures::write(
        t.path(),
        "sys/fs/cgroup/memory.stat",
        "anon 1048576\nfile 2097152\n",
    );
    fixtures::write(t.path(), "sys/fs/cgroup/cgroup.threads", "1\n2\n");
    let cg =
        Cgroup::from_texts(fixtures::V2_MOUNTINFO.as_bytes(), b"0::/\n", t.path()).expect("locate");
    assert!(cg.is_root());
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!((m.limit, m.usage, m.swap), (None, 3 << 20, None));
    let mut tids = Vec::new();
    cg.tasks(&mut Vec::new(), &mut tids).expect("tasks");
    assert_eq!(tids, vec![1, 2]);
}

#[test]
fn v2_without_memory_controller_is_unlimited() {
    let (t, cg) = fixtures::v2_cgroup(&Spec::limited());
    let d = t.path().join("sys/fs/cgroup/system.slice/docker-c1.scope");
    std::fs::remove_file(d.join("memory.stat")).expect("rm");
    let err = cg
        .memory(&mut Vec::new())
        .expect_err("stat missing, current present");
    assert!(matches!(err, CgroupError::Io { .. }));
    for f in ["memory.current", "memory.max"] {
        std::fs::remove_file(d.join(f)).expect("rm");
    }
    // memory.current was kept open by the first read: a fresh cgroup sees
    // the files gone (a controller is not disabled under a live container).
    let cg = Cgroup::from_texts(
        fixtures::V2_MOUNTINFO.as_bytes(),
        fixtures::V2_PROC_CGROUP.as_bytes(),
        t.path(),
    )
    .expect("locate");
    let m = cg.memory(&mut Vec::new()).expect("memory");
    assert_eq!(m, MemoryStats::default());
}

#[test]
fn kernel_file_reads_past_short_reads_and_caps() {
    // A multi-record seq_file returns short reads long before its end.
    let mut f = std::fs::File::open("/proc/self/mountinfo").expect("open");
    let mut buf = Vec::new();
    super::read_kernel_file(&mut f, &mut buf, 1 << 20).expect("read");
    assert_eq!(buf, std::fs::read("/proc/self/mountinfo").expect("read"));
    let t = tempfile::TempDir::new().expect("tempdir");
    let p = t.path().join("big");
    std::fs::write(&p, vec![b'x'; 20_000]).expect("write");
    let mut buf = b"ab".to_vec();
    super::read_kernel_file(
        &mut std::fs::File::open(&p).expect("open"),
        &mut buf,
        10_000,
    )
    .expect("read");
    assert_eq!(buf.len(), 10_002);
    buf.clear();
    super::read_kernel_file(
        &mut std::fs::File::open(&p).expect("open"),
        &mut buf,
        1 << 20,
    )
    .expect("read");
    assert_eq!(buf.len(), 20_000);
}

#[test]
fn kept_files_see_fresh_kernel_content() {
    use super::dir::{pread_kernel_file, Records};
    use std::time::Duration;
    // A kept procfs fd re-read at offset 0 regenerates: /proc/self/stat's
    // utime/stime or /proc/uptime change while we burn CPU.
    let f = std::fs::File::open("/proc/uptime").expect("open");
    let mut a = Vec::new();
    pread_kernel_file(&f, &mut a, 1 << 20, Records::One).expect("read");
    assert!(a.ends_with(b"\n"), "{a:?}");
    let mut b = Vec::new();
    let t = std::time::Instant::now();
    loop {
        std::thread::sleep(Duration::from_millis(20));
        pread_kernel_file(&f, &mut b, 1 << 20, Records::One).expect("read");
        if b != a || t.elapsed() > Duration::from_secs(5) {
            break;
        }
    }
    assert_ne!(
        a, b,
        "a kept /proc/uptime fd re-read at 0 gives fresh content"
    );
    assert_eq!(b.iter().filter(|&&c| c == b'\n').count(), 1);
    // Same content as an open-read-close, for files larger than the buffer
    // and multi-record ones (short reads long before the end).
    for (path, records) in [
        ("/proc/self/mountinfo", Records::Many),
        // Stable and multi-record (maps would move with other test threads).
        ("/proc/crypto", Records::Many),
        ("/proc/meminfo", Records::One),
    ] {
        let f = std::fs::File::open(path).expect("open");
        for cap in [0, 64, 1 << 16] {
            let mut buf = Vec::with_capacity(cap);
            pread_kernel_file(&f, &mut buf, 1 << 20, records).expect("read");
            let mut fresh = std::fs::read(path).expect("read");
            // Other tests (and containers) mount while this runs: the
            // mount table may change between the two reads; read both
            // again until one pair was taken with no change in between.
            for _ in 0..20 {
                if buf == fresh || !path.ends_with("mountinfo") {
                    break;
                }
                buf.clear();
                pread_kernel_file(&f, &mut buf, 1 << 20, records).expect("read");
                fresh = std::fs::read(path).expect("read");
            }
            if path.ends_with("meminfo") {
                // Its figures move; its shape does not.
                assert_eq!(
                    buf.split(|&c| c == b'\n').count(),
                    fresh.split(|&c| c == b'\n').count()
                );
            } else {
                assert_eq!(buf, fresh, "{path} cap {cap}");
            }
        }
    }
    // A large regular file read by chunks at increasing offsets, capped.
    let t = tempfile::TempDir::new().expect("tempdir");
    let p = t.path().join("big");
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&p, &data).expect("write");
    let f = std::fs::File::open(&p).expect("open");
    for records in [Records::One, Records::Many] {
        let mut buf = Vec::new();
        pread_kernel_file(&f, &mut buf, 1 << 20, records).expect("read");
        assert_eq!(buf, data);
        buf.clear();
        pread_kernel_file(&f, &mut buf, 10_000, records).expect("read");
        assert_eq!(buf.len(), 10_000);
    }
}

#[test]
fn kept_files_follow_rewrites_and_remember_missing_files() {
    let (t, cg) = fixtures::v1_cgroup(&Spec::limited());
    let mem = t.path().join("sys/fs/cgroup/memory/docker/c1");
    let mut buf = Vec::new();
    let before = cg.memory(&mut buf).expect("memory");
    // Rewritten in place (as the kernel regenerates): seen.
    std::fs::write(mem.join("memory.usage_in_bytes"), "4096\n").expect("write");
    assert_eq!(cg.memory(&mut buf).expect("memory").usage, 4096);
    assert_ne!(before.usage, 4096);
    // A file that did not exist at its first read is remembered missing.
    let dir =
        super::dir::CgDir::open(mem.clone(), t.path().join("sys/fs/cgroup/memory")).expect("open");
    assert!(!dir
        .read_opt("memory.memsw.usage_in_bytes", &mut buf)
        .expect("read"));
    std::fs::write(mem.join("memory.memsw.usage_in_bytes"), "1\n").expect("write");
    assert!(!dir
        .read_opt("memory.memsw.usage_in_bytes", &mut buf)
        .expect("read"));
    // A file that is not kept is opened per read.
    std::fs::write(mem.join("other"), "1\n").expect("write");
    assert!(dir.read_opt("other", &mut buf).expect("read"));
    assert_eq!(buf, b"1\n");
}

#[test]
fn kept_fd_of_a_removed_kernfs_file_is_an_error_not_a_panic() {
    // A kept fd of a sysfs/kernfs file whose node is gone fails with
    // ENODEV; the nearest thing to a removed cgroup without creating one:
    // a kept /proc/<pid> file of a process that exited fails (ESRCH/empty),
    // and the read returns rather than panics.
    let mut child = std::process::Command::new("true").spawn().expect("spawn");
    let f = std::fs::File::open(format!("/proc/{}/stat", child.id())).expect("open");
    child.wait().expect("wait");
    let mut buf = Vec::new();
    let r = super::dir::pread_kernel_file(&f, &mut buf, 1 << 20, super::dir::Records::One);
    assert!(r.is_err() || buf.is_empty(), "{r:?} {buf:?}");
}

//! Test fixture trees: a fake host root with cgroup v1 or v2 hierarchies for
//! one container, plus the mountinfo and `/proc/<pid>/cgroup` texts that
//! point at it.

use std::path::Path;

use tempfile::TempDir;

use super::Cgroup;

pub(crate) const MIB: u64 = 1 << 20;
pub(crate) const V1_UNLIMITED: u64 = 9_223_372_036_854_771_712;

/// What the container's cgroup holds.
#[derive(Clone)]
pub(crate) struct Spec {
    pub limit: Option<u64>,
    pub cpuset: &'static str,
    pub quota: Option<(u64, u64)>,
    /// `Some(limit)` to enable swap accounting (v1 memsw / v2 swap.max).
    pub swap: Option<Option<u64>>,
    pub tasks: &'static str,
}

impl Spec {
    /// 256 MiB, cpuset 1-3 narrowed by a 1.5-CPU quota, no swap accounting.
    pub(crate) fn limited() -> Self {
        Spec {
            limit: Some(256 * MIB),
            cpuset: "1-3",
            quota: Some((150_000, 100_000)),
            swap: None,
            tasks: "100\n101\n",
        }
    }

    /// No limits at all.
    pub(crate) fn unlimited() -> Self {
        Spec {
            limit: None,
            cpuset: "0-3",
            quota: None,
            swap: None,
            tasks: "100\n",
        }
    }
}

pub(crate) fn write(root: &Path, rel: &str, content: &str) {
    let p = root.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("mkdir fixture");
    }
    std::fs::write(&p, content).expect("write fixture");
}

pub(crate) const V1_MOUNTINFO: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

pub(crate) const V1_PROC_CGROUP: &str = "\
8:pids:/docker/c1
7:blkio:/docker/c1
4:memory:/docker/c1
3:cpuset:/docker/c1
2:cpuacct:/docker/c1
1:cpu:/docker/c1
0::/
";

pub(crate) const V2_MOUNTINFO: &str = "\
25 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 23 0:28 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw,nsdelegate
";

pub(crate) const V2_PROC_CGROUP: &str = "0::/system.slice/docker-c1.scope\n";

/// Build a v1 tree for `spec` under a fresh tempdir.
pub(crate) fn v1_tree(spec: &Spec) -> TempDir {
    let t = TempDir::new().expect("tempdir");
    let r = t.path();
    let cg = |ctrl: &str, file: &str| format!("sys/fs/cgroup/{ctrl}/docker/c1/{file}");
    let limit = spec.limit.unwrap_or(V1_UNLIMITED);
    let memsw = match (spec.swap, spec.limit) {
        (Some(Some(s)), Some(l)) => s + l,
        _ => V1_UNLIMITED,
    };
    // The kernel shows the memsw and swap figures only with swap accounting.
    let swap_stat = if spec.swap.is_some() {
        format!(
            "hierarchical_memsw_limit {memsw}\ntotal_swap {}\n",
            10 * MIB
        )
    } else {
        String::new()
    };
    write(
        r,
        &cg("memory", "memory.stat"),
        &format!(
            "cache 1\nrss 2\nshmem 3\n\
             total_cache {}\ntotal_rss {}\ntotal_shmem {}\ntotal_mapped_file {}\n\
             total_dirty {}\ntotal_writeback 0\ntotal_active_anon {}\ntotal_inactive_anon {}\n\
             total_active_file {}\ntotal_inactive_file {}\ntotal_unevictable 0\n\
             hierarchical_memory_limit {limit}\n{swap_stat}",
            60 * MIB,
            30 * MIB,
            4 * MIB,
            8 * MIB,
            MIB,
            20 * MIB,
            14 * MIB,
            40 * MIB,
            16 * MIB
        ),
    );
    write(
        r,
        &cg("memory", "memory.usage_in_bytes"),
        &format!("{}\n", 100 * MIB),
    );
    write(
        r,
        &cg("memory", "memory.limit_in_bytes"),
        &format!("{limit}\n"),
    );
    if spec.swap.is_some() {
        write(
            r,
            &cg("memory", "memory.memsw.limit_in_bytes"),
            &format!("{memsw}\n"),
        );
        write(
            r,
            &cg("memory", "memory.memsw.usage_in_bytes"),
            &format!("{}\n", 110 * MIB),
        );
    }
    write(
        r,
        &cg("cpuset", "cpuset.cpus"),
        &format!("{}\n", spec.cpuset),
    );
    write(
        r,
        &cg("cpuset", "cpuset.effective_cpus"),
        &format!("{}\n", spec.cpuset),
    );
    let (q, p) = spec
        .quota
        .map_or((-1i64, 100_000u64), |(q, p)| (q as i64, p));
    write(r, &cg("cpu", "cpu.cfs_quota_us"), &format!("{q}\n"));
    write(r, &cg("cpu", "cpu.cfs_period_us"), &format!("{p}\n"));
    write(r, &cg("cpu", "tasks"), spec.tasks);
    // 3 s of CPU, 2/3 user, spread over host cpus 1 and 2.
    write(r, &cg("cpuacct", "cpuacct.usage"), "3000000000\n");
    write(r, &cg("cpuacct", "cpuacct.stat"), "user 200\nsystem 100\n");
    write(
        r,
        &cg("cpuacct", "cpuacct.usage_percpu"),
        "0 2000000000 1000000000 0 \n",
    );
    write(
        r,
        &cg("blkio", "blkio.throttle.io_service_bytes_recursive"),
        "254:0 Read 1048576\n254:0 Write 524288\n254:0 Sync 0\n254:0 Async 0\n\
         254:0 Discard 0\n254:0 Total 1572864\nTotal 1572864\n",
    );
    write(
        r,
        &cg("blkio", "blkio.throttle.io_serviced_recursive"),
        "254:0 Read 10\n254:0 Write 5\n254:0 Sync 0\n254:0 Async 0\n\
         254:0 Discard 0\n254:0 Total 15\nTotal 15\n",
    );
    // A child cgroup (systemd inside the container) with one more task.
    write(r, &cg("pids", "tasks"), spec.tasks);
    write(r, &cg("pids", "init.scope/tasks"), "102\n");
    t
}

/// Build a v2 tree for `spec` under a fresh tempdir.
pub(crate) fn v2_tree(spec: &Spec) -> TempDir {
    let t = TempDir::new().expect("tempdir");
    let r = t.path();
    let base = "sys/fs/cgroup/system.slice/docker-c1.scope";
    let f = |file: &str| format!("{base}/{file}");
    let max = |v: Option<u64>| v.map_or_else(|| "max".to_owned(), |v| v.to_string());
    write(
        r,
        &f("memory.stat"),
        &format!(
            "anon {}\nfile {}\nkernel_stack 16384\npagetables 65536\nshmem {}\n\
             file_mapped {}\nfile_dirty {}\nfile_writeback 0\ninactive_anon {}\n\
             active_anon {}\ninactive_file {}\nactive_file {}\nunevictable 0\n\
             slab_reclaimable 1048576\nslab_unreclaimable 524288\nslab 1572864\n",
            30 * MIB,
            60 * MIB,
            4 * MIB,
            8 * MIB,
            MIB,
            14 * MIB,
            20 * MIB,
            16 * MIB,
            40 * MIB
        ),
    );
    write(r, &f("memory.current"), &format!("{}\n", 100 * MIB));
    write(r, &f("memory.max"), &format!("{}\n", max(spec.limit)));
    // The parent slice has no limit of its own.
    write(r, "sys/fs/cgroup/system.slice/memory.max", "max\n");
    if let Some(swap) = spec.swap {
        write(r, &f("memory.swap.max"), &format!("{}\n", max(swap)));
        write(r, &f("memory.swap.current"), &format!("{}\n", 10 * MIB));
    }
    write(
        r,
        &f("cpuset.cpus.effective"),
        &format!("{}\n", spec.cpuset),
    );
    let cpu_max = spec
        .quota
        .map_or_else(|| "max 100000".to_owned(), |(q, p)| format!("{q} {p}"));
    write(r, &f("cpu.max"), &format!("{cpu_max}\n"));
    write(
        r,
        &f("cpu.stat"),
        "usage_usec 3000000\nuser_usec 2000000\nsystem_usec 1000000\nnr_periods 0\n",
    );
    write(
        r,
        &f("io.stat"),
        "254:0 rbytes=1048576 wbytes=524288 rios=10 wios=5 dbytes=0 dios=0\n",
    );
    write(r, &f("cgroup.threads"), spec.tasks);
    write(r, &f("init.scope/cgroup.threads"), "102\n");
    t
}

pub(crate) fn v1_cgroup(spec: &Spec) -> (TempDir, Cgroup) {
    let t = v1_tree(spec);
    let cg = Cgroup::from_texts(V1_MOUNTINFO.as_bytes(), V1_PROC_CGROUP.as_bytes(), t.path())
        .expect("locate v1 fixture");
    (t, cg)
}

pub(crate) fn v2_cgroup(spec: &Spec) -> (TempDir, Cgroup) {
    let t = v2_tree(spec);
    let cg = Cgroup::from_texts(V2_MOUNTINFO.as_bytes(), V2_PROC_CGROUP.as_bytes(), t.path())
        .expect("locate v2 fixture");
    (t, cg)
}

//! `/proc/stat`: the container's CPU time on its usable CPUs, and its own
//! task counts; the rest is the host's.
//!
//! - `cpu` and one `cpuN` per usable CPU (renumbered). Per-CPU usage is
//!   taken from v1's `cpuacct.usage_percpu` for the usable host CPUs; what
//!   the container ran elsewhere (cpus outside the quota-narrowed set, or
//!   all of it on v2, which has no per-CPU figures) is spread evenly over
//!   the usable CPUs, so the lines always sum to the cgroup's usage. Each
//!   CPU's time is split into user and system by the cgroup's user/system
//!   ratio; idle = the container's uptime − that CPU's usage, at least 0;
//!   nice, iowait, irq, softirq, steal, guest and guest_nice are 0.
//! - `intr`, `ctxt`, `softirq` are the host's (not accounted per cgroup).
//! - `btime` stays the host's on purpose: `ps` and `top` compute a process's
//!   start time as btime + its `starttime`, and `starttime` is counted from
//!   the host's boot, so any other btime would shift every start time.
//! - `processes` (forks since boot on a host) is the container's task
//!   count, `procs_running`/`procs_blocked` its tasks in state R and D.

use std::io::Write as _;

use super::clock::ns_to_ticks;
use super::tasks::TaskCounts;
use crate::cgroup::CpuStats;

/// Per usable CPU usage in ns, summing to `cpu.usage_ns` (see module doc).
pub fn per_cpu_usage(cpu: &CpuStats, usable: &[u32]) -> Vec<u64> {
    let n = usable.len().max(1);
    let mut v: Vec<u64> = match &cpu.per_cpu_ns {
        Some(per) => usable
            .iter()
            .map(|&c| {
                usize::try_from(c)
                    .ok()
                    .and_then(|i| per.get(i))
                    .copied()
                    .unwrap_or(0)
            })
            .collect(),
        None => vec![0; usable.len()],
    };
    v.resize(n, 0);
    let sum: u64 = v.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let rest = cpu.usage_ns.saturating_sub(sum);
    let n64 = u64::try_from(n).unwrap_or(1);
    for (i, x) in v.iter_mut().enumerate() {
        *x = x.saturating_add(rest / n64);
        if i == 0 {
            *x = x.saturating_add(rest % n64);
        }
    }
    v
}

/// Render the container's stat from the host's text.
pub fn render(
    host_text: &[u8],
    usable: &[u32],
    cpu: &CpuStats,
    uptime_ns: u64,
    tck: u64,
    tasks: &TaskCounts,
    out: &mut Vec<u8>,
) {
    let per = per_cpu_usage(cpu, usable);
    let uptime = ns_to_ticks(uptime_ns, tck);
    let rows: Vec<[u64; 3]> = per
        .iter()
        .map(|&u| {
            let user_ns = crate::cgroup::split_ratio(u, cpu.user_ns, cpu.system_ns);
            let user = ns_to_ticks(user_ns, tck);
            let system = ns_to_ticks(u - user_ns, tck);
            [user, system, uptime.saturating_sub(user + system)]
        })
        .collect();
    let mut wrote_cpus = false;
    for line in host_text.split_inclusive(|&c| c == b'\n') {
        if line.starts_with(b"cpu") {
            if wrote_cpus {
                continue;
            }
            wrote_cpus = true;
            let mut tot = [0u64; 3];
            for r in &rows {
                for (t, v) in tot.iter_mut().zip(r) {
                    *t = t.saturating_add(*v);
                }
            }
            let _ = writeln!(out, "cpu  {} 0 {} {} 0 0 0 0 0 0", tot[0], tot[1], tot[2]);
            for (i, r) in rows.iter().enumerate() {
                let _ = writeln!(out, "cpu{i} {} 0 {} {} 0 0 0 0 0 0", r[0], r[1], r[2]);
            }
        } else if line.starts_with(b"processes ") {
            let _ = writeln!(out, "processes {}", tasks.total);
        } else if line.starts_with(b"procs_running ") {
            let _ = writeln!(out, "procs_running {}", tasks.running);
        } else if line.starts_with(b"procs_blocked ") {
            let _ = writeln!(out, "procs_blocked {}", tasks.blocked);
        } else {
            out.extend_from_slice(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulate::clock::NSEC_PER_SEC;

    const HOST: &str = "cpu  8172 0 2642 41623 459 0 86 48 0 0
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

    fn cpu_v1() -> CpuStats {
        CpuStats {
            cpuset: Some(vec![1, 2, 3]),
            quota: None,
            usage_ns: 3 * NSEC_PER_SEC,
            user_ns: 2 * NSEC_PER_SEC,
            system_ns: NSEC_PER_SEC,
            per_cpu_ns: Some(vec![0, 2 * NSEC_PER_SEC, NSEC_PER_SEC, 0]),
        }
    }

    #[test]
    fn v1_per_cpu() {
        let tasks = TaskCounts {
            total: 3,
            running: 1,
            blocked: 0,
            last_pid: 7,
        };
        let mut out = Vec::new();
        render(
            HOST.as_bytes(),
            &[1, 2],
            &cpu_v1(),
            100 * NSEC_PER_SEC,
            100,
            &tasks,
            &mut out,
        );
        let s = String::from_utf8(out).expect("utf8");
        let want = "cpu  199 0 99 19702 0 0 0 0 0 0
cpu0 133 0 66 9801 0 0 0 0 0 0
cpu1 66 0 33 9901 0 0 0 0 0 0
intr 146388 0 0 1
ctxt 267651
btime 1795912004
processes 3
procs_running 1
procs_blocked 0
softirq 88860 0 8803 4 3780 33668 0 43 22328 0 20234
";
        assert_eq!(s, want);
    }

    #[test]
    fn v2_spread_and_rest() {
        let mut c = cpu_v1();
        c.per_cpu_ns = None;
        assert_eq!(
            per_cpu_usage(&c, &[0, 1]),
            vec![1_500_000_000, 1_500_000_000]
        );
        // v1 usage on a cpu outside the narrowed set is spread over the set.
        assert_eq!(per_cpu_usage(&cpu_v1(), &[1]), vec![3 * NSEC_PER_SEC]);
        c.usage_ns = 7;
        assert_eq!(per_cpu_usage(&c, &[0, 1, 2]), vec![3, 2, 2]);
    }

    #[test]
    fn idle_never_negative() {
        let mut out = Vec::new();
        render(
            HOST.as_bytes(),
            &[1],
            &cpu_v1(),
            NSEC_PER_SEC,
            100,
            &TaskCounts::default(),
            &mut out,
        );
        let s = String::from_utf8(out).expect("utf8");
        assert!(
            s.starts_with("cpu  200 0 100 0 0 0 0 0 0 0\ncpu0 200 0 100 0 "),
            "{s}"
        );
    }
}

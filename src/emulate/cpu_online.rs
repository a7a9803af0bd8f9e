//! `/sys/devices/system/cpu/{online,possible,present}` and the set of CPUs a
//! container may use, which `cpuinfo`, `stat`, `uptime` share.
//!
//! The usable CPUs are the container's cpuset (intersected with the host's
//! online CPUs), narrowed by its CFS quota to `ceil(quota/period)` CPUs, the
//! first ones of the cpuset. They are renumbered `0..n-1` everywhere, so the
//! three files all read `0-(n-1)`: `possible` and `present` are the same as
//! `online` because tools (glibc's `get_nprocs_conf`, `lscpu`, Go's runtime)
//! count CPUs from any of them and must all agree with `online`.

use std::io::Write as _;

use crate::cgroup::CpuStats;

/// Host CPU numbers the container may use, sorted; never empty when
/// `host_online` is not.
pub fn usable_cpus(host_online: &[u32], cpu: &CpuStats) -> Vec<u32> {
    let mut cpus: Vec<u32> = match &cpu.cpuset {
        Some(set) => {
            let both: Vec<u32> = set
                .iter()
                .copied()
                .filter(|c| host_online.binary_search(c).is_ok())
                .collect();
            if both.is_empty() {
                set.clone()
            } else {
                both
            }
        }
        None => host_online.to_vec(),
    };
    if cpus.is_empty() {
        cpus = host_online.to_vec();
    }
    if let Some(q) = cpu.quota {
        let n = usize::try_from(q.cpus()).unwrap_or(usize::MAX);
        cpus.truncate(n.max(1));
    }
    cpus
}

/// Render the cpu list of `n` renumbered CPUs: `0\n`, `0-3\n`.
pub fn render(n: usize, out: &mut Vec<u8>) {
    // Writing into a Vec cannot fail.
    let _ = match n {
        0 | 1 => writeln!(out, "0"),
        n => writeln!(out, "0-{}", n - 1),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cgroup::CpuQuota;

    #[test]
    fn narrowing() {
        let online = [0, 1, 2, 3];
        let mut c = CpuStats {
            cpuset: Some(vec![1, 2, 3]),
            ..CpuStats::default()
        };
        assert_eq!(usable_cpus(&online, &c), vec![1, 2, 3]);
        c.quota = Some(CpuQuota {
            quota_us: 150_000,
            period_us: 100_000,
        });
        assert_eq!(usable_cpus(&online, &c), vec![1, 2]);
        c.quota = Some(CpuQuota {
            quota_us: 1_000,
            period_us: 100_000,
        });
        assert_eq!(usable_cpus(&online, &c), vec![1]);
        c.cpuset = Some(vec![0]);
        c.quota = None;
        assert_eq!(usable_cpus(&online, &c), vec![0]);
        c.cpuset = None;
        assert_eq!(usable_cpus(&online, &c), vec![0, 1, 2, 3]);
        // A cpuset naming only offline cpus keeps them rather than nothing.
        c.cpuset = Some(vec![7]);
        assert_eq!(usable_cpus(&online, &c), vec![7]);
    }

    #[test]
    fn lists() {
        let mut out = Vec::new();
        render(1, &mut out);
        render(4, &mut out);
        assert_eq!(out, b"0\n0-3\n");
    }
}

//! cgroup v1: one directory per controller hierarchy (memory, cpu, cpuacct,
//! cpuset, blkio, pids), possibly co-mounted.

use std::path::PathBuf;

use super::dir::{collect_tasks, CgDir};
use super::parse::{fields, lines, parse_cpulist, parse_i64, parse_u64, split_key};
use super::{
    device_entry, for_each_kv, limit_from_bytes, parse_devno, BlkioDevice, CgroupError, CpuDetail,
    CpuQuota, CpuStats, MemoryStats, Result, SwapStats,
};

pub(crate) struct V1 {
    pub(crate) memory: CgDir,
    pub(crate) cpu: Option<CgDir>,
    pub(crate) cpuacct: Option<CgDir>,
    pub(crate) cpuset: Option<CgDir>,
    pub(crate) blkio: Option<CgDir>,
    pub(crate) pids: Option<CgDir>,
    pub(crate) proc_cgroup: PathBuf,
}

/// `memory.stat` keys we use, in the order of the arrays below.
const STAT_KEYS: [&[u8]; 12] = [
    b"cache",
    b"rss",
    b"shmem",
    b"mapped_file",
    b"dirty",
    b"writeback",
    b"active_anon",
    b"inactive_anon",
    b"active_file",
    b"inactive_file",
    b"unevictable",
    b"swap",
];

/// Pairs of (bytes, operations) files, most useful first: the throttle
/// files count every bio whatever the I/O scheduler; the recursive ones
/// include child cgroups.
const BLKIO_FILES: [(&str, &str); 4] = [
    (
        "blkio.throttle.io_service_bytes_recursive",
        "blkio.throttle.io_serviced_recursive",
    ),
    (
        "blkio.throttle.io_service_bytes",
        "blkio.throttle.io_serviced",
    ),
    (
        "blkio.io_service_bytes_recursive",
        "blkio.io_serviced_recursive",
    ),
    (
        "blkio.bfq.io_service_bytes_recursive",
        "blkio.bfq.io_serviced_recursive",
    ),
];

impl V1 {
    pub(crate) fn describe(&self) -> String {
        super::locate::describe_dirs(&[
            ("memory", Some(&self.memory)),
            ("cpu", self.cpu.as_ref()),
            ("cpuacct", self.cpuacct.as_ref()),
            ("cpuset", self.cpuset.as_ref()),
            ("blkio", self.blkio.as_ref()),
            ("pids", self.pids.as_ref()),
        ])
    }

    pub(crate) fn is_root(&self) -> bool {
        self.memory.is_root()
            && [
                &self.cpu,
                &self.cpuacct,
                &self.cpuset,
                &self.blkio,
                &self.pids,
            ]
            .into_iter()
            .flatten()
            .all(CgDir::is_root)
    }

    pub(crate) fn memory(&self, buf: &mut Vec<u8>) -> Result<MemoryStats> {
        let d = &self.memory;
        let mut total = [None::<u64>; STAT_KEYS.len()];
        let mut plain = [None::<u64>; STAT_KEYS.len()];
        let mut hier_limit = None;
        let mut hier_memsw = None;
        d.read("memory.stat", buf)?;
        let mut bad = false;
        for_each_kv(buf, |k, v| {
            let Some(v) = parse_u64(v) else {
                bad = true;
                return;
            };
            match k {
                b"hierarchical_memory_limit" => hier_limit = Some(v),
                b"hierarchical_memsw_limit" => hier_memsw = Some(v),
                _ => {
                    let (arr, key) = match k.strip_prefix(b"total_") {
                        Some(rest) => (&mut total, rest),
                        None => (&mut plain, k),
                    };
                    if let Some(i) = STAT_KEYS.iter().position(|s| *s == key) {
                        arr[i] = Some(v);
                    }
                }
            }
        });
        if bad {
            return Err(d.malformed("memory.stat", "a value is not a number"));
        }
        // Hierarchical (total_*) figures include child cgroups.
        let get = |i: usize| total[i].or(plain[i]).unwrap_or(0);
        let usage = d.read_u64("memory.usage_in_bytes", buf)?;
        // hierarchical_memory_limit is already the minimum over the cgroup
        // and its ancestors: read the cgroup's own file only when it is
        // missing (old kernels).
        let limit_raw = match hier_limit {
            Some(h) => h,
            None => d.read_u64("memory.limit_in_bytes", buf)?,
        };
        let limit = limit_from_bytes(limit_raw);
        // With swap accounting (swapaccount=1) memory.stat carries
        // hierarchical_memsw_limit and swap; older kernels only have the
        // memsw files.
        let swap_usage = get(11);
        let memsw_limit = match hier_memsw {
            Some(h) => Some(h),
            None if d.read_opt("memory.memsw.limit_in_bytes", buf)? => Some(
                parse_u64(buf)
                    .ok_or_else(|| d.malformed("memory.memsw.limit_in_bytes", "not a number"))?,
            ),
            None => None,
        };
        let swap = memsw_limit.map(|memsw| SwapStats {
            // memsw is memory + swap: the swap share is what exceeds the
            // memory limit.
            limit: limit_from_bytes(memsw).map(|m| m.saturating_sub(limit.unwrap_or(0))),
            usage: swap_usage,
        });
        Ok(MemoryStats {
            limit,
            usage,
            cache: get(0),
            rss: get(1),
            shmem: get(2),
            mapped_file: get(3),
            dirty: get(4),
            writeback: get(5),
            active_anon: get(6),
            inactive_anon: get(7),
            active_file: get(8),
            inactive_file: get(9),
            unevictable: get(10),
            slab_reclaimable: None,
            slab_unreclaimable: None,
            kernel_stack: None,
            pagetables: None,
            swap,
        })
    }

    pub(crate) fn cpu(&self, buf: &mut Vec<u8>, detail: CpuDetail) -> Result<CpuStats> {
        let mut out = CpuStats::default();
        if let Some(d) = &self.cpuset {
            let name = if d.read_opt("cpuset.effective_cpus", buf)? {
                "cpuset.effective_cpus"
            } else {
                d.read("cpuset.cpus", buf)?;
                "cpuset.cpus"
            };
            out.cpuset =
                Some(parse_cpulist(buf).ok_or_else(|| d.malformed(name, "not a cpu list"))?);
        }
        if let Some(d) = &self.cpu {
            if d.read_opt("cpu.cfs_quota_us", buf)? {
                let quota = parse_i64(buf)
                    .ok_or_else(|| d.malformed("cpu.cfs_quota_us", "not a number"))?;
                if let Ok(quota_us) = u64::try_from(quota) {
                    let period_us = d.read_u64("cpu.cfs_period_us", buf)?;
                    if period_us > 0 && quota_us > 0 {
                        out.quota = Some(CpuQuota {
                            quota_us,
                            period_us,
                        });
                    }
                }
            }
        }
        if detail == CpuDetail::Limits {
            return Ok(out);
        }
        let d = self
            .cpuacct
            .as_ref()
            .ok_or_else(|| CgroupError::NoController {
                controller: "cpuacct",
                proc_cgroup: self.proc_cgroup.clone(),
            })?;
        out.usage_ns = d.read_u64("cpuacct.usage", buf)?;
        if detail == CpuDetail::Usage {
            out.user_ns = out.usage_ns;
            return Ok(out);
        }
        // User/system split: cpuacct.stat is in USER_HZ ticks; use its ratio.
        d.read("cpuacct.stat", buf)?;
        let (mut user, mut system) = (None, None);
        for_each_kv(buf, |k, v| match k {
            b"user" => user = parse_u64(v),
            b"system" => system = parse_u64(v),
            _ => {}
        });
        let (Some(user), Some(system)) = (user, system) else {
            return Err(d.malformed("cpuacct.stat", "missing user or system"));
        };
        out.user_ns = split_ratio(out.usage_ns, user, system);
        out.system_ns = out.usage_ns - out.user_ns;
        if d.read_opt("cpuacct.usage_percpu", buf)? {
            let mut v = Vec::new();
            for f in fields(buf) {
                v.push(
                    parse_u64(f)
                        .ok_or_else(|| d.malformed("cpuacct.usage_percpu", "not a number"))?,
                );
            }
            out.per_cpu_ns = Some(v);
        }
        Ok(out)
    }

    pub(crate) fn blkio(&self, buf: &mut Vec<u8>) -> Result<Vec<BlkioDevice>> {
        let mut devs = Vec::new();
        let Some(d) = &self.blkio else {
            return Ok(devs);
        };
        for (bytes_file, ops_file) in BLKIO_FILES {
            if !d.read_opt(bytes_file, buf)? {
                continue;
            }
            parse_rwstat(buf, &mut devs, |dev, op, v| match op {
                b"Read" => dev.read_bytes = v,
                b"Write" => dev.write_bytes = v,
                b"Discard" => dev.discard_bytes = v,
                _ => {}
            })
            .ok_or_else(|| d.malformed(bytes_file, "expected MAJ:MIN Op value lines"))?;
            if d.read_opt(ops_file, buf)? {
                parse_rwstat(buf, &mut devs, |dev, op, v| match op {
                    b"Read" => dev.reads = v,
                    b"Write" => dev.writes = v,
                    b"Discard" => dev.discards = v,
                    _ => {}
                })
                .ok_or_else(|| d.malformed(ops_file, "expected MAJ:MIN Op value lines"))?;
            }
            break;
        }
        Ok(devs)
    }

    pub(crate) fn tasks(&self, buf: &mut Vec<u8>, out: &mut Vec<u32>) -> Result<()> {
        let d = [&self.pids, &self.cpu, &self.cpuacct]
            .into_iter()
            .flatten()
            .next()
            .unwrap_or(&self.memory);
        collect_tasks(d, "tasks", buf, out)
    }
}

/// `total * a / (a + b)` without overflow; all of it to `a` when both are 0.
pub(crate) fn split_ratio(total: u64, a: u64, b: u64) -> u64 {
    let sum = u128::from(a) + u128::from(b);
    if sum == 0 {
        return total;
    }
    u64::try_from(u128::from(total) * u128::from(a) / sum).unwrap_or(total)
}

/// Parse a v1 blkio "rwstat" file (`8:0 Read 123` lines, a final
/// `Total 123`). `None` when malformed.
fn parse_rwstat(
    buf: &[u8],
    devs: &mut Vec<BlkioDevice>,
    mut set: impl FnMut(&mut BlkioDevice, &[u8], u64),
) -> Option<()> {
    for line in lines(buf) {
        let (first, rest) = split_key(line);
        if first == b"Total" {
            continue;
        }
        let (major, minor) = parse_devno(first)?;
        let (op, value) = split_key(rest);
        let value = parse_u64(value)?;
        set(device_entry(devs, major, minor), op, value);
    }
    Some(())
}

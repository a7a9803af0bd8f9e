//! `sysinfo(2)` figures, consistent with the emulated files: memory and swap
//! as in meminfo, loads from the same `LoadState` as loadavg (given already
//! shifted to 16 fractional bits), procs the
//! container's task count, uptime as in `/proc/uptime`, rounded up to whole
//! seconds like the kernel's `do_sysinfo`.

use super::clock::NSEC_PER_SEC;
use super::meminfo::MemFigures;
use super::tasks::TaskCounts;
use super::SysinfoFigures;

pub fn figures(
    mem: &MemFigures,
    loads: [u64; 3],
    uptime_ns: u64,
    tasks: &TaskCounts,
) -> SysinfoFigures {
    let b = |kb: u64| kb.saturating_mul(1024);
    let secs = uptime_ns / NSEC_PER_SEC + u64::from(uptime_ns % NSEC_PER_SEC != 0);
    SysinfoFigures {
        uptime: i64::try_from(secs).unwrap_or(i64::MAX),
        loads,
        totalram: b(mem.total),
        freeram: b(mem.free),
        sharedram: b(mem.shmem),
        bufferram: b(mem.buffers),
        totalswap: b(mem.swap_total),
        freeswap: b(mem.swap_free),
        procs: u16::try_from(tasks.total).unwrap_or(u16::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_with_meminfo() {
        let mem = MemFigures {
            limited: true,
            total: 262_144,
            free: 159_744,
            shmem: 4096,
            ..MemFigures::default()
        };
        let load = crate::emulate::loadavg::LoadState {
            avenrun: [1024, 0, 0],
            last_ns: 0,
        };
        let t = TaskCounts {
            total: 70_000,
            ..TaskCounts::default()
        };
        let s = figures(&mem, load.sysinfo_loads(), NSEC_PER_SEC + 1, &t);
        assert_eq!(s.uptime, 2);
        assert_eq!(s.totalram, 256 << 20);
        assert_eq!(s.freeram, 159_744 * 1024);
        assert_eq!(s.sharedram, 4 << 20);
        assert_eq!(s.bufferram, 0);
        assert_eq!(s.loads, [32768, 0, 0]);
        assert_eq!(s.procs, u16::MAX);
    }
}

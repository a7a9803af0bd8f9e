//! `/proc/loadavg` and the loads of `sysinfo(2)`: the container's own load
//! average, computed with the kernel's fixed-point formula from the number
//! of its tasks that are running or uninterruptible.
//!
//! The kernel samples every 5 s (`LOAD_FREQ`). The supervisor must use no
//! CPU while containers are idle, so there is no sampler: [`LoadState`]
//! is brought up to date lazily on each read, applying one decay step per
//! 5-second period elapsed since the previous update with the active count
//! seen now. Between reads that is an approximation (the count is assumed
//! constant over the gap); for a reader that polls (top, uptime in a loop)
//! it is the kernel's own computation. After 2048 periods (≈ 2.8 h) every
//! average has converged, so longer gaps cost no more.
//!
//! The fourth field is running/total tasks of the container, the fifth its
//! highest pid (in its own pid namespace when known): the kernel prints the
//! last pid allocated, which is per namespace and not observable here, and
//! the highest live pid is the closest stable answer.

use std::io::Write as _;

use super::tasks::TaskCounts;

pub const FSHIFT: u32 = 11;
pub const FIXED_1: u64 = 1 << FSHIFT;
pub const EXP_1: u64 = 1884;
pub const EXP_5: u64 = 2014;
pub const EXP_15: u64 = 2037;
/// 5 s, in nanoseconds.
pub const LOAD_FREQ_NS: u64 = 5_000_000_000;
/// `sysinfo(2)` loads have 16 fractional bits.
pub const SI_LOAD_SHIFT: u32 = 16;
const MAX_STEPS: u64 = 2048;

/// The kernel's `calc_load`.
pub fn calc_load(load: u64, exp: u64, active: u64) -> u64 {
    let mut newload = load * exp + active * (FIXED_1 - exp);
    if active >= load {
        newload += FIXED_1 - 1;
    }
    newload / FIXED_1
}

/// Per-container load averages (fixed point, `FSHIFT` bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadState {
    pub avenrun: [u64; 3],
    /// Time (ns since boot) the averages are valid at.
    pub last_ns: u64,
}

impl LoadState {
    /// Zero load as of `now_ns` (a container starts idle).
    pub fn new(now_ns: u64) -> Self {
        LoadState {
            avenrun: [0; 3],
            last_ns: now_ns,
        }
    }

    /// True when at least one period has passed since the last update, so
    /// that [`LoadState::update`] needs the active count.
    pub fn due(&self, now_ns: u64) -> bool {
        now_ns.saturating_sub(self.last_ns) >= LOAD_FREQ_NS
    }

    /// Apply the decay for every whole 5 s period elapsed up to `now_ns`,
    /// with `active` running + uninterruptible tasks.
    pub fn update(&mut self, now_ns: u64, active: u64) {
        let periods = now_ns.saturating_sub(self.last_ns) / LOAD_FREQ_NS;
        if periods == 0 {
            return;
        }
        // Cap so that a huge task count cannot overflow `active * FIXED_1`.
        let active = active.min(1 << 32) * FIXED_1;
        for _ in 0..periods.min(MAX_STEPS) {
            self.avenrun[0] = calc_load(self.avenrun[0], EXP_1, active);
            self.avenrun[1] = calc_load(self.avenrun[1], EXP_5, active);
            self.avenrun[2] = calc_load(self.avenrun[2], EXP_15, active);
        }
        self.last_ns = self
            .last_ns
            .saturating_add(periods.saturating_mul(LOAD_FREQ_NS));
    }

    /// The loads as `sysinfo(2)` wants them (16 fractional bits).
    pub fn sysinfo_loads(&self) -> [u64; 3] {
        self.avenrun.map(|a| a << (SI_LOAD_SHIFT - FSHIFT))
    }
}

/// The loads of a host `/proc/loadavg` as `sysinfo(2)` wants them (16
/// fractional bits; the file has two decimals, so this is that precise).
pub fn parse_host_loads(text: &[u8]) -> Option<[u64; 3]> {
    let mut f = crate::cgroup::parse::fields(text);
    let mut one = || -> Option<u64> {
        let v = f.next()?;
        let dot = memchr::memchr(b'.', v)?;
        let int = crate::cgroup::parse::parse_u64(&v[..dot])?;
        let frac = crate::cgroup::parse::parse_u64(&v[dot + 1..])?;
        if frac >= 100 {
            return None;
        }
        Some((int.min(1 << 40) << SI_LOAD_SHIFT) + frac * (1 << SI_LOAD_SHIFT) / 100)
    };
    Some([one()?, one()?, one()?])
}

/// Render the kernel's `"%lu.%02lu %lu.%02lu %lu.%02lu %u/%d %d\n"`.
pub fn render(state: &LoadState, tasks: &TaskCounts, out: &mut Vec<u8>) {
    for a in state.avenrun {
        // The kernel rounds by adding FIXED_1/200 before printing.
        let a = a + FIXED_1 / 200;
        let int = a >> FSHIFT;
        let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
        let _ = write!(out, "{int}.{frac:02} ");
    }
    let _ = writeln!(out, "{}/{} {}", tasks.running, tasks.total, tasks.last_pid);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_matches_kernel() {
        // One busy task for one minute (12 periods): 1-min load ≈ 0.63.
        let mut s = LoadState::new(0);
        s.update(60 * 1_000_000_000, 1);
        let t = TaskCounts {
            total: 3,
            running: 1,
            blocked: 0,
            last_pid: 42,
        };
        let mut out = Vec::new();
        render(&s, &t, &mut out);
        assert_eq!(
            String::from_utf8(out).expect("utf8"),
            "0.63 0.18 0.06 1/3 42\n"
        );
        // Step by step equals at once.
        let mut a = LoadState::new(0);
        for i in 1..=12u64 {
            a.update(i * LOAD_FREQ_NS + 1, 1);
        }
        assert_eq!(a.avenrun, s.avenrun);
        // Less than a period changes nothing.
        assert!(!s.due(s.last_ns + LOAD_FREQ_NS - 1));
        assert!(s.due(s.last_ns + LOAD_FREQ_NS));
        let before = s;
        s.update(s.last_ns + LOAD_FREQ_NS - 1, 5);
        assert_eq!(s, before);
        // Idle for hours decays to zero; clock going backwards is harmless.
        s.update(s.last_ns + 10_000 * LOAD_FREQ_NS, 0);
        assert_eq!(s.avenrun, [0, 0, 0]);
        s.update(0, 1);
        assert_eq!(s.sysinfo_loads(), [0, 0, 0]);
    }

    #[test]
    fn host_loads() {
        assert_eq!(
            parse_host_loads(b"0.50 1.00 2.25 1/82 4677\n"),
            Some([32768, 65536, 147456])
        );
        assert_eq!(parse_host_loads(b"0.5x 1 2"), None);
        assert_eq!(parse_host_loads(b""), None);
    }

    #[test]
    fn sysinfo_shift() {
        let s = LoadState {
            avenrun: [FIXED_1, 2 * FIXED_1, 0],
            last_ns: 0,
        };
        assert_eq!(s.sysinfo_loads(), [65536, 131072, 0]);
        let mut out = Vec::new();
        render(&s, &TaskCounts::default(), &mut out);
        assert_eq!(out, b"1.00 2.00 0.00 0/0 0\n");
    }
}

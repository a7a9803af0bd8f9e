//! `/proc/uptime`: seconds since the container's init started, and the idle
//! time of the container's CPUs over that span.
//!
//! idle = uptime × usable CPUs − the container's CPU usage, at least 0 (the
//! kernel's second field is the sum of every CPU's idle time).

use std::io::Write as _;

use super::clock::NSEC_PER_SEC;

/// The two figures of `/proc/uptime`, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UptimeFigures {
    pub uptime_ns: u64,
    pub idle_ns: u64,
}

/// Compute the figures from the clock, the init's start and the usage.
pub fn figures(now_ns: u64, init_start_ns: u64, ncpus: usize, usage_ns: u64) -> UptimeFigures {
    let uptime_ns = now_ns.saturating_sub(init_start_ns);
    let n = u64::try_from(ncpus.max(1)).unwrap_or(1);
    UptimeFigures {
        uptime_ns,
        idle_ns: uptime_ns.saturating_mul(n).saturating_sub(usage_ns),
    }
}

/// Render in the kernel's `"%lu.%02lu %lu.%02lu\n"`.
pub fn render(f: UptimeFigures, out: &mut Vec<u8>) {
    let cs = |ns: u64| {
        (
            ns / NSEC_PER_SEC,
            (ns % NSEC_PER_SEC) / (NSEC_PER_SEC / 100),
        )
    };
    let (us, uc) = cs(f.uptime_ns);
    let (is, ic) = cs(f.idle_ns);
    // Writing into a Vec cannot fail.
    let _ = writeln!(out, "{us}.{uc:02} {is}.{ic:02}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_idle() {
        let f = figures(
            110 * NSEC_PER_SEC + 50_000_000,
            10 * NSEC_PER_SEC,
            2,
            3 * NSEC_PER_SEC,
        );
        assert_eq!(f.uptime_ns, 100_050_000_000);
        assert_eq!(f.idle_ns, 197_100_000_000);
        let mut out = Vec::new();
        render(f, &mut out);
        assert_eq!(out, b"100.05 197.10\n");
        // Idle never goes negative; a start in the future gives 0.
        let f = figures(5, 10, 1, 100);
        assert_eq!(
            f,
            UptimeFigures {
                uptime_ns: 0,
                idle_ns: 0
            }
        );
    }
}

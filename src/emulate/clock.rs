//! Time for the renderers: `CLOCK_BOOTTIME` (the clock `/proc/uptime` and a
//! process's `starttime` are measured on), or a manual clock for tests, and
//! the kernel's `USER_HZ`.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::EmulateError;

pub const NSEC_PER_SEC: u64 = 1_000_000_000;

/// Where "now" comes from.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// The kernel's `CLOCK_BOOTTIME`.
    #[default]
    Boottime,
    /// A clock tests move by hand (nanoseconds since boot).
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `ns`, and the handle that moves it.
    pub fn manual(ns: u64) -> (Clock, Arc<AtomicU64>) {
        let h = Arc::new(AtomicU64::new(ns));
        (Clock::Manual(Arc::clone(&h)), h)
    }

    /// Nanoseconds since boot.
    pub fn now_ns(&self) -> Result<u64, EmulateError> {
        match self {
            Clock::Manual(h) => Ok(h.load(Ordering::Relaxed)),
            Clock::Boottime => {
                crate::kernel::fs::boottime_ns().map_err(|source| EmulateError::Io {
                    path: PathBuf::from("clock_gettime(CLOCK_BOOTTIME)"),
                    source,
                })
            }
        }
    }
}

/// The kernel's `USER_HZ` (clock ticks per second of `/proc` files), 100
/// when sysconf cannot tell.
pub fn clk_tck() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(v)) if v > 0 => u64::try_from(v).unwrap_or(100),
        _ => 100,
    }
}

/// Nanoseconds to clock ticks.
pub fn ns_to_ticks(ns: u64, tck: u64) -> u64 {
    u64::try_from(u128::from(ns) * u128::from(tck) / u128::from(NSEC_PER_SEC)).unwrap_or(u64::MAX)
}

/// Clock ticks to nanoseconds.
pub fn ticks_to_ns(ticks: u64, tck: u64) -> u64 {
    if tck == 0 {
        return 0;
    }
    u64::try_from(u128::from(ticks) * u128::from(NSEC_PER_SEC) / u128::from(tck))
        .unwrap_or(u64::MAX)
}

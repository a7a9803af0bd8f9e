//! `sysinfo(2)`: the container's uptime, loads, memory and task count,
//! written into the caller's buffer in its ABI's layout.

use crate::emulate::SysinfoFigures;
use crate::kernel::arch::{abi_of, Abi};
use crate::kernel::procmem::write_all;

use super::{Action, Ctx};

/// `struct sysinfo` as x86_64 (and x32, aarch64) lay it out: 112 bytes.
pub fn encode_long64(f: &SysinfoFigures) -> [u8; 112] {
    let mut b = [0u8; 112];
    let mut put = |off: usize, v: u64| b[off..off + 8].copy_from_slice(&v.to_ne_bytes());
    put(0, f.uptime as u64);
    put(8, f.loads[0]);
    put(16, f.loads[1]);
    put(24, f.loads[2]);
    put(32, f.totalram);
    put(40, f.freeram);
    put(48, f.sharedram);
    put(56, f.bufferram);
    put(64, f.totalswap);
    put(72, f.freeswap);
    b[80..82].copy_from_slice(&f.procs.to_ne_bytes());
    // totalhigh, freehigh: 0; mem_unit: 1 (figures are in bytes).
    b[104..108].copy_from_slice(&1u32.to_ne_bytes());
    b
}

/// `struct sysinfo` of i386 (32-bit longs): 64 bytes. Like the kernel's
/// compat path, sizes that do not fit 32 bits are given in pages.
pub fn encode_long32(f: &SysinfoFigures) -> [u8; 64] {
    let (shift, unit) = if f.totalram > u32::MAX as u64 || f.totalswap > u32::MAX as u64 {
        (12, 4096u32)
    } else {
        (0, 1u32)
    };
    let mut b = [0u8; 64];
    let mut put = |off: usize, v: u64| b[off..off + 4].copy_from_slice(&(v as u32).to_ne_bytes());
    put(0, f.uptime.max(0) as u64);
    put(4, f.loads[0]);
    put(8, f.loads[1]);
    put(12, f.loads[2]);
    put(16, f.totalram >> shift);
    put(20, f.freeram >> shift);
    put(24, f.sharedram >> shift);
    put(28, f.bufferram >> shift);
    put(32, f.totalswap >> shift);
    put(36, f.freeswap >> shift);
    b[40..42].copy_from_slice(&f.procs.to_ne_bytes());
    b[52..56].copy_from_slice(&unit.to_ne_bytes());
    b
}

pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    let Some(source) = ctx.sources.for_caller(ctx.notif.pid) else {
        return Action::Continue;
    };
    let figures = match source.sysinfo() {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "sysinfo figures unavailable; letting the kernel answer");
            return Action::Continue;
        }
    };
    let addr = ctx.notif.args[0];
    let long64;
    let long32;
    let bytes: &[u8] = match abi_of(ctx.notif.arch) {
        Abi::Long64 => {
            long64 = encode_long64(&figures);
            &long64
        }
        Abi::Long32 => {
            long32 = encode_long32(&figures);
            &long32
        }
    };
    // Never write into a process that is no longer the one that asked.
    if !ctx.nfd.id_valid(ctx.notif.id) {
        return Action::Errno(libc::ESRCH);
    }
    match write_all(ctx.notif.pid, addr, bytes) {
        Ok(true) => Action::Value(0),
        Ok(false) => Action::Errno(libc::EFAULT),
        Err(e) => Action::Errno(e.errno().unwrap_or(libc::EFAULT)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long64_matches_libc_layout() {
        let f = SysinfoFigures {
            uptime: 42,
            loads: [1 << 16, 2 << 16, 3 << 16],
            totalram: 256 << 20,
            freeram: 100 << 20,
            sharedram: 1 << 20,
            bufferram: 0,
            totalswap: 0,
            freeswap: 0,
            procs: 7,
        };
        let b = encode_long64(&f);
        assert_eq!(b.len(), std::mem::size_of::<libc::sysinfo>());
        // SAFETY: libc::sysinfo is plain data of exactly 112 bytes.
        let s: libc::sysinfo = unsafe { std::ptr::read_unaligned(b.as_ptr().cast()) };
        assert_eq!(s.uptime, 42);
        assert_eq!(s.loads, [1 << 16, 2 << 16, 3 << 16]);
        assert_eq!(s.totalram, 256 << 20);
        assert_eq!(s.freeram, 100 << 20);
        assert_eq!(s.sharedram, 1 << 20);
        assert_eq!(s.procs, 7);
        assert_eq!(s.mem_unit, 1);
    }

    #[test]
    fn long32_scales_large_memory() {
        let f = SysinfoFigures {
            totalram: 8 << 30,
            freeram: 4 << 30,
            ..Default::default()
        };
        let b = encode_long32(&f);
        let word = |o: usize| u32::from_ne_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        assert_eq!(word(52), 4096);
        assert_eq!(word(16) as u64 * 4096, 8 << 30);
        let small = encode_long32(&SysinfoFigures {
            totalram: 256 << 20,
            ..Default::default()
        });
        assert_eq!(
            u32::from_ne_bytes([small[52], small[53], small[54], small[55]]),
            1
        );
    }
}

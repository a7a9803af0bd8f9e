//! Per-architecture syscall numbers of the calls the supervisor handles.
//!
//! A container's filter covers every ABI its profile lists (x86_64, i386
//! and x32 on an x86_64 host), and a notification reports the ABI in
//! `data.arch`: the same number means different calls on different ABIs.
//! The table is built once from libseccomp's syscall tables.

use std::collections::HashMap;

use libseccomp::{ScmpArch, ScmpSyscall};

/// `AUDIT_ARCH_X86_64` (also reported for x32 calls).
pub const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// `AUDIT_ARCH_I386`.
pub const AUDIT_ARCH_I386: u32 = 0x4000_0003;
/// `AUDIT_ARCH_AARCH64`.
pub const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
/// `__X32_SYSCALL_BIT`.
const X32_BIT: i32 = 0x4000_0000;

/// The syscalls the supervisor knows how to handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sys {
    Open,
    Openat,
    Openat2,
    Sysinfo,
    Lseek,
    Llseek,
    Chmod,
    Fchmod,
    Fchmodat,
    Fchmodat2,
    Creat,
    Mknod,
    Mknodat,
    Setxattr,
    Lsetxattr,
    Fsetxattr,
    Setxattrat,
    Mount,
    Umount,
    Umount2,
    /// Anything else that reached the supervisor.
    Other,
}

impl Sys {
    /// Every handled syscall.
    pub const ALL: [Sys; 21] = [
        Sys::Open,
        Sys::Openat,
        Sys::Openat2,
        Sys::Sysinfo,
        Sys::Lseek,
        Sys::Llseek,
        Sys::Chmod,
        Sys::Fchmod,
        Sys::Fchmodat,
        Sys::Fchmodat2,
        Sys::Creat,
        Sys::Mknod,
        Sys::Mknodat,
        Sys::Setxattr,
        Sys::Lsetxattr,
        Sys::Fsetxattr,
        Sys::Setxattrat,
        Sys::Mount,
        Sys::Umount,
        Sys::Umount2,
        Sys::Other,
    ];

    /// The syscall's name, as in seccomp profiles.
    pub fn name(self) -> &'static str {
        match self {
            Sys::Open => "open",
            Sys::Openat => "openat",
            Sys::Openat2 => "openat2",
            Sys::Sysinfo => "sysinfo",
            Sys::Lseek => "lseek",
            Sys::Llseek => "_llseek",
            Sys::Chmod => "chmod",
            Sys::Fchmod => "fchmod",
            Sys::Fchmodat => "fchmodat",
            Sys::Fchmodat2 => "fchmodat2",
            Sys::Creat => "creat",
            Sys::Mknod => "mknod",
            Sys::Mknodat => "mknodat",
            Sys::Setxattr => "setxattr",
            Sys::Lsetxattr => "lsetxattr",
            Sys::Fsetxattr => "fsetxattr",
            Sys::Setxattrat => "setxattrat",
            Sys::Mount => "mount",
            Sys::Umount => "umount",
            Sys::Umount2 => "umount2",
            Sys::Other => "other",
        }
    }

    /// Index in [`Sys::ALL`] (for counter arrays).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The number of a call added after Linux 5.1, when every
    /// architecture's table was unified (alpha aside): the same on x86_64,
    /// i386, x32 (with its bit) and aarch64. Used where the host's
    /// libseccomp is older than the call, while the runtime's may know it.
    fn unified_nr(self) -> Option<i32> {
        match self {
            Sys::Fchmodat2 => Some(452),
            Sys::Setxattrat => Some(463),
            _ => None,
        }
    }
}

/// Layout family of a call's structs (`struct sysinfo` differs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abi {
    /// 64-bit longs (x86_64, x32, aarch64).
    Long64,
    /// 32-bit longs (i386).
    Long32,
}

/// Maps `(arch, nr)` of a notification to the call it is.
#[derive(Debug, Default)]
pub struct SyscallTable {
    map: HashMap<(u32, i32), Sys>,
}

impl SyscallTable {
    /// Build the table for the host's ABIs.
    pub fn new() -> Self {
        let mut map = HashMap::new();
        let x86: &[(ScmpArch, u32)] = &[
            (ScmpArch::X8664, AUDIT_ARCH_X86_64),
            (ScmpArch::X32, AUDIT_ARCH_X86_64),
            (ScmpArch::X86, AUDIT_ARCH_I386),
        ];
        let arches: &[(ScmpArch, u32)] = if cfg!(target_arch = "x86_64") {
            // A kernel without the x32 ABI fails x32 calls with ENOSYS after
            // the filter: they must not be emulated.
            if x32_supported() {
                x86
            } else {
                &[x86[0], x86[2]]
            }
        } else if cfg!(target_arch = "aarch64") {
            &[(ScmpArch::Aarch64, AUDIT_ARCH_AARCH64)]
        } else {
            &[]
        };
        for &(arch, audit) in arches {
            for sys in Sys::ALL {
                if sys == Sys::Other {
                    continue;
                }
                let known = ScmpSyscall::from_name_by_arch(sys.name(), arch)
                    .ok()
                    .map(i32::from)
                    .filter(|nr| *nr >= 0);
                let nr = known.or_else(|| {
                    let x32_bit = if arch == ScmpArch::X32 { X32_BIT } else { 0 };
                    sys.unified_nr().map(|nr| nr | x32_bit)
                });
                if let Some(nr) = nr {
                    map.insert((audit, nr), sys);
                }
            }
        }
        SyscallTable { map }
    }

    /// Which call a notification is.
    pub fn lookup(&self, arch: u32, nr: i32) -> Sys {
        self.map.get(&(arch, nr)).copied().unwrap_or(Sys::Other)
    }
}

/// Does this kernel run x32 syscalls? (Probed with x32 `getpid`.)
pub fn x32_supported() -> bool {
    if !cfg!(target_arch = "x86_64") {
        return false;
    }
    const X32_GETPID: libc::c_long = 0x4000_0000 | 39;
    // SAFETY: getpid through the x32 ABI takes no arguments and touches no
    // memory; on a kernel without x32 it fails with ENOSYS.
    let r = unsafe { libc::syscall(X32_GETPID) };
    r == std::process::id() as libc::c_long
}

/// Struct layout family of an `AUDIT_ARCH_*`.
pub fn abi_of(arch: u32) -> Abi {
    if arch == AUDIT_ARCH_I386 {
        Abi::Long32
    } else {
        Abi::Long64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn x86_numbers() {
        let t = SyscallTable::new();
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 257), Sys::Openat);
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 2), Sys::Open);
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 99), Sys::Sysinfo);
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 437), Sys::Openat2);
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 8), Sys::Lseek);
        // x32 numbers carry __X32_SYSCALL_BIT; only where the kernel has x32.
        let x32 = if x32_supported() {
            Sys::Openat
        } else {
            Sys::Other
        };
        assert_eq!(t.lookup(AUDIT_ARCH_X86_64, 0x4000_0000 | 257), x32);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 295), Sys::Openat);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 5), Sys::Open);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 116), Sys::Sysinfo);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 140), Sys::Llseek);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 19), Sys::Lseek);
        assert_eq!(t.lookup(AUDIT_ARCH_I386, 257), Sys::Other);
        // The set-id calls, on both ABIs (i386 numbers from its own table).
        for (nr64, nr32, sys) in [
            (90, 15, Sys::Chmod),
            (91, 94, Sys::Fchmod),
            (268, 306, Sys::Fchmodat),
            (452, 452, Sys::Fchmodat2),
            (85, 8, Sys::Creat),
            (133, 14, Sys::Mknod),
            (259, 297, Sys::Mknodat),
            (188, 226, Sys::Setxattr),
            (189, 227, Sys::Lsetxattr),
            (190, 228, Sys::Fsetxattr),
            (463, 463, Sys::Setxattrat),
        ] {
            assert_eq!(t.lookup(AUDIT_ARCH_X86_64, nr64), sys, "{}", sys.name());
            assert_eq!(t.lookup(AUDIT_ARCH_I386, nr32), sys, "i386 {}", sys.name());
        }
    }
}

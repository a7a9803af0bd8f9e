//! Opens of the emulated sysctls under `/proc/sys` (see
//! [`crate::supervisor::sysctls`] for the store and
//! [`crate::emulate::sysctl`] for the table).
//!
//! An open whose path lies lexically under `/proc/sys/` and names a sysctl
//! of the table is walked as the caller would walk it; only when it lands
//! on a regular procfs file is it emulated. Reading gets the container's
//! own value (or the kernel's answer, the host's value, when it has set
//! none); writing, allowed to the container's root only (the file is mode
//! 0644 and the kernel checks nothing else), gets a memfd whose content
//! the store takes before the next open of a sysctl in the container.

use crate::emulate::sysctl::{self, Kind, Sysctl};
use crate::kernel::memfd;
use crate::kernel::resolve::{file_stat, fs_magic, lexical_components, Base, PROC_MAGIC};

use super::{walk_as_caller, Action, Ctx};

/// The emulated sysctl that the absolute path `abs` names lexically.
pub fn named(abs: &[u8]) -> Option<&'static Sysctl> {
    // Every open of the container passes here: most paths are refused
    // without splitting them.
    memchr::memmem::find(abs, b"sys")?;
    let comps = lexical_components(abs);
    if comps.len() < 3 || comps[0] != b"proc" || comps[1] != b"sys" {
        return None;
    }
    sysctl::by_path(&comps[2..].join(&b'/'))
}

/// Is the caller (host tid `pid`) the container's root: its effective uid
/// is the host uid its user namespace maps 0 to?
fn caller_is_root(pid: u32) -> bool {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return false;
    };
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|u| u.parse::<u32>().ok());
    let Ok(map) = std::fs::read_to_string(format!("/proc/{pid}/uid_map")) else {
        return false;
    };
    let root = map.lines().find_map(|l| {
        let f: Vec<u32> = l
            .split_whitespace()
            .filter_map(|x| x.parse().ok())
            .collect();
        (f.len() == 3 && f[0] == 0).then_some(f[1])
    });
    euid.is_some() && euid == root
}

/// The action for an open of `s`, or `None` to let the kernel answer.
#[allow(clippy::too_many_arguments)]
pub fn open(
    ctx: &mut Ctx<'_>,
    s: &'static Sysctl,
    base: Base,
    path: &[u8],
    absolute: bool,
    nofollow: bool,
    resolve: u64,
    flags: i32,
) -> Option<Action> {
    let pid = ctx.notif.pid;
    let f = walk_as_caller(ctx, base, path, absolute, nofollow, resolve).ok()?;
    if fs_magic(&f).ok()? != PROC_MAGIC || !file_stat(&f).ok()?.is_regular() {
        return None;
    }
    ctx.sysctls.harvest(ctx.container);
    let cloexec = flags & libc::O_CLOEXEC != 0;
    if flags & libc::O_ACCMODE != libc::O_RDONLY {
        if !caller_is_root(pid) {
            return None;
        }
        let uts = match s.kind {
            Kind::Uts { .. } => match crate::kernel::uts::namespace_of(pid) {
                Ok(ns) => Some(ns),
                Err(_) => return None,
            },
            _ => None,
        };
        return match ctx.sysctls.writer(s, uts) {
            Ok(fd) => Some(Action::InjectFd {
                fd,
                cloexec,
                file: None,
            }),
            Err(e) => {
                tracing::warn!(container = ctx.container, key = s.key, error = %e, "memfd for a sysctl write failed");
                Some(Action::Errno(e.errno().unwrap_or(libc::ENOMEM)))
            }
        };
    }
    // A UTS name reads from the caller's own namespace (the kernel).
    if matches!(s.kind, Kind::Uts { .. }) {
        return None;
    }
    let value = ctx.sysctls.value(s)?;
    match memfd::create(s.key, value.as_bytes()) {
        Ok(fd) => Some(Action::InjectFd {
            fd,
            cloexec,
            file: None,
        }),
        Err(e) => Some(Action::Errno(e.errno().unwrap_or(libc::ENOMEM))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_table_paths_under_proc_sys_are_named() {
        assert_eq!(
            named(b"/proc/sys/kernel/panic").unwrap().key,
            "kernel.panic"
        );
        assert_eq!(
            named(b"/proc/./sys//vm/../vm/overcommit_memory")
                .unwrap()
                .key,
            "vm.overcommit_memory"
        );
        assert!(named(b"/proc/sys/net/core/somaxconn").is_none());
        assert!(named(b"/tmp/proc/sys/kernel/panic").is_none());
        assert!(named(b"/proc/sys").is_none());
    }

    #[test]
    fn this_process_is_root_of_its_namespace_when_root() {
        let me = std::process::id();
        // The test runs in the host's user namespace: 0 maps to 0.
        assert_eq!(caller_is_root(me), nix::unistd::geteuid().is_root());
        assert!(!caller_is_root(u32::MAX - 1));
    }
}

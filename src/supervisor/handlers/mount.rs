//! `mount`, `umount` and `umount2`: the mounts that protect the host stay.
//!
//! A system container's root may mount and unmount in its own mount
//! namespace (the kernel checks that against its user namespace). What it
//! must not do is take away what the engine put over `/proc` and `/sys`:
//! the masks (`/dev/null` or an empty read-only tmpfs over `/proc/kcore`,
//! `/proc/keys`, `/sys/firmware`, …) and the read-only binds (`/proc/bus`,
//! `/proc/irq`, `/proc/sysrq-trigger`, …). A mount is *protected* when it
//! is mounted on a procfs or sysfs mount. Refused with `EPERM`:
//!
//! - unmounting a protected mount;
//! - moving one (`MS_MOVE`) elsewhere;
//! - remounting a protected mount, or a read-only procfs or sysfs mount,
//!   without `MS_RDONLY` (making it writable);
//! - a non-recursive bind (`MS_BIND` without `MS_REC`) of a procfs or sysfs
//!   mount that has mounts on it (the copy would show what they cover).
//!
//! A new overlay's upper directory is judged where its mounter sees it,
//! for the set-id policy (`crate::supervisor::setid::Scope::record_overlay`).
//!
//! Everything else goes on to the kernel (`Continue`), done by the caller
//! itself with its own view and privileges: the supervisor never mounts
//! for anyone. Paths are walked as the caller would walk them (its root,
//! its cwd, `proc/self` as the caller); the mount is identified by the
//! walk's `statx` mount id, looked up in the caller's own mountinfo.
//!
//! The decision is taken before the kernel runs the call: a process that
//! swaps the path in between can still win a race. The masks are a second
//! line: what they cover is also guarded by the kernel, which keeps those
//! files host root's or asks for capabilities of the host's user
//! namespace (`docs/security.md`).

use crate::kernel::arch::Sys;
use crate::kernel::mountinfo::{self, MountEntry};
use crate::kernel::procmem::{read_cstring, CString};
use crate::kernel::resolve::{mount_stat, Base};

use super::{path_arg, walk_as_caller, Action, Ctx};

/// `UMOUNT_NOFOLLOW`.
const UMOUNT_NOFOLLOW: u64 = 8;

pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    let refused = match ctx.sys {
        Sys::Umount | Sys::Umount2 => umount(ctx),
        Sys::Mount => mount(ctx),
        _ => false,
    };
    if refused {
        ctx.counters
            .mounts_refused
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Action::Errno(libc::EPERM)
    } else {
        Action::Continue
    }
}

/// The caller's path argument at `addr`, if readable and non-empty.
fn nonempty_path(ctx: &Ctx<'_>, addr: u64) -> Option<Vec<u8>> {
    path_arg(ctx, addr).filter(|p| !p.is_empty())
}

/// Where a path argument starts: the caller's root or cwd.
fn base_of(path: &[u8]) -> Base {
    if path[0] == b'/' {
        Base::Root
    } else {
        Base::Cwd
    }
}

/// The caller's mount table and the entry of the mount `path` reaches.
fn reached(ctx: &Ctx<'_>, path: &[u8], nofollow: bool) -> Option<(Vec<MountEntry>, usize)> {
    let pid = ctx.notif.pid;
    let fd = walk_as_caller(ctx, base_of(path), path, path[0] == b'/', nofollow, 0).ok()?;
    let id = mount_stat(&fd).ok()?.mnt_id;
    let text = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).ok()?;
    let table = mountinfo::parse(&text);
    let at = table.iter().position(|m| u64::from(m.mount_id) == id)?;
    Some((table, at))
}

fn is_proc_or_sys(m: &MountEntry) -> bool {
    matches!(m.fs_type.as_str(), "proc" | "sysfs")
}

/// Mounted on a procfs or sysfs mount: a mask or a read-only bind.
fn protected(table: &[MountEntry], m: &MountEntry) -> bool {
    m.parent_id != m.mount_id
        && table
            .iter()
            .any(|p| p.mount_id == m.parent_id && is_proc_or_sys(p))
}

fn read_only(m: &MountEntry) -> bool {
    m.mount_options.split(',').any(|o| o == "ro")
}

fn umount(ctx: &Ctx<'_>) -> bool {
    let a = ctx.notif.args;
    let flags = if ctx.sys == Sys::Umount2 { a[1] } else { 0 };
    let Some(path) = nonempty_path(ctx, a[0]) else {
        return false;
    };
    let Some((table, at)) = reached(ctx, &path, flags & UMOUNT_NOFOLLOW != 0) else {
        return false;
    };
    let refuse = protected(&table, &table[at]);
    if refuse {
        tracing::info!(container = ctx.container, pid = ctx.notif.pid, mount_point = %table[at].mount_point.display(), "unmount of a protected mount refused");
    }
    refuse
}

fn mount(ctx: &Ctx<'_>) -> bool {
    let a = ctx.notif.args;
    let flags = a[3];
    let ms = |f: libc::c_ulong| flags & f != 0;
    let (what, addr) = if ms(libc::MS_REMOUNT) {
        ("remount", a[1])
    } else if ms(libc::MS_MOVE) {
        ("move", a[0])
    } else if ms(libc::MS_BIND) && !ms(libc::MS_REC) {
        ("non-recursive bind", a[0])
    } else {
        if !ms(libc::MS_BIND) {
            new_mount(ctx);
        }
        return false;
    };
    let Some(path) = nonempty_path(ctx, addr) else {
        return false;
    };
    let Some((table, at)) = reached(ctx, &path, false) else {
        return false;
    };
    let m = &table[at];
    let refuse = match what {
        "remount" => {
            !ms(libc::MS_RDONLY) && (protected(&table, m) || (is_proc_or_sys(m) && read_only(m)))
        }
        "move" => protected(&table, m),
        _ => is_proc_or_sys(m) && table.iter().any(|c| c.parent_id == m.mount_id),
    };
    if refuse {
        tracing::info!(container = ctx.container, pid = ctx.notif.pid, operation = what, mount_point = %m.mount_point.display(), "mount change of a protected mount refused");
    }
    refuse
}

/// A new file system: for an overlay, judge its upper directory where the
/// mounter sees it (the set-id policy of files later made through it).
fn new_mount(ctx: &Ctx<'_>) {
    let a = ctx.notif.args;
    let pid = ctx.notif.pid;
    match read_cstring(pid, a[2], 64) {
        Ok(CString::Ok(t)) if t == b"overlay" => {}
        _ => return,
    }
    // Mount options are at most a page.
    let Ok(CString::Ok(data)) = read_cstring(pid, a[4], 4095) else {
        return;
    };
    let Some(upper) = crate::supervisor::setid::overlay_upperdir(&data).filter(|u| !u.is_empty())
    else {
        return;
    };
    // Not there: the kernel fails the mount anyway.
    if let Ok(fd) = walk_as_caller(ctx, base_of(&upper), &upper, upper[0] == b'/', false, 0) {
        ctx.setid.record_overlay(ctx.walker, pid, &upper, &fd);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "\
84 83 0:44 / /proc rw,nosuid,nodev,noexec,relatime - proc proc rw
56 84 0:44 /bus /proc/bus ro,nosuid,nodev,noexec,relatime - proc proc rw
60 84 0:6 /null /proc/keys rw,relatime - devtmpfs devtmpfs rw
85 83 0:45 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro
86 85 0:46 / /sys/firmware ro,relatime - tmpfs tmpfs ro
90 83 0:50 / /tmp rw,relatime - tmpfs tmpfs rw
91 90 0:51 / /tmp/x rw,relatime - tmpfs tmpfs rw
";

    #[test]
    fn masks_and_read_only_binds_are_protected_others_not() {
        let t = mountinfo::parse(TABLE);
        let by = |p: &str| {
            t.iter()
                .find(|m| m.mount_point.to_str() == Some(p))
                .unwrap()
        };
        for p in ["/proc/bus", "/proc/keys", "/sys/firmware"] {
            assert!(protected(&t, by(p)), "{p}");
        }
        for p in ["/proc", "/sys", "/tmp", "/tmp/x"] {
            assert!(!protected(&t, by(p)), "{p}");
        }
        assert!(read_only(by("/sys")) && !read_only(by("/proc")));
    }
}

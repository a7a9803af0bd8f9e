//! Handlers of trapped syscalls: each decides what a container process gets
//! for one call. They never block on another container and never panic;
//! anything unexpected becomes "let the kernel answer" (`Continue`), which
//! gives the caller exactly what it would have had without the filter —
//! except in the set-id policy ([`setid`]), where what cannot be judged is
//! refused (`EPERM`).

pub mod lseek;
pub mod mount;
pub mod open;
pub mod setid;
pub mod sysctl;
pub mod sysinfo;

use std::borrow::Cow;
use std::os::fd::OwnedFd;

use crate::emulate::EmulatedFile;
use crate::kernel::arch::Sys;
use crate::kernel::notify::{Notification, NotifyFd};
use crate::kernel::proc::ns_ids;
use crate::kernel::procmem::{read_cstring, CString};
use crate::kernel::resolve::{
    file_id, mentions_self, open_base, rewrite_self, Base, Walker, PROC_MAGIC,
};
use crate::kernel::KernelError;
use crate::supervisor::files::FileTable;
use crate::supervisor::fileset::FileSet;
use crate::supervisor::nested::Sources;
use crate::supervisor::ratelimit::RateLimit;
use crate::supervisor::setid::Scope;
use crate::supervisor::stats::ContainerCounters;
use crate::supervisor::sysctls::SysctlStore;

/// Everything a handler may use for one notification.
pub struct Ctx<'a> {
    /// The container's id (for logs).
    pub container: &'a str,
    pub nfd: &'a NotifyFd,
    pub notif: &'a Notification,
    pub sys: Sys,
    pub files: &'a FileTable,
    /// What the container sees (per caller: an inner container's cgroup
    /// wins); none when its cgroup or start time could not be read
    /// (nothing is emulated then, the set-id policy still holds).
    pub sources: &'a mut Sources,
    pub counters: &'a ContainerCounters,
    /// Reused render buffer.
    pub buf: &'a mut Vec<u8>,
    /// Memfds injected into this container.
    pub injected: &'a mut FileSet,
    /// Walks paths inside the caller's root (this worker thread's).
    pub walker: &'a Walker,
    /// Emulated files already identified in this container, by
    /// `(device, inode)` of the caller's procfs or sysfs.
    pub verified: &'a mut FileSet,
    /// The container's scope for the set-id policy.
    pub setid: &'a Scope,
    /// Rate limit of the set-id refusal log lines.
    pub log: &'a mut RateLimit,
    /// The container's own values of the emulated sysctls.
    pub sysctls: &'a mut SysctlStore,
}

/// A handler's decision.
#[derive(Debug)]
pub enum Action {
    /// Let the kernel run the call.
    Continue,
    /// Fail with this errno.
    Errno(i32),
    /// Succeed with this value (side effects already done by the handler).
    Value(i64),
    /// Install this fd in the caller as the call's result.
    InjectFd {
        fd: OwnedFd,
        cloexec: bool,
        /// The emulated file served (none for a sysctl).
        file: Option<EmulatedFile>,
    },
}

/// Decide what to do with one notification.
pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    match ctx.sys {
        Sys::Open | Sys::Openat | Sys::Openat2 => open::handle(ctx),
        Sys::Sysinfo => sysinfo::handle(ctx),
        Sys::Lseek | Sys::Llseek => lseek::handle(ctx),
        Sys::Chmod
        | Sys::Fchmod
        | Sys::Fchmodat
        | Sys::Fchmodat2
        | Sys::Creat
        | Sys::Mknod
        | Sys::Mknodat
        | Sys::Setxattr
        | Sys::Lsetxattr
        | Sys::Fsetxattr
        | Sys::Setxattrat => setid::handle(ctx),
        Sys::Mount | Sys::Umount | Sys::Umount2 => mount::handle(ctx),
        Sys::Other => Action::Continue,
    }
}

/// `PATH_MAX` less the NUL: the longest path argument the kernel takes.
pub const PATH_MAX: usize = 4095;

/// The caller's path argument at `addr`; `None` when the kernel fails the
/// call on it (`EFAULT`, `ENAMETOOLONG`).
pub fn path_arg(ctx: &Ctx<'_>, addr: u64) -> Option<Vec<u8>> {
    match read_cstring(ctx.notif.pid, addr, PATH_MAX) {
        Ok(CString::Ok(p)) => Some(p),
        _ => None,
    }
}

/// The file `path` names for the caller, walked as it would walk it
/// (from `base`, `proc/self` as the caller: see [`walkable_path`]),
/// opened `O_PATH`.
pub fn walk_as_caller(
    ctx: &Ctx<'_>,
    base: Base,
    path: &[u8],
    absolute: bool,
    nofollow: bool,
    resolve: u64,
) -> Result<OwnedFd, KernelError> {
    let pid = ctx.notif.pid;
    let rewritten = walkable_path(pid, base, path, absolute, resolve)?;
    ctx.walker.open(pid, base, &rewritten, nofollow, resolve)
}

/// `path` as the [`Walker`] must walk it for process `pid`: `proc/self`
/// and `proc/thread-self` rewritten to the process's ids in its own pid
/// namespace (during the walk they would name the supervisor, which has
/// no pid there). `absolute` paths start at the root; a relative
/// `self/...` is rewritten only when `base` is a procfs root.
pub fn walkable_path<'p>(
    pid: u32,
    base: Base,
    path: &'p [u8],
    absolute: bool,
    resolve: u64,
) -> Result<Cow<'p, [u8]>, KernelError> {
    // A caller that refuses symlinks gets the kernel's ELOOP at `self`,
    // and so does the walk of the path as it is.
    let no_symlinks =
        crate::kernel::resolve::RESOLVE_NO_SYMLINKS | crate::kernel::resolve::RESOLVE_NO_MAGICLINKS;
    if !mentions_self(path) || resolve & no_symlinks != 0 {
        return Ok(Cow::Borrowed(path));
    }
    let first = path.split(|&b| b == b'/').next().unwrap_or_default();
    let starts_at_proc_root = !absolute && (first == b"self" || first == b"thread-self") && {
        let id = file_id(&open_base(pid, base)?)?;
        id.fs_magic == PROC_MAGIC && id.ino == 1
    };
    let ids = ns_ids(pid)?;
    Ok(
        match rewrite_self(path, starts_at_proc_root, ids.tgid, ids.tid) {
            Some(p) => Cow::Owned(p),
            None => Cow::Borrowed(path),
        },
    )
}

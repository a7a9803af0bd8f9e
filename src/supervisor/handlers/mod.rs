//! Handlers of trapped syscalls: each decides what a container process gets
//! for one call. They never block on another container and never panic;
//! anything unexpected becomes "let the kernel answer" (`Continue`), which
//! gives the caller exactly what it would have had without the filter.

pub mod lseek;
pub mod open;
pub mod sysinfo;

use std::os::fd::OwnedFd;

use crate::emulate::{ContainerSource, EmulatedFile};
use crate::kernel::arch::Sys;
use crate::kernel::notify::{Notification, NotifyFd};
use crate::kernel::resolve::Walker;
use crate::supervisor::files::FileTable;
use crate::supervisor::fileset::FileSet;
use crate::supervisor::stats::ContainerCounters;

/// Everything a handler may use for one notification.
pub struct Ctx<'a> {
    pub nfd: &'a NotifyFd,
    pub notif: &'a Notification,
    pub sys: Sys,
    pub files: &'a FileTable,
    pub source: &'a ContainerSource,
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
        file: EmulatedFile,
    },
}

/// Decide what to do with one notification.
pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    match ctx.sys {
        Sys::Open | Sys::Openat | Sys::Openat2 => open::handle(ctx),
        Sys::Sysinfo => sysinfo::handle(ctx),
        Sys::Lseek | Sys::Llseek => lseek::handle(ctx),
        Sys::Other => Action::Continue,
    }
}

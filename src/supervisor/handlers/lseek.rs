//! `lseek(fd, 0, SEEK_SET)` (and i386 `_llseek`): a reader rewinding one of
//! our emulated files gets fresh content, as procfs would give it.
//!
//! An emulated file is a memfd snapshot; procps `top`, `vmstat` and
//! `free -s` keep it open and rewind before each refresh. When a rewind
//! lands on one of our memfds, its content is re-rendered before the
//! kernel performs the seek. The fd is identified through an `O_PATH`
//! handle that pins the inode, and is written only if it really is a memfd
//! this container was given (a regular, unlinked file whose device and inode
//! the supervisor recorded when it injected it), and it is reopened
//! non-blocking: a process swapping its fds, or offering a FIFO or a file
//! of its own with the right name, cannot make the supervisor write into
//! any other file or wait on it.

use std::os::fd::AsFd;

use crate::kernel::arch::Sys;
use crate::kernel::fs::reopen_for_write;
use crate::kernel::memfd;
use crate::kernel::proc::link_target;
use crate::kernel::resolve::{file_stat, open_base, Base};

use super::{Action, Ctx};

pub fn handle(ctx: &mut Ctx<'_>) -> Action {
    let a = ctx.notif.args;
    let (fd, rewinds) = match ctx.sys {
        Sys::Lseek => (
            a[0] as u32 as i32,
            a[1] == 0 && a[2] as u32 == libc::SEEK_SET as u32,
        ),
        // _llseek(fd, offset_high, offset_low, result, whence)
        Sys::Llseek => (
            a[0] as u32 as i32,
            a[1] as u32 == 0 && a[2] as u32 == 0 && a[4] as u32 == libc::SEEK_SET as u32,
        ),
        _ => return Action::Continue,
    };
    if rewinds && fd >= 0 {
        refresh(ctx, fd);
    }
    Action::Continue
}

fn refresh(ctx: &mut Ctx<'_>, fd: i32) {
    if !ctx.sources.has_outer() {
        return;
    }
    let pid = ctx.notif.pid;
    let Ok(link) = link_target(pid, &format!("fd/{fd}")) else {
        return;
    };
    if memfd::kind_of_link(&link).is_none() {
        return;
    }
    // Pin the inode, then check that it is a memfd this container was given.
    let Ok(pinned) = open_base(pid, Base::Fd(fd)) else {
        return;
    };
    let Ok(st) = file_stat(&pinned) else {
        return;
    };
    if !st.is_regular() || st.nlink != 0 {
        return;
    }
    let Some(file) = ctx.injected.get(st.dev, st.ino) else {
        return;
    };
    // The fd we pinned must still be the caller's (its call still pending).
    if !ctx.nfd.id_valid(ctx.notif.id) {
        return;
    }
    let Ok(writable) = reopen_for_write(&pinned) else {
        return;
    };
    let Some(source) = ctx.sources.for_caller(pid) else {
        return;
    };
    ctx.buf.clear();
    if source.render(file, ctx.buf).is_err() {
        return;
    }
    if memfd::replace(writable.as_fd(), ctx.buf).is_ok() {
        ctx.counters
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

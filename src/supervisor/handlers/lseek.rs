//! `lseek(fd, 0, SEEK_SET)` (and i386 `_llseek`): a reader rewinding one of
//! our emulated files gets fresh content, as procfs would give it.
//!
//! An emulated file is a memfd snapshot; procps `top`, `vmstat` and
//! `free -s` keep it open and rewind before each refresh. When a rewind
//! lands on one of our memfds, its content is re-rendered before the
//! kernel performs the seek. The fd is identified through an `O_PATH`
//! handle that pins the inode, and is written only if it really is a memfd
//! of ours (tmpfs, our name): a process swapping its fds cannot make the
//! supervisor write into any other file.

use std::os::fd::{AsFd, AsRawFd};

use crate::emulate::EmulatedFile;
use crate::kernel::arch::Sys;
use crate::kernel::fs::reopen_for_write;
use crate::kernel::memfd;
use crate::kernel::proc::link_target;
use crate::kernel::resolve::{file_id, open_base, Base, TMPFS_MAGIC};

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
    let pid = ctx.notif.pid;
    let Ok(link) = link_target(pid, &format!("fd/{fd}")) else {
        return;
    };
    let Some(file) = memfd::kind_of_link(&link).and_then(EmulatedFile::from_name) else {
        return;
    };
    // Pin the inode, then check it is what the link said.
    let Ok(pinned) = open_base(pid, Base::Fd(fd)) else {
        return;
    };
    let Ok(id) = file_id(&pinned) else {
        return;
    };
    if id.fs_magic != TMPFS_MAGIC {
        return;
    }
    let Ok(again) = std::fs::read_link(format!("/proc/self/fd/{}", pinned.as_raw_fd())) else {
        return;
    };
    if memfd::kind_of_link(again.as_os_str().as_encoded_bytes()) != Some(file.name()) {
        return;
    }
    let Ok(writable) = reopen_for_write(&pinned) else {
        return;
    };
    ctx.buf.clear();
    if ctx.source.render(file, ctx.buf).is_err() {
        return;
    }
    if memfd::replace(writable.as_fd(), ctx.buf).is_ok() {
        ctx.counters
            .refreshes
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

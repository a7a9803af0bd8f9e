//! The seccomp user-notification fd: receive, answer, inject fds.
//!
//! Raw ioctls from `libc` (the libseccomp crate hides `ENOENT` from a dead
//! target as `ECANCELED`, and we need the distinction). `NOTIF_RECV` blocks
//! even on a non-blocking fd, so callers must `poll` the fd with a zero
//! timeout before each [`NotifyFd::recv`].

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use super::inflight::InflightRecord;
use super::{KernelError, Result};

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (Linux 6.6); Debian's headers lack it.
const SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP: u64 = 1;

/// Was the last failed call interrupted by a signal (the worker's wake
/// signal)? Such ioctls changed nothing and are simply repeated.
fn interrupted() -> bool {
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)
}

/// One trapped syscall, as the kernel reported it.
#[derive(Debug, Clone, Copy)]
pub struct Notification {
    /// Cookie to answer with.
    pub id: u64,
    /// Host tid of the trapped thread.
    pub pid: u32,
    /// Syscall number (per `arch`).
    pub nr: i32,
    /// `AUDIT_ARCH_*` of the trapped call.
    pub arch: u32,
    /// The six raw arguments.
    pub args: [u64; 6],
}

impl From<libc::seccomp_notif> for Notification {
    fn from(n: libc::seccomp_notif) -> Self {
        Notification {
            id: n.id,
            pid: n.pid,
            nr: n.data.nr,
            arch: n.data.arch,
            args: n.data.args,
        }
    }
}

/// What to answer a notification with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// Let the kernel run the syscall as if nothing trapped it.
    Continue,
    /// Fail the syscall with this (positive) errno.
    Errno(i32),
    /// Succeed with this return value.
    Value(i64),
}

/// Outcome of polling the fd without blocking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// A notification is waiting.
    Pending,
    /// Nothing to do now.
    Idle,
    /// No process uses the filter any more: the fd can be dropped.
    Gone,
}

/// A seccomp listener fd received from a container runtime.
#[derive(Debug)]
pub struct NotifyFd {
    fd: OwnedFd,
    /// Where each notification is received (see [`InflightRecord`]).
    record: Option<InflightRecord>,
}

impl AsFd for NotifyFd {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for NotifyFd {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

impl NotifyFd {
    /// Take ownership of `fd` after checking that it is a seccomp listener.
    pub fn new(fd: OwnedFd) -> Result<Self> {
        let link =
            std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).map_err(|e| {
                KernelError::Sys {
                    op: "readlink listener fd",
                    source: e,
                }
            })?;
        if link.as_os_str() != "anon_inode:seccomp notify" {
            return Err(KernelError::Invalid(format!(
                "fd is not a seccomp listener ({})",
                link.display()
            )));
        }
        Ok(NotifyFd { fd, record: None })
    }

    /// Receive into `record` from now on (see [`InflightRecord`]).
    pub fn attach_record(&mut self, record: InflightRecord) {
        self.record = Some(record);
    }

    /// The in-flight record's fd, for the fd holder.
    pub fn record_fd(&self) -> Option<BorrowedFd<'_>> {
        self.record.as_ref().map(AsFd::as_fd)
    }

    /// A notification that an earlier supervisor received into the record
    /// and never answered: still waiting for its answer, so it is served
    /// now. `None` when there is none.
    pub fn take_unanswered(&mut self) -> Option<Notification> {
        let n = self.record.as_ref()?.last()?;
        if !self.id_valid(n.id) {
            return None;
        }
        Some(Notification::from(n))
    }

    /// A second fd for the same listener (to watch it for hang-up).
    pub fn try_clone_fd(&self) -> std::io::Result<OwnedFd> {
        self.fd.try_clone()
    }

    /// Ask the kernel to wake the target on the CPU that answers
    /// (`SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`). Returns false where the kernel
    /// does not have it.
    pub fn set_sync_wake_up(&self) -> bool {
        // SAFETY: the ioctl takes the flag by value; the fd is a valid listener.
        let r = unsafe {
            libc::ioctl(
                self.fd.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS,
                SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP,
            )
        };
        r == 0
    }

    /// Poll the fd with a zero timeout.
    pub fn readiness(&self) -> Readiness {
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let r = unsafe { libc::poll(&mut pfd, 1, 0) };
        if r <= 0 {
            return Readiness::Idle;
        }
        if pfd.revents & libc::POLLIN != 0 {
            Readiness::Pending
        } else if pfd.revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 {
            Readiness::Gone
        } else {
            Readiness::Idle
        }
    }

    /// Receive one notification. Call only after [`NotifyFd::readiness`]
    /// said `Pending`: the ioctl blocks otherwise. `ENOENT` means the target
    /// went away between the poll and the receive.
    pub fn recv(&mut self) -> Result<Notification> {
        // SAFETY: seccomp_notif is plain data; the kernel demands it zeroed.
        let mut local: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        let target: *mut libc::seccomp_notif = match self.record.as_mut() {
            Some(r) => r.slot(),
            None => &mut local,
        };
        // SAFETY: target points to a zeroed, writable seccomp_notif (ours
        // on the stack, or the record's mapping, which lives as long as
        // self); the kernel writes it during the call only.
        let r = unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, target) };
        if r != 0 {
            return Err(KernelError::last("SECCOMP_IOCTL_NOTIF_RECV"));
        }
        // SAFETY: the kernel filled *target; plain data.
        Ok(Notification::from(unsafe { std::ptr::read(target) }))
    }

    /// Is the notification `id` still pending (its target alive and waiting)?
    pub fn id_valid(&self, id: u64) -> bool {
        let mut id = id;
        loop {
            // SAFETY: the ioctl reads one u64 through the pointer.
            let r = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                    &mut id,
                )
            };
            if r == 0 {
                return true;
            }
            if !interrupted() {
                return false;
            }
        }
    }

    /// Answer notification `id`. `ENOENT` means the target is gone.
    pub fn send(&self, id: u64, reply: Reply) -> Result<()> {
        let (val, error, flags) = match reply {
            Reply::Continue => (0, 0, libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32),
            Reply::Errno(e) => (0, -e.abs(), 0),
            Reply::Value(v) => (v, 0, 0),
        };
        let mut resp = libc::seccomp_notif_resp {
            id,
            val,
            error,
            flags,
        };
        loop {
            // SAFETY: the pointer is to a valid seccomp_notif_resp.
            let r = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_SEND,
                    &mut resp,
                )
            };
            if r == 0 {
                return Ok(());
            }
            // Interrupted before the answer was taken: answer again.
            if !interrupted() {
                return Err(KernelError::last("SECCOMP_IOCTL_NOTIF_SEND"));
            }
        }
    }

    /// Install `src` in the target as the result of its syscall
    /// (`SECCOMP_ADDFD_FLAG_SEND`): this both adds the fd and answers `id`
    /// with its number. `cloexec` sets `O_CLOEXEC` on the new fd.
    ///
    /// Every catchable signal is blocked for the ioctl. With
    /// `SECCOMP_ADDFD_FLAG_SEND` the kernel marks the notification replied
    /// *before* it waits for the target to take the fd; a signal that
    /// interrupts that wait withdraws the fd but leaves the reply marked,
    /// so the target's syscall returns 0 with no fd (an `open` "returns"
    /// fd 0) and the call can never be answered again (`EINPROGRESS`).
    /// The worker's wake signal must therefore never land inside it.
    pub fn add_fd_and_send(&self, id: u64, src: BorrowedFd<'_>, cloexec: bool) -> Result<i32> {
        let _blocked = SignalsBlocked::new();
        let mut addfd = libc::seccomp_notif_addfd {
            id,
            flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
            srcfd: src.as_raw_fd() as u32,
            newfd: 0,
            newfd_flags: if cloexec { libc::O_CLOEXEC as u32 } else { 0 },
        };
        loop {
            // SAFETY: the pointer is to a valid seccomp_notif_addfd; srcfd is
            // a valid fd borrowed for the duration of the call.
            let r = unsafe {
                libc::ioctl(
                    self.fd.as_raw_fd(),
                    libc::SECCOMP_IOCTL_NOTIF_ADDFD,
                    &mut addfd,
                )
            };
            if r >= 0 {
                return Ok(r);
            }
            // EINTR (only from a stop, e.g. the freezer, as signals are
            // blocked): the kernel withdrew the request or reports the
            // result if the target had already taken it: ask again.
            if !interrupted() {
                return Err(KernelError::last("SECCOMP_IOCTL_NOTIF_ADDFD"));
            }
        }
    }
}

/// Every catchable signal blocked on this thread until dropped (the old
/// mask is restored then).
struct SignalsBlocked {
    old: libc::sigset_t,
}

impl SignalsBlocked {
    fn new() -> Self {
        // SAFETY: sigfillset and pthread_sigmask write only to the two
        // local sigset_t values, which are valid and initialised (zeroed,
        // then filled / written by the kernel). SIGKILL and SIGSTOP are
        // ignored by the mask, as always.
        unsafe {
            let mut all: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigfillset(&mut all);
            libc::pthread_sigmask(libc::SIG_BLOCK, &all, &mut old);
            SignalsBlocked { old }
        }
    }
}

impl Drop for SignalsBlocked {
    fn drop(&mut self) {
        // SAFETY: restores the mask saved in `new` on the same thread (the
        // guard is a local, never sent); a pending wake signal is delivered
        // now and its handler does nothing.
        unsafe {
            libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut());
        }
    }
}

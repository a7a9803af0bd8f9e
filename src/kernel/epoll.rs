//! A level-triggered epoll set (mio only offers edge-triggered ones).
//!
//! The worker loops need level triggering: `NOTIF_RECV` blocks when nothing
//! is pending, so with an edge-triggered set every receive would need a
//! zero-timeout poll first. With a level-triggered set, one `epoll_wait`
//! reports each fd that has a notification waiting, and the cost does not
//! grow with the number of idle fds (as `poll(2)`'s does).

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// An epoll instance.
#[derive(Debug)]
pub struct Epoll {
    fd: OwnedFd,
}

/// One ready fd: its token and what is ready.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    pub token: u64,
    pub readable: bool,
    pub hangup: bool,
}

impl Epoll {
    /// A new, empty set.
    pub fn new() -> io::Result<Self> {
        // SAFETY: plain syscall, no pointers.
        let raw = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epoll_create1 returned a fresh fd.
        Ok(Epoll {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Watch `fd` for input (level-triggered), reported with `token`.
    pub fn add(&self, fd: BorrowedFd<'_>, token: u64) -> io::Result<()> {
        let mut ev = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP) as u32,
            u64: token,
        };
        // SAFETY: ev is a valid epoll_event; both fds are valid.
        if unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_ADD,
                fd.as_raw_fd(),
                &mut ev,
            )
        } != 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Stop watching `fd`.
    pub fn remove(&self, fd: BorrowedFd<'_>) {
        // SAFETY: a NULL event is allowed for EPOLL_CTL_DEL since 2.6.9.
        unsafe {
            libc::epoll_ctl(
                self.fd.as_raw_fd(),
                libc::EPOLL_CTL_DEL,
                fd.as_raw_fd(),
                std::ptr::null_mut(),
            );
        }
    }

    /// Wait for ready fds (forever if `timeout_ms` is -1) into `out`.
    pub fn wait(
        &self,
        buf: &mut Vec<libc::epoll_event>,
        out: &mut Vec<Ready>,
        timeout_ms: i32,
    ) -> io::Result<()> {
        out.clear();
        if buf.capacity() == 0 {
            buf.reserve(64);
        }
        // SAFETY: the kernel writes at most `capacity` events into buf's
        // spare capacity; we then set the length to what it wrote.
        let n = unsafe {
            libc::epoll_wait(
                self.fd.as_raw_fd(),
                buf.as_mut_ptr(),
                buf.capacity().min(i32::MAX as usize) as i32,
                timeout_ms,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the first n events were initialised by epoll_wait.
        unsafe { buf.set_len(n as usize) };
        for ev in buf.iter() {
            let events = ev.events;
            out.push(Ready {
                token: ev.u64,
                readable: events & libc::EPOLLIN as u32 != 0,
                hangup: events & (libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn level_triggered_reports_until_drained() {
        let ep = Epoll::new().unwrap();
        let efd = nix::sys::eventfd::EventFd::new().unwrap();
        ep.add(efd.as_fd(), 7).unwrap();
        efd.write(1).unwrap();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            ep.wait(&mut buf, &mut out, 0).unwrap();
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].token, 7);
            assert!(out[0].readable);
        }
        efd.read().unwrap();
        ep.wait(&mut buf, &mut out, 0).unwrap();
        assert!(out.is_empty());
        ep.remove(efd.as_fd());
    }
}

//! The in-flight record of a listener: a one-page memfd, mapped shared,
//! into which the kernel writes each notification as the supervisor
//! receives it.
//!
//! The kernel hands a notification out once: if the supervisor dies after
//! receiving one and before answering it (SIGKILL, a crash), nobody could
//! ever answer it and the trapped thread would wait forever. The record
//! closes that gap. `NOTIF_RECV` writes the notification straight into the
//! mapped page (no window between receiving and recording), and the fd
//! holder keeps the memfd with the listener. A new supervisor reads the
//! record back; if the kernel still says the notification is waiting for
//! its answer (`NOTIF_ID_VALID`), it is served as if just received (the
//! trapped thread, still blocked, has not changed its arguments). Nothing
//! is written after the answer: an answered notification is simply no
//! longer valid.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{KernelError, Result};

/// Bytes mapped (one page; a `seccomp_notif` is 80).
const LEN: usize = 4096;

/// A mapped in-flight record.
#[derive(Debug)]
pub struct InflightRecord {
    fd: OwnedFd,
    ptr: *mut libc::seccomp_notif,
}

// SAFETY: the mapping is owned by this value alone (no copies of `ptr` are
// handed out beyond a borrow of `self`), so moving it to another thread
// moves sole access with it.
unsafe impl Send for InflightRecord {}

impl InflightRecord {
    /// A new, empty record.
    pub fn new() -> Result<Self> {
        // SAFETY: a valid C string and flags.
        let raw = unsafe { libc::memfd_create(c"syscont-inflight".as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(KernelError::last("memfd_create"));
        }
        // SAFETY: memfd_create returned a new fd nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: ftruncate on the fd we own.
        if unsafe { libc::ftruncate(fd.as_raw_fd(), LEN as libc::off_t) } != 0 {
            return Err(KernelError::last("ftruncate in-flight record"));
        }
        Self::map(fd)
    }

    /// The record kept in `fd` (from the fd holder). Refused unless it is
    /// a memfd of the right size.
    pub fn from_fd(fd: OwnedFd) -> Result<Self> {
        // SAFETY: a zeroed stat is a valid out-parameter; fd is ours.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat on an fd we own, into a valid out-parameter.
        if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
            return Err(KernelError::last("fstat in-flight record"));
        }
        if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_size != LEN as i64 {
            return Err(KernelError::Invalid("not an in-flight record".into()));
        }
        Self::map(fd)
    }

    fn map(fd: OwnedFd) -> Result<Self> {
        // SAFETY: a shared read-write mapping of LEN bytes of a file of
        // LEN bytes that we own; the result is checked.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(KernelError::last("mmap in-flight record"));
        }
        Ok(InflightRecord { fd, ptr: p.cast() })
    }

    /// Where `NOTIF_RECV` must write: zeroed first, as the kernel demands.
    /// Valid until `self` is dropped; only the owner's thread uses it.
    pub fn slot(&mut self) -> *mut libc::seccomp_notif {
        // SAFETY: ptr points to LEN >= size_of::<seccomp_notif>() mapped,
        // writable bytes owned by self; we hold &mut self.
        unsafe { std::ptr::write_bytes(self.ptr, 0, 1) };
        self.ptr
    }

    /// The last notification written, if any (an all-zero record is none).
    pub fn last(&self) -> Option<libc::seccomp_notif> {
        // SAFETY: ptr is a valid, aligned (page) mapping of at least one
        // seccomp_notif, plain data for which every bit pattern is valid.
        let n = unsafe { std::ptr::read(self.ptr) };
        let empty = n.id == 0 && n.pid == 0 && n.data.nr == 0 && n.data.arch == 0;
        (!empty).then_some(n)
    }
}

impl AsFd for InflightRecord {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl Drop for InflightRecord {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the mapping made in `map`, which nothing
        // uses after this.
        unsafe {
            libc::munmap(self.ptr.cast(), LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_through_another_mapping() {
        let mut a = InflightRecord::new().unwrap();
        assert!(a.last().is_none());
        let slot = a.slot();
        // SAFETY: slot is valid for one seccomp_notif while `a` lives.
        unsafe {
            (*slot).id = 42;
            (*slot).pid = 7;
            (*slot).data.nr = 257;
        }
        let copy = a.fd.try_clone().unwrap();
        let b = InflightRecord::from_fd(copy).unwrap();
        let n = b.last().unwrap();
        assert_eq!((n.id, n.pid, n.data.nr), (42, 7, 257));
        // slot() clears.
        a.slot();
        assert!(b.last().is_none());
        // Something else is refused.
        let f: OwnedFd = std::fs::File::open("/proc/self/stat").unwrap().into();
        assert!(InflightRecord::from_fd(f).is_err());
    }
}

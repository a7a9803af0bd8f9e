//! Anonymous in-memory files (memfds) that carry an emulated file's bytes
//! into a container, and their refresh when a reader rewinds.

use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{KernelError, Result};

/// Prefix of the name of every memfd the supervisor hands out; the lseek
/// handler recognises its own files by it (`/memfd:syscont:<kind> (deleted)`).
pub const NAME_PREFIX: &str = "syscont:";

fn write_all_at(fd: BorrowedFd<'_>, data: &[u8]) -> Result<()> {
    let mut off = 0usize;
    while off < data.len() {
        // SAFETY: the buffer is valid for `len - off` bytes; fd is borrowed.
        let r = unsafe {
            libc::pwrite(
                fd.as_raw_fd(),
                data[off..].as_ptr().cast(),
                data.len() - off,
                off as libc::off_t,
            )
        };
        if r < 0 {
            return Err(KernelError::last("pwrite memfd"));
        }
        if r == 0 {
            return Err(KernelError::Invalid("pwrite memfd wrote nothing".into()));
        }
        off += r as usize;
    }
    Ok(())
}

/// Create a memfd named `syscont:<kind>` holding `data`, offset 0, mode 0444.
pub fn create(kind: &str, data: &[u8]) -> Result<OwnedFd> {
    let name = CString::new(format!("{NAME_PREFIX}{kind}"))
        .map_err(|_| KernelError::Invalid("memfd name contains NUL".into()))?;
    // SAFETY: name is a valid C string; flags are valid.
    let raw = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if raw < 0 {
        return Err(KernelError::last("memfd_create"));
    }
    // SAFETY: memfd_create returned a new fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    write_all_at(std::os::fd::AsFd::as_fd(&fd), data)?;
    // A procfs file reads as 0444; say the same (root in the container can
    // still write to its own copy: that changes nothing for anyone else).
    // SAFETY: plain fchmod on an fd we own.
    unsafe { libc::fchmod(fd.as_raw_fd(), 0o444) };
    Ok(fd)
}

/// Replace the content of an open memfd (opened for writing) with `data`.
pub fn replace(fd: BorrowedFd<'_>, data: &[u8]) -> Result<()> {
    // SAFETY: ftruncate on a borrowed, valid fd.
    if unsafe { libc::ftruncate(fd.as_raw_fd(), 0) } != 0 {
        return Err(KernelError::last("ftruncate memfd"));
    }
    write_all_at(fd, data)
}

/// If `link` (a `/proc/<pid>/fd/<n>` target) names one of our memfds,
/// return its kind.
pub fn kind_of_link(link: &[u8]) -> Option<&str> {
    let rest = link
        .strip_prefix(b"/memfd:")?
        .strip_prefix(NAME_PREFIX.as_bytes())?;
    let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Seek};
    use std::os::fd::AsFd;

    #[test]
    fn create_replace_and_recognise() {
        let fd = create("meminfo", b"hello").unwrap();
        let link = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        let link = link.as_os_str().as_encoded_bytes().to_vec();
        assert_eq!(kind_of_link(&link), Some("meminfo"));
        assert_eq!(kind_of_link(b"/memfd:other (deleted)"), None);
        assert_eq!(kind_of_link(b"/proc/meminfo"), None);
        replace(fd.as_fd(), b"fresh!").unwrap();
        let mut f = std::fs::File::from(fd);
        f.rewind().unwrap();
        let mut s = String::new();
        f.read_to_string(&mut s).unwrap();
        assert_eq!(s, "fresh!");
    }
}

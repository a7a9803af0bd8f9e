//! Reading and writing a trapped process's memory with
//! `process_vm_readv`/`process_vm_writev` (cheaper than `/proc/<pid>/mem`).
//!
//! Reads are split at page boundaries: the kernel never transfers part of
//! one iovec, so a string that ends just before an unmapped page is still
//! read in full, and a fault is reported only where the process itself
//! would fault.

use super::{KernelError, Result};

const PAGE: usize = 4096;
/// Bytes read in the first attempt: most paths are short.
const FIRST_CHUNK: usize = 256;

/// Outcome of reading a NUL-terminated string from another process.
#[derive(Debug, PartialEq, Eq)]
pub enum CString {
    /// The bytes before the NUL.
    Ok(Vec<u8>),
    /// The first byte is not readable (the kernel would say `EFAULT`).
    Fault,
    /// No NUL within the limit, or a fault before the NUL: the kernel would
    /// say `ENAMETOOLONG` or `EFAULT`; the caller lets the kernel decide.
    Unterminated,
}

fn readv(pid: u32, addr: u64, buf: &mut [u8]) -> std::result::Result<usize, i32> {
    let local = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: buf.len(),
    };
    // SAFETY: `local` describes memory we own for its whole length; `remote`
    // is only dereferenced by the kernel in the other process, where a bad
    // address yields EFAULT, never undefined behaviour here.
    let r = unsafe { libc::process_vm_readv(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if r < 0 {
        Err(std::io::Error::last_os_error()
            .raw_os_error()
            .unwrap_or(libc::EFAULT))
    } else {
        Ok(r as usize)
    }
}

/// Read a NUL-terminated string of at most `max` bytes (NUL excluded) at
/// `addr` in process `pid`.
pub fn read_cstring(pid: u32, addr: u64, max: usize) -> Result<CString> {
    let mut out: Vec<u8> = Vec::with_capacity(FIRST_CHUNK);
    let mut cur = addr;
    let mut chunk = [0u8; PAGE];
    loop {
        let to_page_end = PAGE - (cur as usize % PAGE);
        let want = if out.is_empty() {
            to_page_end.min(FIRST_CHUNK)
        } else {
            to_page_end
        };
        let want = want.min(max + 1 - out.len());
        match readv(pid, cur, &mut chunk[..want]) {
            Ok(0) | Err(libc::EFAULT) => {
                return Ok(if out.is_empty() {
                    CString::Fault
                } else {
                    CString::Unterminated
                })
            }
            Ok(n) => {
                if let Some(nul) = memchr::memchr(0, &chunk[..n]) {
                    out.extend_from_slice(&chunk[..nul]);
                    return Ok(CString::Ok(out));
                }
                out.extend_from_slice(&chunk[..n]);
                if out.len() > max {
                    return Ok(CString::Unterminated);
                }
                cur = cur.wrapping_add(n as u64);
            }
            Err(e) => {
                return Err(KernelError::Sys {
                    op: "process_vm_readv",
                    source: std::io::Error::from_raw_os_error(e),
                })
            }
        }
    }
}

/// Read exactly `buf.len()` bytes at `addr`; `Ok(false)` on a fault.
pub fn read_exact(pid: u32, addr: u64, buf: &mut [u8]) -> Result<bool> {
    let mut done = 0;
    while done < buf.len() {
        let cur = addr.wrapping_add(done as u64);
        let to_page_end = PAGE - (cur as usize % PAGE);
        let want = to_page_end.min(buf.len() - done);
        match readv(pid, cur, &mut buf[done..done + want]) {
            Ok(0) | Err(libc::EFAULT) => return Ok(false),
            Ok(n) => done += n,
            Err(e) => {
                return Err(KernelError::Sys {
                    op: "process_vm_readv",
                    source: std::io::Error::from_raw_os_error(e),
                })
            }
        }
    }
    Ok(true)
}

/// Write all of `data` at `addr`; `Ok(false)` on a fault.
pub fn write_all(pid: u32, addr: u64, data: &[u8]) -> Result<bool> {
    let local = libc::iovec {
        iov_base: data.as_ptr() as *mut libc::c_void,
        iov_len: data.len(),
    };
    let remote = libc::iovec {
        iov_base: addr as usize as *mut libc::c_void,
        iov_len: data.len(),
    };
    // SAFETY: the kernel only reads `local` (memory we own for its length)
    // and writes the other process's memory, which cannot affect ours.
    let r = unsafe { libc::process_vm_writev(pid as libc::pid_t, &local, 1, &remote, 1, 0) };
    if r < 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() == Some(libc::EFAULT) {
            return Ok(false);
        }
        return Err(KernelError::Sys {
            op: "process_vm_writev",
            source: err,
        });
    }
    Ok(r as usize == data.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_own_strings_and_faults() {
        let pid = std::process::id();
        let s = b"/proc/meminfo\0";
        assert_eq!(
            read_cstring(pid, s.as_ptr() as u64, 4096).unwrap(),
            CString::Ok(b"/proc/meminfo".to_vec())
        );
        assert_eq!(read_cstring(pid, 8, 4096).unwrap(), CString::Fault);
        let long = vec![b'a'; 5000];
        assert_eq!(
            read_cstring(pid, long.as_ptr() as u64, 4096).unwrap(),
            CString::Unterminated
        );
    }

    #[test]
    fn string_ending_before_an_unmapped_page() {
        // Map two pages, make the second inaccessible, put a string that
        // ends exactly at the end of the first page.
        // SAFETY: anonymous private mapping of two pages, checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                2 * PAGE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        assert_ne!(p, libc::MAP_FAILED);
        // SAFETY: p is a valid mapping of 2 pages; we protect the second.
        unsafe { libc::mprotect(p.cast::<u8>().add(PAGE).cast(), PAGE, libc::PROT_NONE) };
        // SAFETY: the first page is writable and we stay inside it.
        let first = unsafe { std::slice::from_raw_parts_mut(p.cast::<u8>(), PAGE) };
        first.fill(b'x');
        first[PAGE - 1] = 0;
        let pid = std::process::id();
        match read_cstring(pid, p as u64 + 10, 4096).unwrap() {
            CString::Ok(v) => assert_eq!(v.len(), PAGE - 11),
            other => panic!("{other:?}"),
        }
        first[PAGE - 1] = b'x';
        assert_eq!(
            read_cstring(pid, p as u64 + 10, 4096).unwrap(),
            CString::Unterminated
        );
        // SAFETY: unmapping what we mapped.
        unsafe { libc::munmap(p, 2 * PAGE) };
    }
}

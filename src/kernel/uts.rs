//! Setting a host name or NIS domain name in another process's UTS
//! namespace, from one thread of the supervisor.
//!
//! `setns(CLONE_NEWUTS)` changes only the calling thread's namespaces, so
//! a worker thread joins the target namespace, sets the name and returns
//! to its own; nothing else in the supervisor is affected.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use super::{KernelError, Result};

/// Which UTS name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UtsName {
    Host,
    Domain,
}

fn open_ns(path: &std::ffi::CStr) -> Result<OwnedFd> {
    // SAFETY: a valid C string and flags.
    let raw = unsafe { libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC) };
    if raw < 0 {
        return Err(KernelError::last("open uts namespace"));
    }
    // SAFETY: open returned a new fd nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// The UTS namespace of host pid `pid`, held open.
pub fn namespace_of(pid: u32) -> Result<OwnedFd> {
    let p = std::ffi::CString::new(format!("/proc/{pid}/ns/uts"))
        .map_err(|_| KernelError::Invalid("pid path".into()))?;
    open_ns(&p)
}

/// Set `which` to `value` in the UTS namespace `ns`.
pub fn set_name(ns: BorrowedFd<'_>, which: UtsName, value: &[u8]) -> Result<()> {
    let own = open_ns(c"/proc/thread-self/ns/uts")?;
    // SAFETY: setns with a namespace fd we hold; it changes only this
    // thread's UTS namespace.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
        return Err(KernelError::last("setns uts"));
    }
    // SAFETY: the pointer and length describe `value`, borrowed for the call.
    let r = unsafe {
        match which {
            UtsName::Host => libc::sethostname(value.as_ptr().cast(), value.len()),
            UtsName::Domain => libc::setdomainname(value.as_ptr().cast(), value.len()),
        }
    };
    let set = if r != 0 {
        Err(KernelError::last("sethostname"))
    } else {
        Ok(())
    };
    // SAFETY: back to the thread's own namespace, by the fd taken above.
    if unsafe { libc::setns(own.as_raw_fd(), libc::CLONE_NEWUTS) } != 0 {
        tracing::error!("cannot return to the supervisor's own UTS namespace");
    }
    set
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn a_name_is_set_in_another_namespace_only() {
        if !crate::testutil::root_or_skip("setting a host name needs root") {
            return;
        }
        // A process in its own UTS namespace.
        let mut child = std::process::Command::new("unshare")
            .args(["--uts", "sleep", "30"])
            .spawn()
            .unwrap();
        let pid = child.id();
        let t = std::time::Instant::now();
        let own = std::fs::read_link("/proc/self/ns/uts").unwrap();
        while std::fs::read_link(format!("/proc/{pid}/ns/uts"))
            .ok()
            .as_ref()
            == Some(&own)
            && t.elapsed() < std::time::Duration::from_secs(5)
        {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let before = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let ns = namespace_of(pid).unwrap();
        set_name(ns.as_fd(), UtsName::Host, b"syscont-uts-test").unwrap();
        let theirs = std::process::Command::new("nsenter")
            .args(["-t", &pid.to_string(), "-u", "hostname"])
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            String::from_utf8_lossy(&theirs.stdout).trim(),
            "syscont-uts-test"
        );
        assert_eq!(
            std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap(),
            before,
            "the host's name changed"
        );
    }
}

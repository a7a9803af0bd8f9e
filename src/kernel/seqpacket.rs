//! `AF_UNIX` `SOCK_SEQPACKET` sockets (message boundaries kept, one fd per
//! message) for the supervisor's fd holder, and starting a detached process.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use nix::sys::socket::{
    self, AddressFamily, Backlog, ControlMessage, MsgFlags, SockFlag, SockType, UnixAddr,
};

fn nix_io(e: nix::errno::Errno) -> io::Error {
    io::Error::from_raw_os_error(e as i32)
}

fn new_socket() -> io::Result<OwnedFd> {
    socket::socket(
        AddressFamily::Unix,
        SockType::SeqPacket,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(nix_io)
}

/// Listen on `path` (replaced if stale), mode 0600.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let fd = new_socket()?;
    let addr = UnixAddr::new(path).map_err(nix_io)?;
    socket::bind(fd.as_raw_fd(), &addr).map_err(nix_io)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    socket::listen(&fd, Backlog::new(16).map_err(nix_io)?).map_err(nix_io)?;
    Ok(fd)
}

/// Connect to `path`, with send and receive time-outs.
pub fn connect(path: &Path, timeout: Duration) -> io::Result<OwnedFd> {
    let fd = new_socket()?;
    let addr = UnixAddr::new(path).map_err(nix_io)?;
    socket::connect(fd.as_raw_fd(), &addr).map_err(nix_io)?;
    let tv = nix::sys::time::TimeVal::new(timeout.as_secs() as i64, timeout.subsec_micros() as i64);
    socket::setsockopt(&fd, socket::sockopt::SendTimeout, &tv).map_err(nix_io)?;
    socket::setsockopt(&fd, socket::sockopt::ReceiveTimeout, &tv).map_err(nix_io)?;
    Ok(fd)
}

/// Accept one connection; returns it with the peer's uid.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, u32)> {
    let raw = socket::accept4(listener.as_raw_fd(), SockFlag::SOCK_CLOEXEC).map_err(nix_io)?;
    // SAFETY: accept4 returned a fresh fd that nothing else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let uid = socket::getsockopt(&fd, socket::sockopt::PeerCredentials)
        .map_err(nix_io)?
        .uid();
    Ok((fd, uid))
}

/// Send one message, with at most one fd.
pub fn send(sock: BorrowedFd<'_>, bytes: &[u8], fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
    let fds: Vec<BorrowedFd<'_>> = fd.into_iter().collect();
    send_fds(sock, bytes, &fds)
}

/// [`send`] with any number of fds in one message.
pub fn send_fds(sock: BorrowedFd<'_>, bytes: &[u8], fds: &[BorrowedFd<'_>]) -> io::Result<()> {
    let iov = [io::IoSlice::new(bytes)];
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    let cmsgs: Vec<ControlMessage<'_>> = if raw.is_empty() {
        vec![]
    } else {
        vec![ControlMessage::ScmRights(&raw)]
    };
    socket::sendmsg::<()>(sock.as_raw_fd(), &iov, &cmsgs, MsgFlags::MSG_NOSIGNAL, None)
        .map_err(nix_io)?;
    Ok(())
}

/// Start `cmd` in a new session (so a terminal hang-up or the parent's
/// death does not reach it), stdio as configured on `cmd`. Returns its pid.
pub fn spawn_detached(cmd: &mut Command) -> io::Result<u32> {
    // SAFETY: setsid is async-signal-safe and touches no memory of ours.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setsid() < 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd.spawn()?;
    Ok(child.id())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn messages_keep_boundaries_and_fds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sock");
        let l = listen(&path).unwrap();
        let c = connect(&path, Duration::from_secs(1)).unwrap();
        let (s, uid) = accept(l.as_fd()).unwrap();
        assert_eq!(uid, nix::unistd::geteuid().as_raw());
        let f = std::fs::File::open("/proc/self/status").unwrap();
        send(c.as_fd(), b"one", Some(f.as_fd())).unwrap();
        send(c.as_fd(), b"two", None).unwrap();
        let mut buf = [0u8; 64];
        let (n, fds) = super::super::fs::recv_with_fds(s.as_fd(), &mut buf, 1)
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"one"[..], 1));
        let (n, fds) = super::super::fs::recv_with_fds(s.as_fd(), &mut buf, 1)
            .unwrap()
            .unwrap();
        assert_eq!((&buf[..n], fds.len()), (&b"two"[..], 0));
    }
}

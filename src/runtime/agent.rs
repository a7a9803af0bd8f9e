//! The runtime's check that the supervisor is there.
//!
//! This module owns one question: does something listen on the supervisor's
//! agent socket? runc would otherwise create the container and fail late with
//! "failed to connect with seccomp agent", after the bundle was rewritten. The
//! probe connects without blocking and closes at once; the supervisor ignores
//! a connection that sends nothing.

use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sys::socket::{connect, socket, AddressFamily, SockFlag, SockType, UnixAddr};
use std::os::fd::AsRawFd;

use crate::agent_meta::agent_socket;

/// Errors of probing the supervisor.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AgentError {
    #[error(
        "the syscont supervisor is not running (no listener on {}); start it with: syscont-supervisor --state-dir {}",
        socket.display(),
        state_dir.display()
    )]
    NotRunning { socket: PathBuf, state_dir: PathBuf },
    #[error("cannot connect to the syscont supervisor on {}: {errno}", socket.display())]
    Unreachable { socket: PathBuf, errno: Errno },
}

/// Check that the supervisor of `state_dir` accepts connections.
pub fn probe(state_dir: &Path) -> Result<(), AgentError> {
    let sock = agent_socket(state_dir);
    let unreachable = |errno| AgentError::Unreachable {
        socket: sock.clone(),
        errno,
    };
    let addr = UnixAddr::new(&sock).map_err(unreachable)?;
    let fd = socket(
        AddressFamily::Unix,
        SockType::Stream,
        SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC,
        None,
    )
    .map_err(unreachable)?;
    match connect(fd.as_raw_fd(), &addr) {
        // EAGAIN: the listener's backlog is full, so it is there.
        Ok(()) | Err(Errno::EAGAIN) => {
            tracing::debug!(socket = %sock.display(), "supervisor is listening");
            Ok(())
        }
        Err(Errno::ENOENT | Errno::ECONNREFUSED | Errno::ENOTDIR) => Err(AgentError::NotRunning {
            socket: sock,
            state_dir: state_dir.to_path_buf(),
        }),
        Err(e) => Err(unreachable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    #[test]
    fn missing_socket_says_how_to_start() {
        let dir = tempfile::tempdir().unwrap();
        let e = probe(dir.path()).unwrap_err();
        let want = format!(
            "the syscont supervisor is not running (no listener on {}/agent.sock); start it with: syscont-supervisor --state-dir {}",
            dir.path().display(),
            dir.path().display()
        );
        assert_eq!(e.to_string(), want);
    }

    #[test]
    fn stale_socket_is_not_running() {
        let dir = tempfile::tempdir().unwrap();
        let l = UnixListener::bind(agent_socket(dir.path())).unwrap();
        drop(l);
        assert!(matches!(
            probe(dir.path()),
            Err(AgentError::NotRunning { .. })
        ));
    }

    #[test]
    fn listener_is_found() {
        let dir = tempfile::tempdir().unwrap();
        let _l = UnixListener::bind(agent_socket(dir.path())).unwrap();
        assert_eq!(probe(dir.path()), Ok(()));
    }

    #[test]
    fn overlong_path_is_an_error() {
        let long = PathBuf::from(format!("/tmp/{}", "x".repeat(200)));
        assert!(matches!(probe(&long), Err(AgentError::Unreachable { .. })));
    }
}

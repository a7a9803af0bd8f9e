//! The fd holder: a tiny process that keeps a duplicate of every listener
//! fd, so that a supervisor crash or upgrade costs running containers
//! nothing.
//!
//! While any copy of a listener fd is open the kernel keeps a container's
//! trapped calls waiting instead of failing them with `ENOSYS`. The
//! supervisor sends each new listener, with its `ContainerProcessState`, to
//! the holder (`holder.sock`, `SOCK_SEQPACKET`, one message each, with the
//! listener's fd and the fd of its in-flight record,
//! [`crate::kernel::inflight`]). A
//! new supervisor asks the holder for everything it keeps (`DUMP`), takes
//! the fds back and serves the calls that waited meanwhile.
//!
//! It also keeps the supervisor's listening agent socket (`LISTEN`): while
//! no supervisor runs, a `docker exec` or create that connects waits in its
//! backlog, and the next supervisor accepts it, instead of failing with
//! "failed to connect with seccomp agent".
//!
//! The holder never reads a notification: it polls its fds for hang-up only
//! (no `POLLIN`), so the kernel does not even wake it on a trapped call. It
//! drops an fd when no process uses the filter any more, and exits when it
//! keeps nothing and no supervisor is connected.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::kernel::fs::{poll, recv_with_fds};
use crate::kernel::seqpacket;

/// Socket of the holder inside the state directory.
pub const HOLDER_SOCKET: &str = "holder.sock";
const DUMP: &[u8] = b"DUMP";
const END: &[u8] = b"END";
/// The supervisor's listening agent socket (with its fd): kept so that a
/// runc that connects while no supervisor runs waits in its backlog.
pub const LISTEN: &[u8] = b"LISTEN";
/// Largest message (a ContainerProcessState is about 1 KiB).
const MAX_MESSAGE: usize = 64 * 1024;
/// Fds per message: a listener and its in-flight record.
const MAX_FDS: usize = 2;

/// One kept registration: its message and its fds (a listener and its
/// in-flight record, or the agent socket for `LISTEN`).
pub type Kept = (Vec<u8>, Vec<OwnedFd>);

/// Errors of the holder and of talking to it.
#[derive(Debug, thiserror::Error)]
pub enum HolderError {
    #[error("fd holder socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("fd holder sent a malformed reply")]
    Protocol,
}

fn socket_path(state_dir: &Path) -> PathBuf {
    state_dir.join(HOLDER_SOCKET)
}

/// Run the holder until it keeps nothing and no supervisor is connected.
pub fn run(state_dir: &Path) -> Result<(), HolderError> {
    let path = socket_path(state_dir);
    let err = |source| HolderError::Io {
        path: path.clone(),
        source,
    };
    let lock_path = state_dir.join("holder.lock");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(err)?;
    let _lock = match nix::fcntl::Flock::lock(lock, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(l) => l,
        Err(_) => {
            tracing::info!("another fd holder is running");
            return Ok(());
        }
    };
    let listener = seqpacket::listen(&path).map_err(err)?;
    let _ = std::fs::write(
        state_dir.join("holder.pid"),
        format!("{}\n", std::process::id()),
    );
    let mut client: Option<OwnedFd> = None;
    // (message, [listener, in-flight record if any])
    let mut kept: Vec<Kept> = Vec::new();
    let mut agent: Option<OwnedFd> = None;
    let mut buf = vec![0u8; MAX_MESSAGE];
    // A freshly started holder waits a while for its supervisor.
    let started = Instant::now();
    loop {
        let mut pfds = Vec::with_capacity(kept.len() + 2);
        pfds.push(libc::pollfd {
            fd: listener.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if let Some(c) = &client {
            pfds.push(libc::pollfd {
                fd: c.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            });
        }
        let first_kept = pfds.len();
        for (_, fds) in &kept {
            // No POLLIN: a trapped call must not wake the holder.
            pfds.push(libc::pollfd {
                fd: fds[0].as_raw_fd(),
                events: 0,
                revents: 0,
            });
        }
        let timeout = if client.is_none() && kept.is_empty() {
            let left = Duration::from_secs(10).saturating_sub(started.elapsed());
            if left.is_zero() {
                return Ok(());
            }
            left.as_millis() as i32
        } else {
            -1
        };
        match poll(&mut pfds, timeout) {
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(err(e)),
        }
        // Drop fds nobody uses any more (from the end, indices stay valid).
        for i in (0..kept.len()).rev() {
            if pfds[first_kept + i].revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0
            {
                kept.swap_remove(i);
            }
        }
        if client.is_some() && pfds[1].revents != 0 {
            let gone = match client
                .as_ref()
                .map(|c| recv_with_fds(c.as_fd(), &mut buf, MAX_FDS))
            {
                Some(Ok(Some((n, mut fds)))) => {
                    let msg = &buf[..n];
                    if msg == DUMP {
                        dump(client.as_ref(), agent.as_ref(), &kept).is_err()
                    } else if msg == LISTEN {
                        // The newest supervisor's socket replaces the old one.
                        if let Some(fd) = fds.pop() {
                            agent = Some(fd);
                        }
                        false
                    } else if !fds.is_empty() {
                        kept.push((msg.to_vec(), fds));
                        false
                    } else {
                        false
                    }
                }
                Some(Ok(None)) | Some(Err(_)) | None => true,
            };
            if gone {
                client = None;
                if kept.is_empty() {
                    return Ok(());
                }
            }
        }
        if pfds[0].revents & libc::POLLIN != 0 {
            if let Ok((c, uid)) = seqpacket::accept(listener.as_fd()) {
                if uid == 0 {
                    // A new supervisor replaces the old connection.
                    client = Some(c);
                }
            }
        }
    }
}

fn dump(client: Option<&OwnedFd>, agent: Option<&OwnedFd>, kept: &[Kept]) -> io::Result<()> {
    let Some(c) = client else { return Ok(()) };
    if let Some(a) = agent {
        seqpacket::send(c.as_fd(), LISTEN, Some(a.as_fd()))?;
    }
    for (raw, fds) in kept {
        let fds: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
        seqpacket::send_fds(c.as_fd(), raw, &fds)?;
    }
    seqpacket::send(c.as_fd(), END, None)
}

/// The supervisor's connection to its holder.
#[derive(Debug)]
pub struct HolderClient {
    state_dir: PathBuf,
    sock: OwnedFd,
}

impl HolderClient {
    /// Connect to the running holder, or start one and connect.
    pub fn connect_or_spawn(state_dir: &Path) -> Result<Self, HolderError> {
        let path = socket_path(state_dir);
        if let Ok(sock) = seqpacket::connect(&path, Duration::from_secs(2)) {
            return Ok(HolderClient {
                state_dir: state_dir.to_path_buf(),
                sock,
            });
        }
        let exe = std::env::current_exe().map_err(|source| HolderError::Io {
            path: path.clone(),
            source,
        })?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(state_dir.join("holder.log"))
            .map(Stdio::from)
            .unwrap_or_else(|_| Stdio::null());
        let mut cmd = Command::new(exe);
        cmd.arg("--fd-holder")
            .arg("--state-dir")
            .arg(state_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let pid = seqpacket::spawn_detached(&mut cmd).map_err(|source| HolderError::Io {
            path: path.clone(),
            source,
        })?;
        tracing::info!(pid, "fd holder started");
        let deadline = Instant::now() + Duration::from_secs(3);
        loop {
            match seqpacket::connect(&path, Duration::from_secs(2)) {
                Ok(sock) => {
                    return Ok(HolderClient {
                        state_dir: state_dir.to_path_buf(),
                        sock,
                    })
                }
                Err(source) if Instant::now() >= deadline => {
                    return Err(HolderError::Io { path, source })
                }
                Err(_) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
    }

    /// Everything the holder keeps: `(ContainerProcessState, [listener,
    /// in-flight record])`, and `(LISTEN, [fd])` for the agent socket of a
    /// previous supervisor.
    pub fn dump(&self) -> Result<Vec<Kept>, HolderError> {
        let io_err = |source| HolderError::Io {
            path: socket_path(&self.state_dir),
            source,
        };
        seqpacket::send(self.sock.as_fd(), DUMP, None).map_err(io_err)?;
        let mut out = Vec::new();
        let mut buf = vec![0u8; MAX_MESSAGE];
        loop {
            match recv_with_fds(self.sock.as_fd(), &mut buf, MAX_FDS).map_err(io_err)? {
                Some((n, fds)) => {
                    if &buf[..n] == END && fds.is_empty() {
                        return Ok(out);
                    }
                    if fds.is_empty() {
                        return Err(HolderError::Protocol);
                    }
                    out.push((buf[..n].to_vec(), fds));
                }
                None => return Err(HolderError::Protocol),
            }
        }
    }

    /// Give the holder a copy of a new listener. If the holder is gone, a
    /// new one is started and given this fd (earlier ones are then no longer
    /// kept: logged).
    pub fn keep(&mut self, raw: &[u8], fds: &[std::os::fd::BorrowedFd<'_>]) {
        if seqpacket::send_fds(self.sock.as_fd(), raw, fds).is_ok() {
            return;
        }
        tracing::warn!(
            "fd holder gone; starting a new one (listeners registered before are no longer kept)"
        );
        match HolderClient::connect_or_spawn(&self.state_dir) {
            Ok(c) => {
                *self = c;
                if let Err(e) = seqpacket::send_fds(self.sock.as_fd(), raw, fds) {
                    tracing::warn!(error = %e, "fd holder refused a listener");
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot start an fd holder"),
        }
    }
}

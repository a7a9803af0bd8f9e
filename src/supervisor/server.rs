//! The main loop: the agent socket (registrations from runc), the stats
//! socket (operators), signals, and the registry of container workers.
//!
//! It never serves a notification itself: each container's fds go to that
//! container's worker ([`super::worker`]).

use std::collections::HashMap;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::thread::JoinHandleExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::net::{UnixListener, UnixStream};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::socket::{getsockopt, sockopt::PeerCredentials};

use crate::agent_meta::{self, ListenerMetadata};
use crate::kernel::arch::SyscallTable;
use crate::kernel::inflight::InflightRecord;
use crate::kernel::notify::NotifyFd;
use crate::supervisor::agent::{self, Pending, Progress, Registration};
use crate::supervisor::files::FileTable;
use crate::supervisor::holder;
use crate::supervisor::holder::HolderClient;
use crate::supervisor::ratelimit::RateLimit;
use crate::supervisor::stats::Stats;
use crate::supervisor::worker::{self, NewProcess, Shared, ToMain, WorkerHandle, KICK_RETRY};
use crate::supervisor::SupervisorError;

const AGENT: Token = Token(0);
/// The previous supervisor's agent socket, taken back from the fd holder.
const AGENT_BEFORE: Token = Token(5);
const STATS: Token = Token(1);
const WAKER: Token = Token(2);
const SIGNALS: Token = Token(3);
const FIRST_CONN: usize = 16;
/// Tokens of the listener copies watched for hang-up start here.
const FIRST_HUP: usize = 1 << 40;
/// A registration must complete within this time.
const CONN_DEADLINE: Duration = Duration::from_secs(5);
/// Most agent connections open at once.
const MAX_CONNS: usize = 256;

struct Conn {
    stream: UnixStream,
    pending: Pending,
    deadline: Instant,
}

/// The running supervisor.
pub struct Server {
    state_dir: PathBuf,
    poll: Poll,
    agent: UnixListener,
    /// The previous supervisor's agent socket (from the fd holder), whose
    /// backlog holds what connected while no supervisor ran.
    agent_before: Option<UnixListener>,
    stats_listener: UnixListener,
    signals: SignalFd,
    _lock: nix::fcntl::Flock<std::fs::File>,
    waker: Arc<Waker>,
    to_main_tx: Sender<ToMain>,
    to_main_rx: Receiver<ToMain>,
    shared: Arc<Shared>,
    conns: HashMap<Token, Conn>,
    next_token: usize,
    workers: HashMap<String, WorkerHandle>,
    /// A copy of each listener, watched for hang-up only (no `EPOLLIN`, so
    /// trapped calls never wake this loop), by token: the worker key.
    hups: HashMap<Token, (String, OwnedFd)>,
    next_hup: usize,
    holder: Option<HolderClient>,
    log: RateLimit,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> SupervisorError {
    move |source| SupervisorError::Io { what, source }
}

fn lock_state_dir(dir: &Path) -> Result<nix::fcntl::Flock<std::fs::File>, SupervisorError> {
    let path = dir.join("supervisor.lock");
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(io_err(format!("open {}", path.display())))?;
    nix::fcntl::Flock::lock(f, nix::fcntl::FlockArg::LockExclusiveNonblock)
        .map_err(|_| SupervisorError::AlreadyRunning(dir.to_path_buf()))
}

fn bind(path: &Path) -> Result<UnixListener, SupervisorError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(format!("remove stale {}", path.display()))(e)),
    }
    let l = UnixListener::bind(path).map_err(io_err(format!("bind {}", path.display())))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_err(format!("chmod {}", path.display())))?;
    Ok(l)
}

impl Server {
    /// Set up the state directory, sockets and signal handling.
    pub fn new(state_dir: &Path) -> Result<Self, SupervisorError> {
        if !nix::unistd::geteuid().is_root() {
            return Err(SupervisorError::NotRoot);
        }
        std::fs::create_dir_all(state_dir)
            .map_err(io_err(format!("create {}", state_dir.display())))?;
        std::fs::set_permissions(state_dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(format!("chmod 0700 {}", state_dir.display())))?;
        let lock = lock_state_dir(state_dir)?;
        crate::kernel::signal::install_wake_handler()
            .map_err(io_err("install the worker wake-up signal handler".into()))?;
        let poll = Poll::new().map_err(io_err("epoll".into()))?;
        let mut agent = bind(&agent_meta::agent_socket(state_dir))?;
        let mut stats_listener = bind(&agent_meta::stats_socket(state_dir))?;
        let mut mask = SigSet::empty();
        mask.add(Signal::SIGTERM);
        mask.add(Signal::SIGINT);
        mask.add(Signal::SIGHUP);
        mask.thread_block()
            .map_err(|e| io_err("block signals".into())(e.into()))?;
        let signals = SignalFd::with_flags(&mask, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| io_err("signalfd".into())(e.into()))?;
        let reg = poll.registry();
        reg.register(&mut agent, AGENT, Interest::READABLE)
            .map_err(io_err("watch agent socket".into()))?;
        reg.register(&mut stats_listener, STATS, Interest::READABLE)
            .map_err(io_err("watch stats socket".into()))?;
        reg.register(
            &mut SourceFd(&signals.as_raw_fd()),
            SIGNALS,
            Interest::READABLE,
        )
        .map_err(io_err("watch signals".into()))?;
        let waker = Arc::new(Waker::new(reg, WAKER).map_err(io_err("waker".into()))?);
        let (to_main_tx, to_main_rx) = mpsc::channel();
        let files = FileTable::from_host();
        tracing::info!(state_dir = %state_dir.display(), emulated_files = files.len(), "supervisor listening");
        Ok(Server {
            state_dir: state_dir.to_path_buf(),
            poll,
            agent,
            agent_before: None,
            stats_listener,
            signals,
            _lock: lock,
            waker,
            to_main_tx,
            to_main_rx,
            shared: Arc::new(Shared {
                files,
                table: SyscallTable::new(),
                stats: Stats::default(),
                data_dir: None,
            }),
            conns: HashMap::new(),
            next_token: FIRST_CONN,
            workers: HashMap::new(),
            hups: HashMap::new(),
            next_hup: FIRST_HUP,
            holder: None,
            log: RateLimit::new(20, Duration::from_secs(3)),
        })
    }

    /// Where `syscont-runc` keeps containers' host state (its
    /// `--syscont-data-dir`): the set-id policy finds each container's root
    /// file system there. Call before [`Server::attach_holder`] and
    /// [`Server::run`].
    pub fn set_data_dir(&mut self, dir: &Path) {
        match Arc::get_mut(&mut self.shared) {
            Some(shared) => shared.data_dir = Some(dir.to_path_buf()),
            None => tracing::warn!("data directory set after workers started; ignored"),
        }
    }

    /// Connect to the fd holder (starting one if needed) and take back every
    /// listener it kept for a previous supervisor.
    pub fn attach_holder(&mut self) {
        let client = match HolderClient::connect_or_spawn(&self.state_dir) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "no fd holder: a supervisor restart would fail trapped calls with ENOSYS");
                return;
            }
        };
        match client.dump() {
            Ok(kept) => {
                let (listen, kept): (Vec<_>, Vec<_>) =
                    kept.into_iter().partition(|(raw, _)| raw == holder::LISTEN);
                // The previous supervisor's socket: what connected while no
                // supervisor ran waits in its backlog.
                for fd in listen.into_iter().flat_map(|(_, fds)| fds) {
                    let std_listener = std::os::unix::net::UnixListener::from(fd);
                    let _ = std_listener.set_nonblocking(true);
                    let mut l = UnixListener::from_std(std_listener);
                    match self
                        .poll
                        .registry()
                        .register(&mut l, AGENT_BEFORE, Interest::READABLE)
                    {
                        Ok(()) => {
                            self.agent_before = Some(l);
                            tracing::info!("took back the previous supervisor's agent socket");
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot watch the previous agent socket")
                        }
                    }
                }
                let n = kept.len();
                for (raw, mut fds) in kept {
                    let record = (fds.len() > 1).then(|| fds.remove(1));
                    fds.truncate(1);
                    let mut p = Pending::default();
                    match p.feed(&raw, fds) {
                        Ok(Progress::Done(reg)) => self.register(*reg, false, record),
                        _ => tracing::warn!("fd holder kept a malformed registration; dropped"),
                    }
                }
                if n > 0 {
                    tracing::info!(
                        listeners = n,
                        "took back the listeners kept by the fd holder"
                    );
                }
            }
            Err(e) => tracing::warn!(error = %e, "fd holder did not answer"),
        }
        let mut client = client;
        client.keep(holder::LISTEN, &[self.agent.as_fd()]);
        self.holder = Some(client);
    }

    /// Serve until SIGTERM, SIGINT or SIGHUP.
    pub fn run(mut self) -> Result<(), SupervisorError> {
        let mut events = Events::with_capacity(128);
        loop {
            let now = Instant::now();
            let kicks = self.workers.values_mut().filter_map(|w| w.retry_kick(now));
            let timeout = self
                .conns
                .values()
                .map(|c| c.deadline)
                .chain(kicks)
                .min()
                .map(|d| d.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(io_err("epoll_wait".into())(e));
            }
            for ev in events.iter() {
                match ev.token() {
                    AGENT => self.accept_agent(false),
                    AGENT_BEFORE => self.accept_agent(true),
                    STATS => self.accept_stats(),
                    WAKER => self.worker_reports(),
                    SIGNALS => {
                        if let Ok(Some(sig)) = self.signals.read_signal() {
                            tracing::info!(signal = sig.ssi_signo, "shutting down");
                            self.shutdown();
                            return Ok(());
                        }
                    }
                    t if t.0 >= FIRST_HUP => self.hung_up(t),
                    t => self.read_conn(t),
                }
            }
            self.expire_conns();
        }
    }

    /// Stop cleanly: every worker finishes the call it is answering, so no
    /// trapped call is left received but unanswered; the fd holder keeps the
    /// listeners for the next supervisor.
    fn shutdown(&mut self) {
        // With a holder, the agent socket stays: the holder keeps it
        // listening for the next supervisor.
        if self.holder.is_none() {
            let _ = std::fs::remove_file(agent_meta::agent_socket(&self.state_dir));
        }
        let _ = std::fs::remove_file(agent_meta::stats_socket(&self.state_dir));
        let handles: Vec<WorkerHandle> = self.workers.drain().map(|(_, h)| h).collect();
        let joins: Vec<_> = handles.into_iter().map(WorkerHandle::stop).collect();
        let deadline = Instant::now() + Duration::from_secs(3);
        let mut rewake = Instant::now() + KICK_RETRY;
        for j in joins {
            while !j.is_finished() && Instant::now() < deadline {
                // The wake signal can land just before a worker blocks in
                // a receive: repeat it, as the main loop does.
                if Instant::now() >= rewake {
                    crate::kernel::signal::wake(j.as_pthread_t());
                    rewake = Instant::now() + KICK_RETRY;
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }

    fn refuse(&mut self, why: &str, detail: &str) {
        if let Some(skipped) = self.log.allow() {
            tracing::warn!(reason = why, detail, skipped, "agent connection refused");
        }
    }

    fn accept_agent(&mut self, before: bool) {
        loop {
            let listener = match (before, &self.agent_before) {
                (true, Some(l)) => l,
                (true, None) => return,
                (false, _) => &self.agent,
            };
            let (mut stream, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if let Some(skipped) = self.log.allow() {
                        tracing::warn!(error = %e, skipped, "accept failed");
                    }
                    return;
                }
            };
            let uid = getsockopt(&stream, PeerCredentials).map(|c| c.uid());
            if uid != Ok(0) {
                self.shared
                    .stats
                    .refused_peer
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.refuse("peer is not root", &format!("{uid:?}"));
                continue;
            }
            if self.conns.len() >= MAX_CONNS {
                self.refuse("too many pending connections", "");
                continue;
            }
            let token = Token(self.next_token);
            self.next_token = self.next_token.wrapping_add(1).max(FIRST_CONN);
            if self
                .poll
                .registry()
                .register(&mut stream, token, Interest::READABLE)
                .is_err()
            {
                continue;
            }
            self.shared
                .stats
                .connections_accepted
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.conns.insert(
                token,
                Conn {
                    stream,
                    pending: Pending::default(),
                    deadline: Instant::now() + CONN_DEADLINE,
                },
            );
        }
    }

    fn read_conn(&mut self, token: Token) {
        let mut buf = [0u8; 8192];
        loop {
            let Some(conn) = self.conns.get_mut(&token) else {
                return;
            };
            let got = agent::receive(conn.stream.as_fd(), &mut buf);
            let progress = match got {
                Ok(Some((n, fds))) => conn.pending.feed(&buf[..n], fds),
                Ok(None) => match conn.pending.finish() {
                    Ok(r) => Ok(Progress::Done(Box::new(r))),
                    Err(agent::AgentError::Truncated) if conn.pending.is_empty() => {
                        // A liveness probe (syscont-runc): connect and close.
                        self.drop_conn(token);
                        return;
                    }
                    Err(e) => Err(e),
                },
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(agent::AgentError::Io(e)),
            };
            match progress {
                Ok(Progress::More) => continue,
                Ok(Progress::Done(reg)) => {
                    self.drop_conn(token);
                    self.register(*reg, true, None);
                    return;
                }
                Err(e) => {
                    self.drop_conn(token);
                    self.shared
                        .stats
                        .refused_payload
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    self.refuse("bad payload", &e.to_string());
                    return;
                }
            }
        }
    }

    /// A listener's processes are all gone: tell its worker (which may be
    /// blocked in a receive that would otherwise never return).
    fn hung_up(&mut self, token: Token) {
        if let Some((key, fd)) = self.hups.remove(&token) {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&fd.as_raw_fd()));
            if let Some(w) = self.workers.get_mut(&key) {
                w.kick();
            }
        }
    }

    fn drop_conn(&mut self, token: Token) {
        if let Some(mut c) = self.conns.remove(&token) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    fn expire_conns(&mut self) {
        let now = Instant::now();
        let late: Vec<Token> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline <= now)
            .map(|(t, _)| *t)
            .collect();
        for t in late {
            self.drop_conn(t);
            self.shared
                .stats
                .refused_payload
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            self.refuse("registration not completed in time", "");
        }
    }

    /// Hand a registration to its container's worker; `keep` also gives
    /// the fd holder a copy (not for listeners it gave back).
    fn register(&mut self, reg: Registration, keep: bool, record: Option<OwnedFd>) {
        let Registration { state, raw, fd } = reg;
        let mut fd = match NotifyFd::new(fd) {
            Ok(f) => f,
            Err(e) => {
                self.shared
                    .stats
                    .refused_payload
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.refuse("bad fd", &e.to_string());
                return;
            }
        };
        let id = state.state.id.clone();
        if id.is_empty() || id.len() > 1024 {
            self.refuse("bad container id", "");
            return;
        }
        // Ids are unique per runc root only: two runtimes may both have a
        // container "web". The bundle tells them apart.
        let key = format!("{id}\u{0}{}", state.state.bundle);
        // The in-flight record: the one kept with the listener, else a new
        // one (only worth having where a holder keeps it).
        let record = match record {
            Some(r) => InflightRecord::from_fd(r).ok(),
            None if self.holder.is_some() => InflightRecord::new().ok(),
            None => None,
        };
        if let Some(r) = record {
            fd.attach_record(r);
        }
        if keep {
            if let Some(h) = self.holder.as_mut() {
                let mut fds = vec![fd.as_fd()];
                fds.extend(fd.record_fd());
                h.keep(&raw, &fds);
            }
        }
        let meta = if state.metadata.is_empty() {
            None
        } else {
            match ListenerMetadata::parse(&state.metadata) {
                Ok(m) => Some(m),
                Err(e) => {
                    tracing::info!(container = %id, error = %e, "metadata not from syscont-runc; every call not emulated continues");
                    None
                }
            }
        };
        // Watch a copy for hang-up (see `hung_up`).
        match fd.try_clone_fd() {
            Ok(copy) => {
                let token = Token(self.next_hup);
                self.next_hup += 1;
                match self.poll.registry().register(
                    &mut SourceFd(&copy.as_raw_fd()),
                    token,
                    Interest::PRIORITY,
                ) {
                    Ok(()) => {
                        self.hups.insert(token, (key.clone(), copy));
                    }
                    Err(e) => {
                        tracing::warn!(container = %id, error = %e, "cannot watch a listener for hang-up")
                    }
                }
            }
            Err(e) => tracing::warn!(container = %id, error = %e, "cannot copy a listener"),
        }
        let mut p = NewProcess {
            fd,
            pid: state.pid,
            init_pid: state.state.pid,
            is_init: state.state.status == "creating",
            meta,
            seq: 0,
        };
        for _attempt in 0..2 {
            if !self.workers.contains_key(&key) {
                match worker::spawn(
                    id.clone(),
                    key.clone(),
                    self.shared.clone(),
                    self.to_main_tx.clone(),
                    self.waker.clone(),
                ) {
                    Ok(h) => {
                        self.workers.insert(key.clone(), h);
                    }
                    Err(e) => {
                        tracing::error!(container = %id, error = %e, "cannot start a worker");
                        return;
                    }
                }
            }
            let Some(h) = self.workers.get_mut(&key) else {
                return;
            };
            match h.send(p) {
                Ok(()) => return,
                Err(back) => {
                    // The worker had exited: start a new one.
                    p = back;
                    self.workers.remove(&key);
                }
            }
        }
    }

    fn worker_reports(&mut self) {
        while let Ok(msg) = self.to_main_rx.try_recv() {
            match msg {
                ToMain::Idle { id, key, seq } => {
                    let idle = self
                        .workers
                        .get(&key)
                        .map(|h| h.sent == seq)
                        .unwrap_or(false);
                    if idle {
                        if let Some(h) = self.workers.remove(&key) {
                            h.close();
                        }
                        let same_id = |k: &String| k.split('\0').next() == Some(id.as_str());
                        if !self.workers.keys().any(same_id) {
                            self.shared.stats.retire(&id);
                        }
                        tracing::info!(container = %id, "container gone");
                    }
                }
            }
        }
    }

    fn accept_stats(&mut self) {
        loop {
            let stream = match self.stats_listener.accept() {
                Ok((s, _)) => s,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(_) => return,
            };
            if getsockopt(&stream, PeerCredentials).map(|c| c.uid()) != Ok(0) {
                continue;
            }
            let json = serde_json::to_vec(&self.shared.stats.snapshot()).unwrap_or_default();
            let mut s = std::os::unix::net::UnixStream::from(stream);
            let _ = s.set_nonblocking(false);
            let _ = s.set_write_timeout(Some(Duration::from_secs(1)));
            let _ = s.write_all(&json);
        }
    }
}

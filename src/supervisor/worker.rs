//! One event loop per container: it owns the container's notification fds
//! and its emulation source, and answers every trapped call of that
//! container. A slow, stopped or flooding container therefore only ever
//! delays itself.
//!
//! The main loop hands over new fds through a channel and a `mio::Waker`.
//! When the last process of the container has gone the worker reports
//! itself idle; the main loop then drops the channel (unless a new fd is in
//! flight) and the worker exits.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

use crate::agent_meta::{ListenerMetadata, OrigAction};
use crate::emulate::ContainerSource;
use crate::kernel::arch::{Sys, SyscallTable};
use crate::kernel::notify::{NotifyFd, Readiness, Reply};
use crate::supervisor::files::FileTable;
use crate::supervisor::handlers::{self, Action, Ctx};
use crate::supervisor::ratelimit::RateLimit;
use crate::supervisor::stats::{ContainerCounters, Outcome, Stats};

const WAKER: Token = Token(usize::MAX);
/// Notifications served from one fd before the others get a turn.
const BUDGET: usize = 64;

/// State shared by every loop of the supervisor.
#[derive(Debug)]
pub struct Shared {
    pub files: FileTable,
    pub table: SyscallTable,
    pub stats: Stats,
}

/// A new process of the container.
#[derive(Debug)]
pub struct NewProcess {
    pub fd: NotifyFd,
    /// Host pid of the process (for logs).
    pub pid: i32,
    /// Host pid of the container's init, if known.
    pub init_pid: i32,
    /// True for a container's init ("creating"): the container (re)starts.
    pub is_init: bool,
    pub meta: Option<ListenerMetadata>,
    /// Sequence number given by the main loop.
    pub seq: u64,
}

/// Message from a worker to the main loop.
#[derive(Debug)]
pub enum ToMain {
    /// The worker has no fd left; it has received every fd up to `seq`.
    Idle { id: String, seq: u64 },
}

/// The main loop's handle on a worker.
#[derive(Debug)]
pub struct WorkerHandle {
    tx: Sender<NewProcess>,
    waker: Arc<Waker>,
    /// Sequence number of the last fd sent.
    pub sent: u64,
}

impl WorkerHandle {
    /// Hand a new process over. Fails if the worker is gone.
    pub fn send(&mut self, mut p: NewProcess) -> Result<(), NewProcess> {
        self.sent += 1;
        p.seq = self.sent;
        self.tx.send(p).map_err(|e| e.0)?;
        let _ = self.waker.wake();
        Ok(())
    }

    /// Tell the worker to exit once it sees the channel closed.
    pub fn close(self) {
        let waker = self.waker.clone();
        drop(self.tx);
        let _ = waker.wake();
    }
}

struct Entry {
    fd: NotifyFd,
    pid: i32,
    meta: Option<ListenerMetadata>,
}

struct Worker {
    id: String,
    shared: Arc<Shared>,
    counters: Arc<ContainerCounters>,
    poll: Poll,
    rx: Receiver<NewProcess>,
    to_main: Sender<ToMain>,
    main_waker: Arc<Waker>,
    entries: Vec<Option<Entry>>,
    live: usize,
    received: u64,
    source: Option<ContainerSource>,
    buf: Vec<u8>,
    log: RateLimit,
    idle_reported: bool,
}

/// Start the loop of container `id`.
pub fn spawn(
    id: String,
    shared: Arc<Shared>,
    to_main: Sender<ToMain>,
    main_waker: Arc<Waker>,
) -> io::Result<WorkerHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = mpsc::channel();
    let counters = shared.stats.container(&id);
    let mut w = Worker {
        id: id.clone(),
        shared,
        counters,
        poll,
        rx,
        to_main,
        main_waker,
        entries: Vec::new(),
        live: 0,
        received: 0,
        source: None,
        buf: Vec::with_capacity(16 * 1024),
        log: RateLimit::new(10, Duration::from_secs(6)),
        idle_reported: false,
    };
    let short: String = id.chars().take(12).collect();
    std::thread::Builder::new()
        .name(format!("ctr-{short}"))
        .spawn(move || w.run())?;
    Ok(WorkerHandle { tx, waker, sent: 0 })
}

impl Worker {
    fn run(&mut self) {
        let mut events = Events::with_capacity(64);
        let mut ready: VecDeque<usize> = VecDeque::new();
        loop {
            let timeout = if ready.is_empty() { None } else { Some(Duration::ZERO) };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(container = %self.id, error = %e, "poll failed; worker stops");
                    return;
                }
                continue;
            }
            for ev in events.iter() {
                if ev.token() == WAKER {
                    if !self.take_new() {
                        tracing::debug!(container = %self.id, "worker exits");
                        return;
                    }
                } else if !ready.contains(&ev.token().0) {
                    ready.push_back(ev.token().0);
                }
            }
            // Serve each ready fd up to its budget, round robin.
            for _ in 0..ready.len() {
                let Some(idx) = ready.pop_front() else { break };
                match self.serve(idx) {
                    Served::Drained => {}
                    Served::More => ready.push_back(idx),
                    Served::Gone => self.remove(idx),
                }
            }
            if self.live == 0 && !self.idle_reported {
                self.idle_reported = true;
                let _ = self.to_main.send(ToMain::Idle {
                    id: self.id.clone(),
                    seq: self.received,
                });
                let _ = self.main_waker.wake();
            }
        }
    }

    /// Take every new process from the channel; false once it is closed and
    /// empty.
    fn take_new(&mut self) -> bool {
        loop {
            match self.rx.try_recv() {
                Ok(p) => self.add(p),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return self.live > 0,
            }
        }
    }

    fn add(&mut self, p: NewProcess) {
        self.received = p.seq;
        self.idle_reported = false;
        if p.is_init || self.source.is_none() {
            let pid = if p.init_pid > 0 { p.init_pid } else { p.pid };
            match ContainerSource::for_init_pid(pid) {
                Ok(s) => self.source = Some(s),
                Err(e) => {
                    tracing::warn!(container = %self.id, pid, error = %e, "cannot read the container's cgroup and start time")
                }
            }
        }
        if p.fd.set_sync_wake_up() {
            self.shared.stats.sync_wake_up.store(1, Relaxed);
        }
        let idx = match self.entries.iter().position(|e| e.is_none()) {
            Some(i) => i,
            None => {
                self.entries.push(None);
                self.entries.len() - 1
            }
        };
        let raw = std::os::fd::AsRawFd::as_raw_fd(&p.fd);
        if let Err(e) = self
            .poll
            .registry()
            .register(&mut SourceFd(&raw), Token(idx), Interest::READABLE)
        {
            tracing::error!(container = %self.id, error = %e, "cannot watch notification fd");
            return;
        }
        tracing::info!(container = %self.id, pid = p.pid, init = p.is_init, "process registered");
        self.entries[idx] = Some(Entry {
            fd: p.fd,
            pid: p.pid,
            meta: p.meta,
        });
        self.live += 1;
        self.counters.fds_registered.fetch_add(1, Relaxed);
        self.counters.fds_active.fetch_add(1, Relaxed);
    }

    fn remove(&mut self, idx: usize) {
        if let Some(e) = self.entries.get_mut(idx).and_then(Option::take) {
            let raw = std::os::fd::AsRawFd::as_raw_fd(&e.fd);
            let _ = self.poll.registry().deregister(&mut SourceFd(&raw));
            tracing::debug!(container = %self.id, pid = e.pid, "process gone; fd released");
            self.live -= 1;
            self.counters.fds_active.fetch_sub(1, Relaxed);
        }
    }

    fn serve(&mut self, idx: usize) -> Served {
        for _ in 0..BUDGET {
            let Some(entry) = self.entries.get(idx).and_then(Option::as_ref) else {
                return Served::Drained;
            };
            match entry.fd.readiness() {
                Readiness::Idle => return Served::Drained,
                Readiness::Gone => return Served::Gone,
                Readiness::Pending => {}
            }
            let started = Instant::now();
            let n = match entry.fd.recv() {
                Ok(n) => n,
                Err(e) if e.errno() == Some(libc::ENOENT) || e.errno() == Some(libc::EINTR) => continue,
                Err(e) => {
                    if let Some(skipped) = self.log.allow() {
                        tracing::warn!(container = %self.id, error = %e, skipped, "receive failed");
                    }
                    return Served::Drained;
                }
            };
            if self.source.is_none() {
                if let Ok(s) = ContainerSource::for_init_pid(n.pid as i32) {
                    self.source = Some(s);
                }
            }
            let sys = self.shared.table.lookup(n.arch, n.nr);
            let orig = entry
                .meta
                .as_ref()
                .and_then(|m| m.orig_action(sys.name()))
                .unwrap_or(OrigAction::Allow);
            let action = match (orig, self.source.as_ref()) {
                (OrigAction::Errno { errno }, _) => Action::Errno(errno as i32),
                (OrigAction::Allow, None) => Action::Continue,
                (OrigAction::Allow, Some(source)) => {
                    let mut ctx = Ctx {
                        nfd: &entry.fd,
                        notif: &n,
                        sys,
                        files: &self.shared.files,
                        source,
                        counters: &self.counters,
                        buf: &mut self.buf,
                    };
                    handlers::handle(&mut ctx)
                }
            };
            let (result, outcome) = match action {
                Action::Continue => (entry.fd.send(n.id, Reply::Continue), Outcome::Continued),
                Action::Errno(e) => (entry.fd.send(n.id, Reply::Errno(e)), Outcome::Errno),
                Action::Value(v) => (entry.fd.send(n.id, Reply::Value(v)), Outcome::Emulated),
                Action::InjectFd { fd, cloexec, file } => {
                    let r = entry.fd.add_fd_and_send(n.id, std::os::fd::AsFd::as_fd(&fd), cloexec);
                    if r.is_ok() {
                        self.counters.served(file);
                    }
                    (r.map(|_| ()), Outcome::Emulated)
                }
            };
            let outcome = match result {
                Ok(()) => outcome,
                Err(e) if e.errno() == Some(libc::ENOENT) => Outcome::Gone,
                Err(e) => {
                    if let Some(skipped) = self.log.allow() {
                        tracing::warn!(container = %self.id, syscall = sys.name(), error = %e, skipped, "answer failed");
                    }
                    Outcome::Gone
                }
            };
            self.counters.record(sys, outcome, started.elapsed());
            if sys == Sys::Other {
                if let Some(skipped) = self.log.allow() {
                    tracing::debug!(container = %self.id, nr = n.nr, arch = n.arch, skipped, "unexpected syscall continued");
                }
            }
        }
        Served::More
    }
}

enum Served {
    Drained,
    More,
    Gone,
}

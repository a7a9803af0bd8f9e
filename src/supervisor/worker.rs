//! One event loop per container: it owns the container's notification fds
//! and its emulation source, and answers every trapped call of that
//! container. A slow, stopped or flooding container therefore only ever
//! delays itself.
//!
//! The loop is a level-triggered epoll over the container's listener fds
//! and one eventfd: per notification that is `epoll_wait`, `NOTIF_RECV` and
//! the answer, the fewest syscalls a multi-fd loop can do (an edge-triggered
//! set needs a zero-timeout poll before every receive, since `NOTIF_RECV`
//! blocks even on a non-blocking fd; `poll(2)` re-arms every fd on every
//! call, so its cost grows with the container's idle processes). Each ready
//! fd gets one notification per round, so one flooding process cannot
//! starve the container's others.
//!
//! The main loop hands over new fds through a channel and the eventfd.
//! When the last process of the container has gone the worker reports
//! itself idle; the main loop then drops the channel (unless a new fd is in
//! flight) and the worker exits.

use std::io;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::agent_meta::{ListenerMetadata, OrigAction};
use crate::emulate::ContainerSource;
use crate::kernel::arch::{Sys, SyscallTable};
use crate::kernel::epoll::Epoll;
use crate::kernel::notify::{NotifyFd, Reply};
use crate::kernel::resolve::Walker;
use crate::supervisor::files::FileTable;
use crate::supervisor::fileset::FileSet;
use crate::supervisor::handlers::{self, Action, Ctx};
use crate::supervisor::ratelimit::RateLimit;
use crate::supervisor::stats::{ContainerCounters, Outcome, Stats};

/// Epoll token of the worker's eventfd (entries use their index).
const WAKE_TOKEN: u64 = u64::MAX;

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
    Idle { id: String, key: String, seq: u64 },
}

/// The main loop's handle on a worker.
#[derive(Debug)]
pub struct WorkerHandle {
    tx: Sender<NewProcess>,
    waker: Arc<EventFd>,
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// Sequence number of the last fd sent.
    pub sent: u64,
}

impl WorkerHandle {
    /// Hand a new process over. Fails if the worker is gone.
    pub fn send(&mut self, mut p: NewProcess) -> Result<(), NewProcess> {
        self.sent += 1;
        p.seq = self.sent;
        self.tx.send(p).map_err(|e| e.0)?;
        let _ = self.waker.write(1);
        Ok(())
    }

    /// Make the worker exit after the call it is answering; returns its
    /// thread to wait for.
    pub fn stop(self) -> std::thread::JoinHandle<()> {
        self.stop.store(true, Relaxed);
        let _ = self.waker.write(1);
        self.thread
    }

    /// Tell the worker to exit once it sees the channel closed.
    pub fn close(self) {
        let waker = self.waker.clone();
        drop(self.tx);
        let _ = waker.write(1);
    }
}

struct Entry {
    fd: NotifyFd,
    pid: i32,
    meta: Option<ListenerMetadata>,
}

struct Worker {
    id: String,
    key: String,
    shared: Arc<Shared>,
    counters: Arc<ContainerCounters>,
    wake: Arc<EventFd>,
    epoll: Epoll,
    stop: Arc<AtomicBool>,
    rx: Receiver<NewProcess>,
    to_main: Sender<ToMain>,
    main_waker: Arc<Waker>,
    entries: Vec<Option<Entry>>,
    live: usize,
    received: u64,
    source: Option<ContainerSource>,
    /// A source was already tried from a trapped process (no init pid known).
    source_fallback_tried: bool,
    injected: FileSet,
    verified: FileSet,
    /// Made on the worker's own thread (it changes that thread's root).
    walker: Option<Walker>,
    buf: Vec<u8>,
    log: RateLimit,
    idle_reported: bool,
}

/// Start the loop of container `id`.
pub fn spawn(
    id: String,
    key: String,
    shared: Arc<Shared>,
    to_main: Sender<ToMain>,
    main_waker: Arc<Waker>,
) -> io::Result<WorkerHandle> {
    let waker = Arc::new(
        EventFd::from_value_and_flags(0, EfdFlags::EFD_CLOEXEC | EfdFlags::EFD_NONBLOCK)
            .map_err(io::Error::from)?,
    );
    let (tx, rx) = mpsc::channel();
    let stop = Arc::new(AtomicBool::new(false));
    let epoll = Epoll::new()?;
    epoll.add(waker.as_fd(), WAKE_TOKEN)?;
    let counters = shared.stats.container(&id);
    let mut w = Worker {
        id: id.clone(),
        key,
        shared,
        counters,
        wake: waker.clone(),
        epoll,
        stop: stop.clone(),
        rx,
        to_main,
        main_waker,
        entries: Vec::new(),
        live: 0,
        received: 0,
        source: None,
        source_fallback_tried: false,
        injected: FileSet::default(),
        verified: FileSet::default(),
        walker: None,
        buf: Vec::with_capacity(16 * 1024),
        log: RateLimit::new(10, Duration::from_secs(6)),
        idle_reported: false,
    };
    // Thread names hold 15 bytes; keep them printable whatever the id is.
    let short: String = id
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .take(11)
        .collect();
    let thread = std::thread::Builder::new()
        .name(format!("ctr-{short}"))
        .spawn(move || w.run())?;
    Ok(WorkerHandle {
        tx,
        waker,
        stop,
        thread,
        sent: 0,
    })
}

impl Worker {
    fn run(&mut self) {
        self.walker = Some(Walker::for_this_thread());
        let mut buf = Vec::with_capacity(64);
        let mut ready = Vec::with_capacity(64);
        loop {
            if let Err(e) = self.epoll.wait(&mut buf, &mut ready, -1) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(container = %self.id, error = %e, "epoll_wait failed; worker stops");
                    return;
                }
                continue;
            }
            let mut woken = false;
            for r in &ready {
                if r.token == WAKE_TOKEN {
                    woken = true;
                } else if r.readable {
                    self.serve_one(r.token as usize);
                } else if r.hangup {
                    self.remove(r.token as usize);
                }
            }
            if self.stop.load(Relaxed) {
                return;
            }
            if woken {
                let _ = self.wake.read();
                if !self.take_new() {
                    tracing::debug!(container = %self.id, "worker exits");
                    return;
                }
            }
            if self.live == 0 && !self.idle_reported {
                self.idle_reported = true;
                let _ = self.to_main.send(ToMain::Idle {
                    id: self.id.clone(),
                    key: self.key.clone(),
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
        // The same listener twice would make a receive block (one
        // notification, two pollers): keep one.
        let dup = self
            .entries
            .iter()
            .flatten()
            .any(|e| crate::kernel::fs::same_file(e.fd.as_fd(), p.fd.as_fd()));
        if dup {
            tracing::warn!(container = %self.id, pid = p.pid, "listener registered twice; ignoring the copy");
            return;
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
        if let Err(e) = self.epoll.add(p.fd.as_fd(), idx as u64) {
            tracing::error!(container = %self.id, error = %e, "cannot watch a notification fd");
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
            self.epoll.remove(e.fd.as_fd());
            tracing::debug!(container = %self.id, pid = e.pid, "process gone; fd released");
            self.live -= 1;
            self.counters.fds_active.fetch_sub(1, Relaxed);
        }
    }

    /// Answer one notification of entry `idx` (poll said one is pending,
    /// so the receive cannot block).
    fn serve_one(&mut self, idx: usize) {
        {
            let Some(entry) = self.entries.get(idx).and_then(Option::as_ref) else {
                return;
            };
            let started = Instant::now();
            let n = match entry.fd.recv() {
                Ok(n) => n,
                Err(e) if e.errno() == Some(libc::ENOENT) || e.errno() == Some(libc::EINTR) => {
                    return
                }
                Err(e) => {
                    if let Some(skipped) = self.log.allow() {
                        tracing::warn!(container = %self.id, error = %e, skipped, "receive failed");
                    }
                    return;
                }
            };
            if self.source.is_none() && !self.source_fallback_tried {
                // No init pid was known (e.g. crun's exec payload): use the
                // trapped process's cgroup, once.
                self.source_fallback_tried = true;
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
            let action = match (orig, self.source.as_ref(), self.walker.as_ref()) {
                (OrigAction::Errno { errno }, _, _) => Action::Errno(errno as i32),
                (OrigAction::Allow, None, _) | (OrigAction::Allow, _, None) => Action::Continue,
                (OrigAction::Allow, Some(source), Some(walker)) => {
                    let mut ctx = Ctx {
                        nfd: &entry.fd,
                        notif: &n,
                        sys,
                        files: &self.shared.files,
                        source,
                        counters: &self.counters,
                        buf: &mut self.buf,
                        injected: &mut self.injected,
                        walker,
                        verified: &mut self.verified,
                    };
                    handlers::handle(&mut ctx)
                }
            };
            let (result, outcome) = match action {
                Action::Continue => (entry.fd.send(n.id, Reply::Continue), Outcome::Continued),
                Action::Errno(e) => (entry.fd.send(n.id, Reply::Errno(e)), Outcome::Errno),
                Action::Value(v) => (entry.fd.send(n.id, Reply::Value(v)), Outcome::Emulated),
                Action::InjectFd { fd, cloexec, file } => {
                    match entry.fd.add_fd_and_send(n.id, fd.as_fd(), cloexec) {
                        Ok(_) => {
                            self.counters.served(file);
                            (Ok(()), Outcome::Emulated)
                        }
                        Err(e) if e.errno() == Some(libc::ENOENT) => (Err(e), Outcome::Gone),
                        // The fd could not be installed (EMFILE at the
                        // caller's RLIMIT_NOFILE, …): the call still needs
                        // an answer, and the kernel's own would be this.
                        Err(e) => {
                            let errno = e.errno().unwrap_or(libc::ENOMEM);
                            (entry.fd.send(n.id, Reply::Errno(errno)), Outcome::Errno)
                        }
                    }
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
    }
}

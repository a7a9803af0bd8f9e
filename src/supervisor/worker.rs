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
use std::os::unix::thread::JoinHandleExt;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::Waker;
use nix::sys::eventfd::{EfdFlags, EventFd};

use crate::agent_meta::{ListenerMetadata, OrigAction};
use crate::emulate::ContainerSource;
use crate::kernel::arch::{Sys, SyscallTable};
use crate::kernel::epoll::Epoll;
use crate::kernel::notify::{Notification, NotifyFd, Readiness, Reply};
use crate::kernel::resolve::Walker;
use crate::supervisor::files::FileTable;
use crate::supervisor::fileset::FileSet;
use crate::supervisor::handlers::{self, Action, Ctx};
use crate::supervisor::nested::Sources;
use crate::supervisor::ratelimit::RateLimit;
use crate::supervisor::setid;
use crate::supervisor::stats::{ContainerCounters, Outcome, Stats};
use crate::supervisor::sysctls::SysctlStore;

/// Epoll token of the worker's eventfd (entries use their index).
const WAKE_TOKEN: u64 = u64::MAX;
/// How soon an untaken kick is repeated.
pub const KICK_RETRY: Duration = Duration::from_millis(10);

/// State shared by every loop of the supervisor.
#[derive(Debug)]
pub struct Shared {
    pub files: FileTable,
    pub table: SyscallTable,
    pub stats: Stats,
    /// `syscont-runc`'s data directory (where containers' root file
    /// systems are mounted), if known.
    pub data_dir: Option<std::path::PathBuf>,
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
    pending: Arc<AtomicBool>,
    direct: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<()>,
    /// When the worker was last told to look, until it has.
    kicked_at: Option<Instant>,
    /// Sequence number of the last fd sent.
    pub sent: u64,
}

impl WorkerHandle {
    /// Hand a new process over. Fails if the worker is gone.
    pub fn send(&mut self, mut p: NewProcess) -> Result<(), NewProcess> {
        self.sent += 1;
        p.seq = self.sent;
        self.tx.send(p).map_err(|e| e.0)?;
        self.kick();
        Ok(())
    }

    /// Make the worker look at its channel, its stop flag and its
    /// listeners' hang-ups, whether it waits in epoll or in a receive.
    pub fn kick(&mut self) {
        self.pending.store(true, SeqCst);
        let _ = self.waker.write(1);
        if self.direct.load(SeqCst) {
            crate::kernel::signal::wake(self.thread.as_pthread_t());
        }
        self.kicked_at = Some(Instant::now());
    }

    /// Repeat the wake signal if the worker has not taken the last kick
    /// within `KICK_RETRY` (the signal can land just before it blocks).
    /// Returns when to look again, if a kick is still outstanding.
    pub fn retry_kick(&mut self, now: Instant) -> Option<Instant> {
        let at = self.kicked_at?;
        if !self.pending.load(SeqCst) {
            self.kicked_at = None;
            return None;
        }
        if now.duration_since(at) >= KICK_RETRY {
            crate::kernel::signal::wake(self.thread.as_pthread_t());
            self.kicked_at = Some(now);
            return Some(now + KICK_RETRY);
        }
        Some(at + KICK_RETRY)
    }

    /// Make the worker exit after the call it is answering; returns its
    /// thread to wait for.
    pub fn stop(mut self) -> std::thread::JoinHandle<()> {
        self.stop.store(true, SeqCst);
        self.kick();
        self.thread
    }

    /// Tell the worker to exit once it sees the channel closed.
    pub fn close(self) {
        let WorkerHandle {
            tx,
            waker,
            pending,
            direct,
            thread,
            ..
        } = self;
        drop(tx);
        pending.store(true, SeqCst);
        let _ = waker.write(1);
        if direct.load(SeqCst) {
            crate::kernel::signal::wake(thread.as_pthread_t());
        }
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
    /// Raised by the main loop when the worker has something to look at.
    pending: Arc<AtomicBool>,
    /// Set while the worker may be blocked in a receive (direct mode).
    direct: Arc<AtomicBool>,
    rx: Receiver<NewProcess>,
    to_main: Sender<ToMain>,
    main_waker: Arc<Waker>,
    entries: Vec<Option<Entry>>,
    live: usize,
    received: u64,
    /// The container's emulation source, and those of inner cgroups.
    sources: Sources,
    /// A source was already tried from a trapped process (no init pid known).
    source_fallback_tried: bool,
    injected: FileSet,
    verified: FileSet,
    /// Made on the worker's own thread (it changes that thread's root).
    walker: Option<Walker>,
    buf: Vec<u8>,
    log: RateLimit,
    /// The container's root file system, for the set-id policy.
    setid: Option<setid::Scope>,
    setid_log: RateLimit,
    /// The container's own values of the emulated sysctls.
    sysctls: SysctlStore,
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
    let pending = Arc::new(AtomicBool::new(false));
    let direct = Arc::new(AtomicBool::new(false));
    let epoll = Epoll::new()?;
    epoll.add(waker.as_fd(), WAKE_TOKEN)?;
    let counters = shared.stats.container(&id);
    let sysctls = SysctlStore::load(shared.data_dir.as_deref(), &id);
    let mut w = Worker {
        id: id.clone(),
        key,
        shared,
        counters,
        wake: waker.clone(),
        epoll,
        stop: stop.clone(),
        pending: pending.clone(),
        direct: direct.clone(),
        rx,
        to_main,
        main_waker,
        entries: Vec::new(),
        live: 0,
        received: 0,
        sources: Sources::default(),
        source_fallback_tried: false,
        injected: FileSet::default(),
        verified: FileSet::default(),
        walker: None,
        buf: Vec::with_capacity(16 * 1024),
        log: RateLimit::new(10, Duration::from_secs(6)),
        setid: None,
        setid_log: RateLimit::new(10, Duration::from_secs(6)),
        sysctls,
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
        pending,
        direct,
        thread,
        kicked_at: None,
        sent: 0,
    })
}

impl Worker {
    fn run(&mut self) {
        self.walker = Some(Walker::for_this_thread());
        let mut buf = Vec::with_capacity(64);
        let mut ready = Vec::with_capacity(64);
        // After a receive error in direct mode, one round goes through epoll.
        let mut avoid_direct = false;
        loop {
            if self.pending.swap(false, SeqCst) && !self.on_pending() {
                tracing::debug!(container = %self.id, "worker exits");
                return;
            }
            if self.stop.load(SeqCst) {
                return;
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
            if self.live == 1 && !avoid_direct {
                // Direct mode: block in the receive itself (the cheapest
                // loop the kernel allows). The main loop interrupts it with
                // the wake signal when there is anything else to do; it
                // looks at `direct` after raising `pending`, so a wake is
                // never lost (and it repeats the signal until `pending` is
                // taken, for a signal that lands just before the ioctl).
                self.direct.store(true, SeqCst);
                if self.pending.load(SeqCst) {
                    continue;
                }
                let Some(idx) = self.entries.iter().position(Option::is_some) else {
                    continue;
                };
                if self.serve_one(idx) == Received::Failed {
                    avoid_direct = true;
                }
                continue;
            }
            self.direct.store(false, SeqCst);
            avoid_direct = false;
            if let Err(e) = self.epoll.wait(&mut buf, &mut ready, -1) {
                if e.kind() != io::ErrorKind::Interrupted {
                    tracing::error!(container = %self.id, error = %e, "epoll_wait failed; worker stops");
                    return;
                }
                continue;
            }
            for r in &ready {
                if r.token == WAKE_TOKEN {
                    let _ = self.wake.read();
                } else if r.readable {
                    self.serve_one(r.token as usize);
                } else if r.hangup {
                    self.remove(r.token as usize);
                }
            }
        }
    }

    /// The main loop raised `pending`: take new processes, drop listeners
    /// that hung up, see `stop`. False once the worker should exit.
    fn on_pending(&mut self) -> bool {
        let _ = self.wake.read();
        if !self.take_new() {
            return false;
        }
        let gone: Vec<usize> = self
            .entries
            .iter()
            .enumerate()
            .filter_map(|(i, e)| e.as_ref().map(|e| (i, e)))
            .filter(|(_, e)| e.fd.readiness() == Readiness::Gone)
            .map(|(i, _)| i)
            .collect();
        for i in gone {
            self.remove(i);
        }
        true
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
        if p.is_init || !self.sources.has_outer() {
            let pid = if p.init_pid > 0 { p.init_pid } else { p.pid };
            match ContainerSource::for_init_pid(pid) {
                Ok(s) => self.sources.set_outer(s, pid as u32),
                Err(e) => {
                    tracing::warn!(container = %self.id, pid, error = %e, "cannot read the container's cgroup and start time")
                }
            }
        }
        // The root file system, for the set-id policy: from the host (see
        // `setid`), again at each start of the container.
        if p.is_init || self.setid.is_none() {
            let pid = if p.init_pid > 0 { p.init_pid } else { p.pid };
            if let Ok(pid) = u32::try_from(pid) {
                let data_dir = self.shared.data_dir.as_deref();
                self.setid = Some(setid::Scope::for_container(&self.id, data_dir, pid));
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
        // A call the previous supervisor received and never answered (it
        // was killed): served now, from its in-flight record.
        let unanswered = self.entries[idx]
            .as_mut()
            .and_then(|e| e.fd.take_unanswered());
        if let Some(n) = unanswered {
            tracing::info!(container = %self.id, pid = n.pid, nr = n.nr, "serving a call the previous supervisor received but did not answer");
            self.counters.recovered.fetch_add(1, Relaxed);
            self.answer(idx, n);
        }
    }

    fn remove(&mut self, idx: usize) {
        if let Some(e) = self.entries.get_mut(idx).and_then(Option::take) {
            self.epoll.remove(e.fd.as_fd());
            tracing::debug!(container = %self.id, pid = e.pid, "process gone; fd released");
            self.live -= 1;
            self.counters.fds_active.fetch_sub(1, Relaxed);
        }
    }

    /// Receive and answer one notification of entry `idx`. In epoll mode
    /// one is pending, so the receive does not block; in direct mode it
    /// blocks until a call arrives or the wake signal interrupts it.
    fn serve_one(&mut self, idx: usize) -> Received {
        let Some(entry) = self.entries.get_mut(idx).and_then(Option::as_mut) else {
            return Received::Nothing;
        };
        let n = match entry.fd.recv() {
            Ok(n) => n,
            Err(e) if e.errno() == Some(libc::ENOENT) || e.errno() == Some(libc::EINTR) => {
                return Received::Nothing;
            }
            Err(e) => {
                if let Some(skipped) = self.log.allow() {
                    tracing::warn!(container = %self.id, error = %e, skipped, "receive failed");
                }
                return Received::Failed;
            }
        };
        self.answer(idx, n);
        Received::Served
    }

    /// Decide and send the answer to notification `n` of entry `idx`.
    fn answer(&mut self, idx: usize, n: Notification) {
        // A sysctl written just before (kernel.hostname: the writer's next
        // program must see the name).
        self.sysctls.harvest_recent(&self.id);
        {
            let Some(entry) = self.entries.get(idx).and_then(Option::as_ref) else {
                return;
            };
            let started = Instant::now();
            if !self.sources.has_outer() && !self.source_fallback_tried {
                // No init pid was known (e.g. crun's exec payload): use the
                // trapped process's cgroup, once.
                self.source_fallback_tried = true;
                if let Ok(s) = ContainerSource::for_init_pid(n.pid as i32) {
                    self.sources.set_outer(s, n.pid);
                }
            }
            let sys = self.shared.table.lookup(n.arch, n.nr);
            let orig = entry
                .meta
                .as_ref()
                .and_then(|m| m.orig_action(sys.name()))
                .unwrap_or(OrigAction::Allow);
            let no_scope = setid::Scope::default();
            let action = match (orig, self.walker.as_ref()) {
                (OrigAction::Errno { errno }, _) => Action::Errno(errno as i32),
                (OrigAction::Allow, None) => Action::Continue,
                (OrigAction::Allow, Some(walker)) => {
                    let mut ctx = Ctx {
                        container: &self.id,
                        nfd: &entry.fd,
                        notif: &n,
                        sys,
                        files: &self.shared.files,
                        sources: &mut self.sources,
                        counters: &self.counters,
                        buf: &mut self.buf,
                        injected: &mut self.injected,
                        walker,
                        verified: &mut self.verified,
                        setid: self.setid.as_ref().unwrap_or(&no_scope),
                        log: &mut self.setid_log,
                        sysctls: &mut self.sysctls,
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
                            if let Some(file) = file {
                                self.counters.served(file);
                            }
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

/// What one receive gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Received {
    Served,
    /// Interrupted, or the caller went away first.
    Nothing,
    Failed,
}

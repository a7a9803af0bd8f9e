//! [`ContainerSource`]: one container's view. It keeps what does not change
//! (the init's start time, the cgroup directory fds, the host file paths)
//! and the lazily updated load average, and re-reads the cgroup figures and
//! the host's files on every render, so that readers that rewind see fresh
//! values. The files are kept open and re-read with `pread` at offset 0
//! (see [`HostFiles`] and `crate::cgroup`), and a render reads only the
//! files its content needs.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use super::clock::{clk_tck, ticks_to_ns, Clock};
use super::host::{self, read_into, HostFile, HostFiles, HostMeminfo, HostPaths};
use super::loadavg::LoadState;
use super::tasks::{self, TaskCounts};
use super::{
    cpu_online, cpuinfo, diskstats, loadavg, meminfo, stat, swaps, sysinfo, uptime, EmulateError,
    EmulatedFile, SysinfoFigures,
};
use crate::cgroup::{Cgroup, CpuDetail, CpuStats};

/// Reused buffers: one render allocates nothing once they have grown.
#[derive(Default)]
struct Scratch {
    host: Vec<u8>,
    cg: Vec<u8>,
    tids: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

fn with_scratch<T>(f: impl FnOnce(&mut Scratch) -> T) -> T {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => f(&mut s),
        // Only reachable by re-entrance; a fresh scratch is still correct.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// Per-container source of emulated content.
pub struct ContainerSource {
    host: Arc<HostFiles>,
    cgroup: Cgroup,
    init_start_ns: u64,
    clock: Clock,
    tck: u64,
    load: Mutex<LoadState>,
}

impl std::fmt::Debug for ContainerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ContainerSource")
            .field("cgroup", &self.cgroup)
            .field("init_start_ns", &self.init_start_ns)
            .finish_non_exhaustive()
    }
}

/// Start time of `pid` in ns since boot, from `<proc>/<pid>/stat`.
pub fn init_start_ns(host_proc: &Path, pid: i32, tck: u64) -> Result<u64, EmulateError> {
    let path = host_proc.join(format!("{pid}/stat"));
    let mut buf = Vec::with_capacity(512);
    read_into(&path, &mut buf)?;
    let ticks = host::stat_starttime(&buf)
        .ok_or_else(|| host::malformed(&path, "no starttime (field 22)"))?;
    Ok(ticks_to_ns(ticks, tck))
}

/// Task counts as procfs shows them to a reader: the reader itself is
/// running (procfs counts it), but here it waits in its trapped open, so it
/// was counted as sleeping.
fn for_reader(mut c: TaskCounts) -> TaskCounts {
    c.running = c.running.saturating_add(1).min(c.total.max(1));
    c
}

impl ContainerSource {
    /// Build the source for the container whose init has host pid `pid`.
    pub fn for_init_pid(pid: i32) -> Result<Self, EmulateError> {
        let proc_root = Path::new("/proc");
        let cgroup = Cgroup::for_pid(pid)?;
        let start = init_start_ns(proc_root, pid, clk_tck())?;
        let s = Self::with_roots(
            proc_root.to_owned(),
            PathBuf::from("/sys"),
            cgroup,
            start,
            Clock::Boottime,
        )?;
        tracing::debug!(pid, cgroup = ?s.cgroup, init_start_ns = start, "container source ready");
        Ok(s)
    }

    /// Build a source from explicit parts: the host's procfs and sysfs
    /// roots, the container's cgroup, its init's start (ns since boot, on
    /// `clock`) and the clock. Used by tests with fixture trees.
    pub fn with_roots(
        host_proc: PathBuf,
        host_sys: PathBuf,
        cgroup: Cgroup,
        init_start_ns: u64,
        clock: Clock,
    ) -> Result<Self, EmulateError> {
        let now = clock.now_ns()?;
        let host = if host_proc == Path::new("/proc") && host_sys == Path::new("/sys") {
            HostFiles::shared_default()
        } else {
            Arc::new(HostFiles::new(HostPaths::new(&host_proc, &host_sys)))
        };
        Ok(ContainerSource {
            host,
            cgroup,
            init_start_ns,
            clock,
            tck: clk_tck(),
            load: Mutex::new(LoadState::new(now.max(init_start_ns))),
        })
    }

    /// The container's cgroup.
    pub fn cgroup(&self) -> &Cgroup {
        &self.cgroup
    }

    /// The init's start time (ns since boot): the one per-container fact a
    /// restarted supervisor must get back to give the same uptime (pass it
    /// to [`ContainerSource::with_roots`]).
    pub fn init_start_ns(&self) -> u64 {
        self.init_start_ns
    }

    /// Fresh bytes of `file` for this container, appended to `out`. On
    /// error `out` is left as it was.
    pub fn render(&self, file: EmulatedFile, out: &mut Vec<u8>) -> Result<(), EmulateError> {
        let start = out.len();
        let r = with_scratch(|s| self.render_with(file, s, out));
        if let Err(e) = &r {
            // Never hand out half a file.
            out.truncate(start);
            tracing::debug!(file = file.name(), error = %e, "render failed");
        }
        r
    }

    /// Fresh `sysinfo(2)` figures for this container.
    pub fn sysinfo(&self) -> Result<SysinfoFigures, EmulateError> {
        with_scratch(|s| {
            let mem = self.mem_figures(s)?;
            let now = self.clock.now_ns()?;
            // procs needs only the task list; task states (one file per
            // task) are read only when a load period has passed.
            self.cgroup.tasks(&mut s.cg, &mut s.tids)?;
            let loads = if self.cgroup.is_root() {
                // The host's own processes: the host's load, as loadavg.
                self.host.read(HostFile::Loadavg, &mut s.host)?;
                loadavg::parse_host_loads(&s.host)
                    .ok_or_else(|| host::malformed(&self.host.paths.loadavg, "no three loads"))?
            } else if self.lock_load().due(now) {
                let counts = tasks::count(&self.host.paths.proc_root, &s.tids, &mut s.host);
                self.load_at(now, &counts).sysinfo_loads()
            } else {
                self.lock_load().sysinfo_loads()
            };
            let counts = TaskCounts {
                total: u32::try_from(s.tids.len()).unwrap_or(u32::MAX),
                ..TaskCounts::default()
            };
            Ok(sysinfo::figures(
                &mem,
                loads,
                now.saturating_sub(self.init_start_ns),
                &counts,
            ))
        })
    }

    fn mem_figures(&self, s: &mut Scratch) -> Result<meminfo::MemFigures, EmulateError> {
        self.host.read(HostFile::Meminfo, &mut s.host)?;
        let host = HostMeminfo::parse(&s.host, &self.host.paths.meminfo)?;
        let m = self.cgroup.memory(&mut s.cg)?;
        Ok(meminfo::figures(&host, &m))
    }

    fn task_counts(&self, s: &mut Scratch) -> Result<TaskCounts, EmulateError> {
        self.cgroup.tasks(&mut s.cg, &mut s.tids)?;
        Ok(tasks::count(
            &self.host.paths.proc_root,
            &s.tids,
            &mut s.host,
        ))
    }

    fn lock_load(&self) -> std::sync::MutexGuard<'_, LoadState> {
        // A panic elsewhere cannot leave a LoadState half-updated in a way
        // that matters: keep serving it.
        self.load.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The load state brought up to `now` with `counts` (the lock is not
    /// held while the counts are read).
    fn load_at(&self, now: u64, counts: &TaskCounts) -> LoadState {
        let mut st = self.lock_load();
        st.update(now, counts.active());
        *st
    }

    /// The usable host CPUs and the CPU figures `detail` asks for.
    fn usable_cpus(
        &self,
        s: &mut Scratch,
        detail: CpuDetail,
    ) -> Result<(Vec<u32>, CpuStats), EmulateError> {
        self.host.read(HostFile::CpuOnline, &mut s.host)?;
        let online = host::parse_online(&s.host, &self.host.paths.cpu_online)?;
        let cpu = self.cgroup.cpu_detail(&mut s.cg, detail)?;
        Ok((cpu_online::usable_cpus(&online, &cpu), cpu))
    }

    fn render_with(
        &self,
        file: EmulatedFile,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Result<(), EmulateError> {
        match file {
            EmulatedFile::Uptime => {
                let (usable, cpu) = self.usable_cpus(s, CpuDetail::Usage)?;
                let now = self.clock.now_ns()?;
                uptime::render(
                    uptime::figures(now, self.init_start_ns, usable.len(), cpu.usage_ns),
                    out,
                );
            }
            EmulatedFile::Meminfo => {
                self.host.read(HostFile::Meminfo, &mut s.host)?;
                let m = self.cgroup.memory(&mut s.cg)?;
                meminfo::render(&s.host, &self.host.paths.meminfo, &m, out)?;
            }
            EmulatedFile::Cpuinfo => {
                let (usable, _) = self.usable_cpus(s, CpuDetail::Limits)?;
                self.host.read(HostFile::Cpuinfo, &mut s.host)?;
                cpuinfo::render(&s.host, &usable, out);
            }
            EmulatedFile::Stat => {
                let (usable, cpu) = self.usable_cpus(s, CpuDetail::Full)?;
                let counts = for_reader(self.task_counts(s)?);
                let now = self.clock.now_ns()?;
                self.host.read(HostFile::Stat, &mut s.host)?;
                stat::render(
                    &s.host,
                    &usable,
                    &cpu,
                    now.saturating_sub(self.init_start_ns),
                    self.tck,
                    &counts,
                    out,
                );
            }
            EmulatedFile::Loadavg => {
                if self.cgroup.is_root() {
                    // The host's own processes: the host's load.
                    self.host.read(HostFile::Loadavg, &mut s.host)?;
                    out.extend_from_slice(&s.host);
                } else {
                    let counts = self.task_counts(s)?;
                    let load = self.load_at(self.clock.now_ns()?, &counts);
                    loadavg::render(&load, &for_reader(counts), out);
                }
            }
            EmulatedFile::Swaps => {
                let mem = self.mem_figures(s)?;
                self.host.read(HostFile::Swaps, &mut s.host)?;
                swaps::render(&s.host, &mem, out);
            }
            EmulatedFile::Diskstats => {
                let blkio = self.cgroup.blkio(&mut s.cg)?;
                self.host.read(HostFile::Diskstats, &mut s.host)?;
                diskstats::render(&s.host, &blkio, self.cgroup.is_root(), out);
            }
            EmulatedFile::CpuOnline | EmulatedFile::CpuPossible | EmulatedFile::CpuPresent => {
                let (usable, _) = self.usable_cpus(s, CpuDetail::Limits)?;
                cpu_online::render(usable.len(), out);
            }
        }
        Ok(())
    }
}

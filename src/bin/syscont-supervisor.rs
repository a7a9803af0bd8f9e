//! `syscont-supervisor`: the per-host daemon that serves every system
//! container's seccomp notifications (see `syscont::supervisor`).

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Parser;
use syscont::agent_meta;
use syscont::runtime::{idrange, lifecycle};
use syscont::supervisor::reaper;
use syscont::supervisor::server::Server;
use syscont::supervisor::stats::Snapshot;

/// Serve container-relative /proc, /sys and sysinfo(2) to system containers.
#[derive(Parser, Debug)]
#[command(name = "syscont-supervisor", version)]
struct Args {
    /// Directory holding every socket the supervisor serves (made 0700).
    #[arg(long, default_value = agent_meta::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Per-container host state and the id pool (syscont-runc's
    /// --syscont-data-dir): containers that are gone are freed from here.
    #[arg(long, default_value = syscont::runtime::argv::DEFAULT_DATA_DIR)]
    data_dir: PathBuf,
    /// Do not add the "syscont" entries to /etc/subuid and /etc/subgid
    /// when they are missing.
    #[arg(long)]
    no_subid_setup: bool,
    /// Print what the running supervisor is doing, then exit.
    #[arg(long)]
    stats: bool,
    /// With --stats: print JSON instead of a table.
    #[arg(long, requires = "stats")]
    json: bool,
    /// Run as the fd holder (started by the supervisor itself).
    #[arg(long, hide = true)]
    fd_holder: bool,
    /// Do not keep listener fds in an fd holder (a restart then fails the
    /// trapped calls of running containers with ENOSYS).
    #[arg(long)]
    no_fd_holder: bool,
}

fn print_stats(args: &Args) -> anyhow::Result<()> {
    let path = agent_meta::stats_socket(&args.state_dir);
    let mut s = std::os::unix::net::UnixStream::connect(&path)
        .with_context(|| format!("no syscont-supervisor answers on {}", path.display()))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).context("reading statistics")?;
    let snap: Snapshot = serde_json::from_slice(&buf).context("malformed statistics")?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&snap)?);
    } else {
        print!("{}", snap.to_text());
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.stats {
        return print_stats(&args);
    }
    if args.fd_holder && !nix::unistd::geteuid().is_root() {
        anyhow::bail!("the fd holder must run as root");
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYSCONT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if args.fd_holder {
        syscont::supervisor::holder::run(&args.state_dir)?;
        return Ok(());
    }
    let mut server = Server::new(&args.state_dir)?;
    server.set_data_dir(&args.data_dir);
    if !args.no_subid_setup {
        for f in [lifecycle::SUBUID, lifecycle::SUBGID] {
            match idrange::ensure_pool_entry(Path::new(f), "syscont", idrange::SETUP_POOL_IDS) {
                Ok(Some(line)) => {
                    tracing::info!(file = f, entry = %line, "added the syscont id pool")
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(file = f, error = %e, "cannot add the syscont id pool"),
            }
        }
    }
    reaper::spawn(&args.data_dir).context("starting the reaper")?;
    if !args.no_fd_holder {
        server.attach_holder();
    }
    server.run()?;
    Ok(())
}

//! The OCI runtime side: `syscont-runc`.
//!
//! `syscont-runc` has runc's command line. It takes out its own
//! `--syscont-*` options, and on `create` and `run` rewrites the bundle's
//! `config.json` before it replaces itself with the engine (runc) with the
//! remaining arguments unchanged. Every other subcommand goes straight to the
//! engine.
//!
//! - [`argv`]: runc's argument vector, syscont's options, subcommand, bundle.
//! - [`intercept`]: the intercept profile (`seccomp-profiles/intercept.json`).
//! - [`seccomp`]: the merge of NOTIFY rules into `linux.seccomp`.
//! - [`config`]: reading and atomically rewriting `config.json`.
//! - [`agent`]: the check that the supervisor listens.
//! - [`engine`]: finding and exec'ing the engine.
//! - [`lifecycle`]: the steps of `create` and `delete`.
//! - [`system`]: the system-container edits of the spec (refusals, user
//!   and cgroup namespaces, capabilities, sysctls).
//! - [`idrange`]: exclusive uid/gid ranges per container.
//! - [`store`]: per-container host state and its release.
//! - [`rootfs`]: the ID-mapped rootfs and bind mounts.
//! - [`cgroups`]: delegation of the container's cgroup directories.
//! - [`workload`]: what system software inside needs (inner engines'
//!   directories, tmpfs and `container` for an init).
//! - [`runclog`]: reporting a refusal in the engine's `--log` file.

pub mod agent;
pub mod argv;
pub mod cgroups;
pub mod config;
pub mod engine;
pub mod idrange;
pub mod intercept;
pub mod lifecycle;
pub mod rootfs;
pub mod runclog;
pub mod seccomp;
pub mod store;
pub mod system;
pub mod workload;

use std::path::PathBuf;

use crate::agent_meta::agent_socket;

/// `--syscont-intercept none`: no seccomp interception and no supervisor;
/// the container keeps every isolation of a system container.
pub const NO_INTERCEPT: &str = "none";

/// Errors of preparing a call, before the engine runs.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
    #[error(transparent)]
    Agent(#[from] agent::AgentError),
    #[error(transparent)]
    Intercept(#[from] intercept::InterceptError),
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Lifecycle(#[from] lifecycle::LifecycleError),
    #[error("bad path {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything done before the exec: find the engine and, for `create` and
/// `run`, check the supervisor, load the intercept profile and turn the
/// bundle into a system container's (in that order: nothing is written
/// unless every check passed); for `delete`, undo the container's mounts.
/// Returns the engine to exec.
pub fn prepare(inv: &argv::Invocation) -> Result<PathBuf, RuntimeError> {
    let engine = engine::resolve(inv.syscont.engine.as_deref())?;
    if let Some(process) = exec_process_file(inv) {
        // A process joining the container gets the capabilities its init
        // has (the engine writes its own defaults into the file).
        if let Err(e) = system::exec_capabilities(&process) {
            tracing::warn!(process = %process.display(), error = %e, "cannot give the exec'd process the container's capabilities");
        }
    }
    let Some(bundle) = inv.bundle() else {
        if let (
            argv::Command::Passthrough {
                subcommand: Some(s),
            },
            Some(id),
        ) = (&inv.command, inv.container_id.as_deref())
        {
            if s == "delete" {
                // The engine's delete must run even if this fails.
                if let Err(e) = lifecycle::delete(&inv.syscont.data_dir, id) {
                    tracing::warn!(container = %id, error = %e, "cannot undo the container's mounts");
                }
            }
        }
        return Ok(engine);
    };
    // runc needs an absolute listenerPath; a relative state dir is the caller's cwd's.
    let state_dir =
        std::path::absolute(&inv.syscont.state_dir).map_err(|source| RuntimeError::StateDir {
            path: inv.syscont.state_dir.clone(),
            source,
        })?;
    // `--syscont-intercept none`: a system container without the supervisor.
    let off = inv.syscont.intercept.as_deref() == Some(std::path::Path::new(NO_INTERCEPT));
    let profile = if off {
        None
    } else {
        agent::probe(&state_dir)?;
        Some(match &inv.syscont.intercept {
            Some(path) => intercept::InterceptProfile::load(path)?,
            None => intercept::InterceptProfile::builtin()?,
        })
    };
    let listener = agent_socket(&state_dir);
    let bundle_abs = std::path::absolute(bundle).map_err(|source| RuntimeError::StateDir {
        path: bundle.clone(),
        source,
    })?;
    let data_dir =
        std::path::absolute(&inv.syscont.data_dir).map_err(|source| RuntimeError::StateDir {
            path: inv.syscont.data_dir.clone(),
            source,
        })?;
    let created = lifecycle::create(&lifecycle::CreateArgs {
        id: inv.container_id.as_deref(),
        bundle: &bundle_abs,
        data_dir: &data_dir,
        ids: inv.syscont.ids,
        profile: profile.as_ref(),
        listener: &listener,
        subuid: std::path::Path::new(lifecycle::SUBUID),
        subgid: std::path::Path::new(lifecycle::SUBGID),
    })?;
    if let Some(merged) = &created.merged {
        for s in &merged.skipped {
            if s.expected {
                tracing::debug!(syscall = %s.name, reason = %s.reason, bundle = %bundle.display(), "syscall not intercepted");
            } else {
                tracing::warn!(syscall = %s.name, reason = %s.reason, bundle = %bundle.display(), "syscall not intercepted");
            }
        }
        if merged.metadata.orig.is_empty() {
            tracing::warn!(bundle = %bundle.display(), "no syscall could be intercepted; the container runs without the supervisor");
        }
    }
    tracing::debug!(
        bundle = %bundle.display(),
        uid = created.ids.uid,
        gid = created.ids.gid,
        size = created.ids.size,
        rootfs = %created.root.display(),
        copied_rootfs = created.copied_rootfs,
        mapped_binds = created.mapped_binds,
        intercepted = created.merged.as_ref().map_or(0, |m| m.metadata.orig.len()),
        "config.json rewritten"
    );
    Ok(engine)
}

/// The `--process` file of an `exec`, if any.
fn exec_process_file(inv: &argv::Invocation) -> Option<PathBuf> {
    let argv::Command::Passthrough {
        subcommand: Some(sub),
    } = &inv.command
    else {
        return None;
    };
    if sub != "exec" {
        return None;
    }
    let args = &inv.engine_args[inv.subcommand_index()? + 1..];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let a = a.to_str()?;
        if a == "--" {
            return None;
        }
        if let Some(v) = a
            .strip_prefix("--process=")
            .or_else(|| a.strip_prefix("-process="))
        {
            return Some(PathBuf::from(v));
        }
        if a == "--process" || a == "-process" || a == "-p" {
            return it.next().map(PathBuf::from);
        }
    }
    None
}

/// The arguments to exec the engine with: the caller's, unchanged, except
/// that the `kill` of a systemd container with SIGTERM (Docker's and
/// containerd's default stop signal, which systemd takes as "re-execute")
/// becomes SIGRTMIN+3, systemd's orderly shutdown.
pub fn engine_args(inv: &argv::Invocation) -> Vec<std::ffi::OsString> {
    let (Some(i), Some(id)) = (inv.subcommand_index(), inv.container_id.as_deref()) else {
        return inv.engine_args.clone();
    };
    if inv.engine_args[i] != "kill" {
        return inv.engine_args.clone();
    }
    let sub: Vec<String> = inv.engine_args[i + 1..]
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    match lifecycle::kill_args(&inv.syscont.data_dir, id, &sub) {
        Some(new) => {
            tracing::debug!(container = %id, args = ?new, "systemd container: SIGTERM sent as SIGRTMIN+3");
            let mut out = inv.engine_args[..=i].to_vec();
            out.extend(new.into_iter().map(std::ffi::OsString::from));
            out
        }
        None => inv.engine_args.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    fn inv(state: &std::path::Path, sub: &[&str]) -> argv::Invocation {
        let mut a = vec![
            "--syscont-engine".to_string(),
            "/bin/sh".to_string(),
            format!("--syscont-state-dir={}", state.display()),
        ];
        a.extend(sub.iter().map(|s| s.to_string()));
        argv::parse(a).unwrap()
    }

    #[test]
    fn create_without_supervisor_touches_nothing() {
        let state = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let cfg = bundle.path().join("config.json");
        std::fs::write(&cfg, "{}").unwrap();
        let b = bundle.path().to_str().unwrap();
        let e = prepare(&inv(state.path(), &["create", "-b", b, "id"])).unwrap_err();
        assert!(matches!(
            e,
            RuntimeError::Agent(agent::AgentError::NotRunning { .. })
        ));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "{}");
        // Other subcommands do not need the supervisor.
        assert_eq!(
            prepare(&inv(state.path(), &["delete", "id"])).unwrap(),
            PathBuf::from("/bin/sh")
        );
    }

    #[test]
    fn systemd_containers_get_their_stop_signal() {
        let state = tempfile::tempdir().unwrap();
        let data = state.path().join("data");
        let store = store::Store::new(&data);
        store.create_dir("sd").unwrap();
        store
            .save(&store::Record {
                id: "sd".into(),
                systemd: true,
                ..Default::default()
            })
            .unwrap();
        store.create_dir("plain").unwrap();
        store
            .save(&store::Record {
                id: "plain".into(),
                ..Default::default()
            })
            .unwrap();
        let args = |sub: &[&str]| {
            let mut i = inv(state.path(), sub);
            i.syscont.data_dir = data.clone();
            engine_args(&i)
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            args(&["--root", "/r", "kill", "sd", "15"]),
            ["--root", "/r", "kill", "sd", "37"]
        );
        assert_eq!(args(&["kill", "sd"]), ["kill", "sd", "37"]);
        assert_eq!(args(&["kill", "sd", "9"]), ["kill", "sd", "9"]);
        assert_eq!(args(&["kill", "plain", "15"]), ["kill", "plain", "15"]);
        assert_eq!(args(&["kill", "unknown", "15"]), ["kill", "unknown", "15"]);
        assert_eq!(args(&["delete", "sd"]), ["delete", "sd"]);
    }

    #[test]
    fn create_refusals_touch_nothing() {
        let state = tempfile::tempdir().unwrap();
        let _l = UnixListener::bind(agent_socket(state.path())).unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let cfg = bundle.path().join("config.json");
        // The host's pid namespace: refused before anything is made.
        let spec = r#"{"root":{"path":"rootfs"},"linux":{"namespaces":[{"type":"mount"},{"type":"network"},{"type":"ipc"},{"type":"uts"}]}}"#;
        std::fs::write(&cfg, spec).unwrap();
        let b = format!("--bundle={}", bundle.path().display());
        let data = state.path().join("data");
        let mut i = inv(state.path(), &["run", &b, "id"]);
        i.syscont.data_dir = data.clone();
        let e = prepare(&i).unwrap_err().to_string();
        assert!(e.contains("--pid=host"), "{e}");
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), spec);
        assert!(!data.exists());
        // A bad intercept profile fails before the config is read.
        let bad = bundle.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        i.syscont.intercept = Some(bad);
        assert!(matches!(prepare(&i), Err(RuntimeError::Intercept(_))));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), spec);
    }
}

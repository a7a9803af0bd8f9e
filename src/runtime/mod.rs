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
//! - [`idrange`]: exclusive uid/gid ranges per container (issue 3; not yet
//!   used by `create`).
//! - [`runclog`]: reporting a refusal in the engine's `--log` file.

pub mod agent;
pub mod argv;
pub mod config;
pub mod engine;
pub mod idrange;
pub mod intercept;
pub mod runclog;
pub mod seccomp;

use std::path::PathBuf;

use crate::agent_meta::agent_socket;

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
    #[error("bad --syscont-state-dir {}: {source}", path.display())]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Everything done before the exec: find the engine and, for `create` and
/// `run`, check the supervisor, load the intercept profile and rewrite the
/// bundle's `config.json` (in that order: nothing is written unless every
/// check passed). Returns the engine to exec.
pub fn prepare(inv: &argv::Invocation) -> Result<PathBuf, RuntimeError> {
    let engine = engine::resolve(inv.syscont.engine.as_deref())?;
    let Some(bundle) = inv.bundle() else {
        return Ok(engine);
    };
    // runc needs an absolute listenerPath; a relative state dir is the caller's cwd's.
    let state_dir =
        std::path::absolute(&inv.syscont.state_dir).map_err(|source| RuntimeError::StateDir {
            path: inv.syscont.state_dir.clone(),
            source,
        })?;
    agent::probe(&state_dir)?;
    let profile = match &inv.syscont.intercept {
        Some(path) => intercept::InterceptProfile::load(path)?,
        None => intercept::InterceptProfile::builtin()?,
    };
    let listener = agent_socket(&state_dir);
    let merged = config::rewrite_bundle(bundle, &profile, &listener)?;
    for s in &merged.skipped {
        tracing::warn!(syscall = %s.name, reason = %s.reason, bundle = %bundle.display(), "syscall not intercepted");
    }
    if merged.metadata.orig.is_empty() {
        tracing::warn!(bundle = %bundle.display(), "no syscall could be intercepted; the container runs without the supervisor");
    }
    tracing::debug!(
        bundle = %bundle.display(),
        intercepted = merged.metadata.orig.len(),
        created = merged.created,
        undone = merged.undone,
        "config.json rewritten"
    );
    Ok(engine)
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
    fn create_with_supervisor_rewrites() {
        let state = tempfile::tempdir().unwrap();
        let _l = UnixListener::bind(agent_socket(state.path())).unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let cfg = bundle.path().join("config.json");
        std::fs::write(&cfg, "{}").unwrap();
        let b = format!("--bundle={}", bundle.path().display());
        prepare(&inv(state.path(), &["run", &b, "id"])).unwrap();
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cfg).unwrap()).unwrap();
        assert_eq!(
            v["linux"]["seccomp"]["listenerPath"],
            agent_socket(state.path()).to_str().unwrap()
        );
        // A bad intercept profile fails before the config is touched again.
        let before = std::fs::read_to_string(&cfg).unwrap();
        let bad = bundle.path().join("bad.json");
        std::fs::write(&bad, "{").unwrap();
        let mut i = inv(state.path(), &["run", &b, "id"]);
        i.syscont.intercept = Some(bad);
        assert!(matches!(prepare(&i), Err(RuntimeError::Intercept(_))));
        assert_eq!(std::fs::read_to_string(&cfg).unwrap(), before);
    }
}

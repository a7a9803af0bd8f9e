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
//! - [`runclog`]: reporting a refusal in the engine's `--log` file.

pub mod agent;
pub mod argv;
pub mod config;
pub mod engine;
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
    agent::probe(&inv.syscont.state_dir)?;
    let profile = match &inv.syscont.intercept {
        Some(path) => intercept::InterceptProfile::load(path)?,
        None => intercept::InterceptProfile::builtin()?,
    };
    let listener = agent_socket(&inv.syscont.state_dir);
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

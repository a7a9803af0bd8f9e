//! The low-level runtime that does the work (runc by default, crun optional).
//!
//! This module owns finding the engine binary and replacing this process with
//! it: `exec(2)`, not spawn-and-proxy, so stdin, stdout, stderr, signals, the
//! process id Docker's shim waits for, and the exit status are the engine's own.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The engine used when `--syscont-engine` is not given.
pub const DEFAULT_ENGINE: &str = "runc";

/// `PATH` when the environment has none (what execvp(3) would use, plus sbin).
const FALLBACK_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Errors of finding and starting the engine.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "the engine {name:?} was not found in PATH; install runc or give --syscont-engine PATH"
    )]
    NotInPath { name: String },
    #[error("the engine {} is not an executable file", path.display())]
    NotExecutable { path: PathBuf },
    #[error("the engine {} is syscont-runc itself; give the real runtime with --syscont-engine PATH", path.display())]
    IsSelf { path: PathBuf },
    #[error("cannot execute the engine {}: {source}", path.display())]
    Exec {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn is_executable_file(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Resolve the engine: a name containing `/` is used as given, a bare name is
/// looked up in `path_var` (the `PATH` value).
pub fn resolve_with(
    engine: Option<&Path>,
    path_var: Option<&std::ffi::OsStr>,
) -> Result<PathBuf, EngineError> {
    let name = engine.unwrap_or(Path::new(DEFAULT_ENGINE));
    let found = if name.as_os_str().as_encoded_bytes().contains(&b'/') {
        if !is_executable_file(name) {
            return Err(EngineError::NotExecutable {
                path: name.to_path_buf(),
            });
        }
        name.to_path_buf()
    } else {
        let path_var = path_var
            .map(OsString::from)
            .unwrap_or_else(|| FALLBACK_PATH.into());
        std::env::split_paths(&path_var)
            .filter(|d| !d.as_os_str().is_empty())
            .map(|d| d.join(name))
            .find(|p| is_executable_file(p))
            .ok_or_else(|| EngineError::NotInPath {
                name: name.to_string_lossy().into_owned(),
            })?
    };
    // Installed as "runc" earlier in PATH, a bare lookup would find itself.
    if let (Ok(me), Ok(it)) = (
        std::env::current_exe().and_then(|p| p.canonicalize()),
        found.canonicalize(),
    ) {
        if me == it {
            return Err(EngineError::IsSelf { path: found });
        }
    }
    Ok(found)
}

/// Resolve the engine against this process's `PATH`.
pub fn resolve(engine: Option<&Path>) -> Result<PathBuf, EngineError> {
    resolve_with(engine, std::env::var_os("PATH").as_deref())
}

/// Replace this process with the engine. Returns only on failure.
pub fn exec(engine: &Path, args: &[OsString]) -> EngineError {
    tracing::debug!(engine = %engine.display(), argc = args.len(), "exec engine");
    let source = Command::new(engine).args(args).exec();
    EngineError::Exec {
        path: engine.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn finds_in_path_and_by_path() {
        let dir = tempfile::tempdir().unwrap();
        let fake = dir.path().join("runc");
        std::fs::write(&fake, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
        let pv = format!("/nonexistent::{}", dir.path().display());
        assert_eq!(resolve_with(None, Some(OsStr::new(&pv))).unwrap(), fake);
        assert_eq!(resolve_with(Some(&fake), None).unwrap(), fake);
    }

    #[test]
    fn clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = resolve_with(None, Some(dir.path().as_os_str())).unwrap_err();
        assert!(matches!(e, EngineError::NotInPath { .. }));
        assert!(e.to_string().contains("--syscont-engine"));
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        assert!(matches!(
            resolve_with(Some(&plain), None),
            Err(EngineError::NotExecutable { .. })
        ));
        assert!(matches!(
            resolve_with(Some(dir.path()), None),
            Err(EngineError::NotExecutable { .. })
        ));
    }

    #[test]
    fn refuses_itself() {
        let me = std::env::current_exe().unwrap();
        assert!(matches!(
            resolve_with(Some(&me), None),
            Err(EngineError::IsSelf { .. })
        ));
    }

    #[test]
    fn exec_failure_is_reported() {
        let e = exec(Path::new("/nonexistent/engine"), &[]);
        assert!(e.to_string().contains("/nonexistent/engine"));
    }
}

//! `syscont-runc`: runc's command line, with the bundle's `config.json`
//! rewritten on `create` and `run`, then exec(2) of the engine.
//!
//! Thin: parse, prepare, exec. Errors are one line on stderr and exit status
//! 1; stdout stays the engine's alone.

use std::process::ExitCode;

use syscont::runtime::{self, argv, engine, runclog};

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SYSCONT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}

fn run() -> anyhow::Result<std::convert::Infallible> {
    let inv = argv::parse(std::env::args_os().skip(1))?;
    let engine = match runtime::prepare(&inv) {
        Ok(engine) => engine,
        Err(e) => {
            if inv.bundle().is_some() {
                if let Some(log) = &inv.log_file {
                    if let Err(le) =
                        runclog::append_error(log, inv.log_format.as_deref(), &e.to_string())
                    {
                        tracing::warn!(error = %le, "cannot record the error in the runtime log");
                    }
                }
            }
            return Err(e.into());
        }
    };
    Err(engine::exec(&engine, &runtime::engine_args(&inv)).into())
}

fn main() -> ExitCode {
    init_logging();
    match run() {
        Ok(never) => match never {},
        Err(e) => {
            // Every error's own message already names its cause.
            eprintln!("syscont-runc: {e}");
            ExitCode::FAILURE
        }
    }
}

//! `babymdd`: see `babymdd --help` and the crate documentation.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = babymdd::cli::Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(babymdd::cli::log_filter(&args))
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, not in journald or a test's log file.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match babymdd::cli::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "babymdd stopped");
            ExitCode::from(e.exit_code())
        }
    }
}

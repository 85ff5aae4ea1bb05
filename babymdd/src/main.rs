//! `babymdd`: see `babymdd --help` and the crate documentation.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = babymdd::cli::Args::parse();
    let _logging = mipsock::daemon::Logging::init(babymdd::cli::log_level(&args));
    match babymdd::cli::main(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "babymdd stopped");
            ExitCode::from(e.exit_code())
        }
    }
}

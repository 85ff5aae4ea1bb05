//! `mipsock`: tap, inject and state on the mobility socket bus.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = mipsock::cli::Cli::parse();
    let _logging = nemo_daemon::Logging::init("warn");
    match mipsock::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mipsock: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

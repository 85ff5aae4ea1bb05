//! `babymdd`: see `babymdd --help` and the crate documentation.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let args = babymdd::cli::Args::parse();
    let _logging = nemo_daemon::Logging::init(babymdd::cli::log_level(&args));
    nemo_daemon::finish("babymdd", babymdd::cli::main(args))
}

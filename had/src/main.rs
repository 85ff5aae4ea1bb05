//! `had [-d] [-f] [-n] [-c file] [-b busdir] homeif`: the NEMO home agent daemon.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = had::shell::Cli::parse();
    let logging = had::shell::init_logging(cli.debug);
    nemo_daemon::finish("had", had::shell::run(cli, logging))
}

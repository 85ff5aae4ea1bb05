//! `mrd [-d] [-f] [-n] [-c file] [-a ha-address] [-b busdir] ifname`: the NEMO mobile
//! router daemon.

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = mrd::shell::Cli::parse();
    let logging = mrd::shell::init_logging(cli.debug);
    nemo_daemon::finish("mrd", mrd::shell::run(cli, logging))
}

use clap::Parser;
use nemonetd::config::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    nemo_daemon::finish("nemonetd", nemonetd::run(cli))
}

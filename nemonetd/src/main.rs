use clap::Parser;
use nemonetd::config::Cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match nemonetd::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("nemonetd: {e}");
            e.exit_code()
        }
    }
}

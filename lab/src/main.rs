//! `nemo-lab`: see the crate docs and `nemo-lab --help`.

fn main() -> std::process::ExitCode {
    lab::cli::main()
}

//! `mnd [-d] [-f] [-n] [-c file] [-a ha-address] [-b busdir] ifname`: the Mobile IPv6
//! mobile host daemon, SHISA's mnd — mrd registering its home address alone (RFC 6275).

fn main() -> std::process::ExitCode {
    let cli = mrd::shell::mnd_cli();
    let logging = mrd::shell::init_logging(cli.debug);
    nemo_daemon::finish("mnd", mrd::shell::run(cli, logging))
}

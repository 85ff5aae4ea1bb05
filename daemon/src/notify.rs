//! Readiness for systemd (`Type=notify`): `READY=1` to the datagram socket named by
//! `$NOTIFY_SOCKET` (sd_notify(3)), written by hand, once the daemon has its sockets and
//! its bus endpoint, so units ordered after it start against a daemon that listens. Without
//! `$NOTIFY_SOCKET` (rc.d scripts, a terminal, tests) nothing is sent.

use std::ffi::OsStr;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;

/// The environment variable systemd sets for `Type=notify` services.
pub const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` (newline-separated `KEY=VALUE` assignments) to `socket`: a path, or an
/// abstract address written `@name` (sd_notify(3)'s convention).
///
/// # Errors
/// The socket address is empty or not a Unix one (e.g. `vsock:`), or the send failed.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let sock = UnixDatagram::unbound()?;
    match bytes.first() {
        None => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "empty $NOTIFY_SOCKET",
        )),
        Some(b'@') => {
            use std::os::linux::net::SocketAddrExt;
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(&bytes[1..])?;
            sock.send_to_addr(state.as_bytes(), &addr).map(drop)
        }
        Some(b'/') => sock.send_to(state.as_bytes(), socket).map(drop),
        Some(_) => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "$NOTIFY_SOCKET {} is not a Unix socket address",
                socket.to_string_lossy()
            ),
        )),
    }
}

/// Sends `state` to `$NOTIFY_SOCKET`. Returns whether there was a socket to tell.
///
/// # Errors
/// See [`notify_to`].
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(NOTIFY_SOCKET) {
        Some(s) => notify_to(&s, state).map(|()| true),
        None => Ok(false),
    }
}

/// `READY=1`: the daemon is up. A failure is logged, never fatal (the daemon works; only
/// systemd's view of it is late, and its start timeout says so).
pub fn ready() {
    if let Err(e) = notify("READY=1") {
        tracing::warn!(error = %e, "readiness not notified to $NOTIFY_SOCKET");
    }
}

/// `STOPPING=1`: the daemon is stopping (its teardown may take a moment). Logged on failure.
pub fn stopping() {
    if let Err(e) = notify("STOPPING=1") {
        tracing::debug!(error = %e, "stopping not notified to $NOTIFY_SOCKET");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_reaches_a_socket_bound_at_a_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn ready_reaches_an_abstract_socket() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("nemo-daemon-test-{}", std::process::id());
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let mut buf = [0; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }

    #[test]
    fn addresses_that_are_not_unix_sockets_are_refused() {
        assert!(notify_to(OsStr::new(""), "READY=1").is_err());
        assert_eq!(
            notify_to(OsStr::new("vsock:2:1234"), "READY=1")
                .unwrap_err()
                .kind(),
            io::ErrorKind::Unsupported
        );
        // Nobody bound there.
        let dir = tempfile::tempdir().unwrap();
        assert!(notify_to(dir.path().join("none").as_os_str(), "READY=1").is_err());
    }
}

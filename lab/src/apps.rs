//! The small programs the lab runs inside namespaces (as `nemo-lab <subcommand>`): a line
//! echo server and its interactive client (an SSH-like session), a web server and client,
//! and the UDP flow of the handover experiment (250-byte packets every 5 ms).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::now_ns;

fn stop(file: &Path) -> bool {
    file.exists()
}

/// Echoes every line back, one thread per connection.
pub fn serve_echo(port: u16) -> std::io::Result<()> {
    let l = TcpListener::bind(("::", port))?;
    eprintln!("echo server on [::]:{port}");
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        std::thread::spawn(move || {
            let peer = c.peer_addr().map(|a| a.to_string()).unwrap_or_default();
            eprintln!("session from {peer}");
            let mut r = BufReader::new(c.try_clone().expect("clone"));
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if c.write_all(line.as_bytes()).is_err() {
                    break;
                }
                line.clear();
            }
            eprintln!("session from {peer} closed");
        });
    }
    Ok(())
}

/// A one-page web server; the page names the client's address (no NAT in the path).
pub fn serve_http(port: u16) -> std::io::Result<()> {
    let l = TcpListener::bind(("::", port))?;
    eprintln!("web server on [::]:{port}");
    for conn in l.incoming() {
        let Ok(mut c) = conn else { continue };
        let peer = c
            .peer_addr()
            .map(|a| match a.ip() {
                std::net::IpAddr::V6(v6) => v6
                    .to_ipv4_mapped()
                    .map(|v4| v4.to_string())
                    .unwrap_or_else(|| v6.to_string()),
                ip => ip.to_string(),
            })
            .unwrap_or_default();
        let mut buf = [0u8; 2048];
        let _ = c.set_read_timeout(Some(Duration::from_secs(5)));
        let _ = c.read(&mut buf);
        let body = format!(
            "<html><body><h1>Hello from the correspondent node</h1><p>You are {peer}.</p></body></html>\n"
        );
        let resp = format!(
            "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let _ = c.write_all(resp.as_bytes());
        eprintln!("GET from {peer}");
    }
    Ok(())
}

/// Fetches `/` from `to`; prints the status line and the body. Ok if 200.
pub fn http_get(to: SocketAddr) -> std::io::Result<bool> {
    let mut c = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(format!("GET / HTTP/1.0\r\nHost: {to}\r\n\r\n").as_bytes())?;
    let mut resp = String::new();
    c.read_to_string(&mut resp)?;
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let status = head.lines().next().unwrap_or_default();
    println!("{status}");
    print!("{body}");
    Ok(status.contains(" 200 "))
}

/// The interactive session: a line every `interval`, echoes checked, until `stop_file`
/// exists; then waits for the last echoes and prints a JSON summary.
pub fn echo_client(to: SocketAddr, interval: Duration, stop_file: &Path) -> std::io::Result<()> {
    let c = TcpStream::connect_timeout(&to, Duration::from_secs(5))?;
    c.set_nodelay(true)?;
    eprintln!("connected to {to} from {}", c.local_addr()?);
    #[derive(Default)]
    struct Seen {
        echoed: u64,
        wrong: u64,
        last_ns: u64,
        max_gap_ns: u64,
        closed: bool,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let reader = {
        let seen = seen.clone();
        let c = c.try_clone()?;
        std::thread::spawn(move || {
            let mut r = BufReader::new(c);
            let mut line = String::new();
            let mut expect = 0u64;
            loop {
                line.clear();
                match r.read_line(&mut line) {
                    Ok(n) if n > 0 => {}
                    _ => {
                        seen.lock().unwrap().closed = true;
                        return;
                    }
                }
                let t = now_ns();
                let mut s = seen.lock().unwrap();
                if line.trim_end() == format!("line {expect} from the mobile network") {
                    s.echoed += 1;
                } else {
                    s.wrong += 1;
                }
                expect += 1;
                if s.last_ns != 0 {
                    s.max_gap_ns = s.max_gap_ns.max(t - s.last_ns);
                }
                s.last_ns = t;
            }
        })
    };
    let mut w = c.try_clone()?;
    let mut sent = 0u64;
    let mut write_error = None;
    let start = Instant::now();
    while !stop(stop_file) {
        if let Err(e) = w.write_all(format!("line {sent} from the mobile network\n").as_bytes()) {
            write_error = Some(e.to_string());
            break;
        }
        sent += 1;
        let next = start + interval * sent as u32;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    let end = Instant::now() + Duration::from_secs(5);
    while Instant::now() < end {
        let s = seen.lock().unwrap();
        if s.echoed + s.wrong >= sent || s.closed {
            break;
        }
        drop(s);
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = c.shutdown(std::net::Shutdown::Both);
    let _ = reader.join();
    let s = seen.lock().unwrap();
    println!(
        "{}",
        serde_json::json!({
            "sent": sent,
            "echoed": s.echoed,
            "wrong": s.wrong,
            "max_gap_ms": s.max_gap_ns as f64 / 1e6,
            "write_error": write_error,
        })
    );
    Ok(())
}

/// The experiment's flow: `size`-byte UDP packets every `interval`, each carrying its
/// sequence number and send time, until `stop_file` exists.
pub fn udp_send(
    to: SocketAddr,
    interval: Duration,
    size: usize,
    stop_file: &Path,
) -> std::io::Result<()> {
    let bind: SocketAddr = if to.is_ipv6() {
        "[::]:0".parse().unwrap()
    } else {
        "0.0.0.0:0".parse().unwrap()
    };
    let s = UdpSocket::bind(bind)?;
    let mut buf = vec![0u8; size.max(16)];
    let start = Instant::now();
    let mut seq = 0u64;
    let mut errors = 0u64;
    while !stop(stop_file) {
        buf[..8].copy_from_slice(&seq.to_be_bytes());
        buf[8..16].copy_from_slice(&now_ns().to_be_bytes());
        if s.send_to(&buf, to).is_err() {
            // No route while the MR is between links: the packet is lost, as on a radio.
            errors += 1;
        }
        seq += 1;
        let next = start + interval * seq as u32;
        if let Some(d) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    }
    println!(
        "{}",
        serde_json::json!({"sent": seq, "send_errors": errors})
    );
    Ok(())
}

/// Receives the flow; writes `seq send_ns recv_ns` per packet into `log`, until `stop_file`
/// exists.
pub fn udp_recv(port: u16, log: &Path, stop_file: &Path) -> std::io::Result<()> {
    let s = UdpSocket::bind(("::", port))?;
    s.set_read_timeout(Some(Duration::from_millis(50)))?;
    let mut out = std::io::BufWriter::new(std::fs::File::create(log)?);
    let mut buf = [0u8; 2048];
    let mut n = 0u64;
    let mut flushed = Instant::now();
    loop {
        match s.recv_from(&mut buf) {
            Ok((len, _)) if len >= 16 => {
                let t = now_ns();
                let seq = u64::from_be_bytes(buf[..8].try_into().unwrap());
                let sent = u64::from_be_bytes(buf[8..16].try_into().unwrap());
                writeln!(out, "{seq} {sent} {t}")?;
                n += 1;
                // The lab reads the log while the flow runs (has it resumed?): a steady
                // flow never leaves the 50 ms of silence that flushes below.
                if flushed.elapsed() >= Duration::from_millis(100) {
                    out.flush()?;
                    flushed = Instant::now();
                }
            }
            Ok(_) => {}
            Err(_) => {
                if stop(stop_file) {
                    break;
                }
                out.flush()?;
            }
        }
    }
    out.flush()?;
    println!("{}", serde_json::json!({"received": n}));
    Ok(())
}

/// A received packet of the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rx {
    /// Sequence number.
    pub seq: u64,
    /// Sender's time, ns.
    pub sent_ns: u64,
    /// Receiver's time, ns.
    pub recv_ns: u64,
}

/// Reads a [`udp_recv`] log.
pub fn read_rx(log: &Path) -> Vec<Rx> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace().map(|x| x.parse::<u64>().ok());
            Some(Rx {
                seq: it.next()??,
                sent_ns: it.next()??,
                recv_ns: it.next()??,
            })
        })
        .collect()
}

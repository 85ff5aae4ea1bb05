//! Metrics: each daemon's counters in the OpenMetrics text format, on an opt-in local HTTP
//! listener (`--metrics ADDRESS:PORT`), for Prometheus or anything that scrapes it.
//!
//! The daemons keep their counters where they count (had's core statistics, nemonetd's
//! data plane atomics); their loop copies a snapshot into [`Published`] at most once a
//! second, and the listener renders the last snapshot on each scrape with
//! `prometheus-client`'s encoder. So a scrape never waits for the daemon's loop and never
//! touches its state. `mipsock state --json` stays the live view of bindings.
//!
//! The listener answers `GET /metrics` (and `GET /`) with the exposition, anything else
//! with 404; one request per connection, at most [`MAX_CONNECTIONS`] at once, each given
//! [`REQUEST_TIMEOUT`] to send its request head of at most [`MAX_REQUEST`] octets.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, info, warn};

/// Connections served at once; more wait in the listen queue.
pub const MAX_CONNECTIONS: usize = 16;
/// Time a client has to send its request head.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest request head read.
pub const MAX_REQUEST: usize = 8192;
/// The OpenMetrics content type (OpenMetrics 1.0 §3.1).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// What a sample counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (exposed with the `_total` suffix).
    Counter,
    /// Goes up and down.
    Gauge,
}

/// One value of one metric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// Metric name (`had_bindings`); counters get `_total` appended on exposition.
    pub name: &'static str,
    /// One line of help.
    pub help: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Labels, `(name, value)`.
    pub labels: Vec<(&'static str, String)>,
    /// The value.
    pub value: u64,
}

impl Sample {
    /// A counter without labels.
    pub fn counter(name: &'static str, help: &'static str, value: u64) -> Self {
        Sample {
            name,
            help,
            kind: Kind::Counter,
            labels: Vec::new(),
            value,
        }
    }

    /// A gauge without labels.
    pub fn gauge(name: &'static str, help: &'static str, value: u64) -> Self {
        Sample {
            kind: Kind::Gauge,
            ..Sample::counter(name, help, value)
        }
    }

    /// The same sample with one more label.
    pub fn label(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.labels.push((name, value.into()));
        self
    }
}

/// The last snapshot of a daemon's samples, shared between its loop and the listener.
#[derive(Debug, Clone, Default)]
pub struct Published(Arc<Mutex<Vec<Sample>>>);

impl Published {
    /// Replaces the snapshot.
    pub fn set(&self, samples: Vec<Sample>) {
        if let Ok(mut s) = self.0.lock() {
            *s = samples;
        }
    }

    fn get(&self) -> Vec<Sample> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Encodes a snapshot through prometheus-client on each scrape.
#[derive(Debug)]
struct Snapshot(Vec<Sample>);

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        // One descriptor per name, in first-seen order, with every sample of that name.
        let mut done: Vec<&str> = Vec::new();
        for first in &self.0 {
            if done.contains(&first.name) {
                continue;
            }
            done.push(first.name);
            let family: Vec<&Sample> = self.0.iter().filter(|s| s.name == first.name).collect();
            let metric_type = match first.kind {
                Kind::Counter => ConstCounter::new(0u64).metric_type(),
                Kind::Gauge => ConstGauge::new(0i64).metric_type(),
            };
            let mut metric =
                encoder.encode_descriptor(first.name, first.help, None, metric_type)?;
            if let [only] = family.as_slice()
                && only.labels.is_empty()
            {
                encode_value(only, metric)?;
                continue;
            }
            for s in family {
                let labels: Vec<(Cow<'_, str>, Cow<'_, str>)> = s
                    .labels
                    .iter()
                    .map(|(k, v)| (Cow::Borrowed(*k), Cow::Borrowed(v.as_str())))
                    .collect();
                encode_value(s, metric.encode_family(&labels)?)?;
            }
        }
        Ok(())
    }
}

fn encode_value(s: &Sample, m: MetricEncoder<'_>) -> Result<(), std::fmt::Error> {
    match s.kind {
        Kind::Counter => ConstCounter::new(s.value).encode(m),
        Kind::Gauge => ConstGauge::new(i64::try_from(s.value).unwrap_or(i64::MAX)).encode(m),
    }
}

/// The OpenMetrics text of `samples`, `# EOF` included.
pub fn render(samples: &[Sample]) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(samples.to_vec())));
    let mut out = String::new();
    // Writing into a String cannot fail; an encoder error leaves what was written.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Binds the listener (`--metrics`), so a bad address is a start-up error.
///
/// # Errors
/// The bind error.
pub async fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "metrics on http://{addr}/metrics");
    Ok(listener)
}

/// Binds the listener at `addr` (a bad address or a port in use is a start-up error),
/// serves it on the current runtime, and returns the snapshot the daemon publishes into,
/// holding `initial` until the first publish.
///
/// # Errors
/// The bind error.
pub async fn start(addr: SocketAddr, initial: Vec<Sample>) -> io::Result<Published> {
    let listener = bind(addr).await?;
    let published = Published::default();
    published.set(initial);
    tokio::spawn(serve(listener, published.clone()));
    Ok(published)
}

/// Serves `published` on `listener` until the process ends.
pub async fn serve(listener: TcpListener, published: Published) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                warn!(error = %e, "metrics listener accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let published = published.clone();
        tokio::spawn(async move {
            if let Err(e) = answer(stream, &published).await {
                debug!(%peer, error = %e, "metrics request not answered");
            }
            drop(permit);
        });
    }
}

/// Reads one request head and answers it.
async fn answer(mut stream: TcpStream, published: &Published) -> io::Result<()> {
    let mut head = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read = async {
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
            if head.len() > MAX_REQUEST {
                return Err(io::Error::other("request head too long"));
            }
        }
        Ok(())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, read)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "request head too slow"))??;
    let (status, content_type, body) = match route(&head) {
        Route::Metrics => ("200 OK", CONTENT_TYPE, render(&published.get())),
        Route::NotFound => (
            "404 Not Found",
            "text/plain; charset=utf-8",
            "not found: GET /metrics\n".to_string(),
        ),
    };
    let response = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[derive(Debug, PartialEq, Eq)]
enum Route {
    Metrics,
    NotFound,
}

/// `GET /metrics` or `GET /` (query strings ignored) is the exposition; anything else 404.
fn route(head: &[u8]) -> Route {
    let line = head.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, target) = (parts.next(), parts.next());
    let path = target.map(|t| t.split(|&b| b == b'?').next().unwrap_or_default());
    match (method, path) {
        (Some(b"GET"), Some(b"/metrics" | b"/")) => Route::Metrics,
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exposition_is_openmetrics_text() {
        let text = render(&[
            Sample::gauge("had_bindings", "Bindings in the cache.", 2),
            Sample::counter("had_bu_refused", "BUs refused.", 3).label("status", "146"),
            Sample::counter("had_bu_refused", "BUs refused.", 1).label("status", "135"),
        ]);
        assert!(text.contains("# TYPE had_bindings gauge\n"), "{text}");
        assert!(
            text.contains("# HELP had_bindings Bindings in the cache.\n"),
            "{text}"
        );
        assert!(text.contains("had_bindings 2\n"), "{text}");
        assert!(text.contains("# TYPE had_bu_refused counter\n"), "{text}");
        assert!(
            text.contains("had_bu_refused_total{status=\"146\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("had_bu_refused_total{status=\"135\"} 1\n"),
            "{text}"
        );
        assert_eq!(text.matches("# TYPE had_bu_refused").count(), 1, "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Route::Metrics
        );
        assert_eq!(route(b"GET /?x=1 HTTP/1.0\r\n\r\n"), Route::Metrics);
        assert_eq!(route(b"POST /metrics HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"GET /etc/passwd HTTP/1.1\r\n\r\n"), Route::NotFound);
        assert_eq!(route(b"\xff\xfe garbage"), Route::NotFound);
        assert_eq!(route(b""), Route::NotFound);
    }

    #[test]
    fn a_scrape_over_tcp() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let listener = bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
            let addr = listener.local_addr().unwrap();
            let published = Published::default();
            published.set(vec![Sample::counter("x_events", "Events.", 7)]);
            tokio::spawn(serve(listener, published.clone()));
            let get = |req: &'static [u8]| async move {
                let mut s = TcpStream::connect(addr).await.unwrap();
                s.write_all(req).await.unwrap();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap();
                out
            };
            let ok = get(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n").await;
            assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
            assert!(ok.contains(CONTENT_TYPE), "{ok}");
            assert!(ok.contains("x_events_total 7\n"), "{ok}");
            published.set(vec![Sample::counter("x_events", "Events.", 8)]);
            assert!(
                get(b"GET /metrics HTTP/1.1\r\n\r\n")
                    .await
                    .contains("x_events_total 8\n")
            );
            let nf = get(b"GET /nope HTTP/1.1\r\n\r\n").await;
            assert!(nf.starts_with("HTTP/1.1 404"), "{nf}");
        });
    }
}

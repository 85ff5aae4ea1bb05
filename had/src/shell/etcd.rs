//! The binding cache in etcd (issue 13): a replicated copy that outlives this machine, so
//! another had serving the same home agent address restores every binding exactly
//! (sequence numbers, lifetimes, prefixes, NAT mappings, the RFC 4285 replay state are all
//! in the journal's record).
//!
//! One key per binding, `/nemo/had/<home agent address>/bc/<home address>` (with
//! `/<BID>` after it for an RFC 5648 binding), its value the journal's encoding of the
//! binding (`JournalRecord::Upsert`, which carries the BID too). The ordering contract is the
//! journal's: the records of a step are written (one transaction per 64) before its BAs
//! leave; a write that fails or takes longer than [`TIMEOUT`] withholds the BAs, so no BU is
//! ever acknowledged that the store does not hold. The local journal is still written: the
//! store is the authority at start, the journal the local copy.

use std::net::Ipv6Addr;
use std::time::Duration;

use etcd_client::{Client, ConnectOptions, GetOptions, Txn, TxnOp};
use tracing::{debug, info};

use crate::journal::fold;
use crate::record::{JournalRecord, PersistedBinding};

/// Longest wait for etcd in one step (connect, a transaction, a load).
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// Operations per transaction (etcd's default `--max-txn-ops` is 128).
const TXN_OPS: usize = 64;
/// After a failure, writes fail at once for this long instead of each waiting
/// [`TIMEOUT`]: a store without quorum must not stall had's loop (the bus, the other
/// routers' signalling) on every BU.
pub const BACKOFF: Duration = Duration::from_secs(5);

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// etcd answered with an error, or the connection failed.
    #[error("etcd {endpoints}: {source}")]
    Etcd {
        /// The endpoints.
        endpoints: String,
        /// The client's error (boxed: it is large, and errors travel far).
        source: Box<etcd_client::Error>,
    },
    /// No answer within [`TIMEOUT`] (no quorum, or unreachable).
    #[error("etcd {endpoints}: no answer within {} s (no quorum, or unreachable)", TIMEOUT.as_secs())]
    Timeout {
        /// The endpoints.
        endpoints: String,
    },
    /// A write failed less than [`BACKOFF`] ago; not tried again yet.
    #[error("etcd {endpoints}: failed {} ms ago; not tried again before {} s", .since_ms, BACKOFF.as_secs())]
    BackingOff {
        /// The endpoints.
        endpoints: String,
        /// Since the failure.
        since_ms: u64,
    },
}

/// had's binding cache in etcd.
pub struct EtcdStore {
    client: Client,
    endpoints: String,
    prefix: String,
    /// When the last write failed, while within [`BACKOFF`].
    failed_at: Option<std::time::Instant>,
}

impl std::fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.endpoints)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl EtcdStore {
    /// Connects to `endpoints` for the home agent `ha`.
    ///
    /// # Errors
    /// [`StoreError`] when no endpoint answers within [`TIMEOUT`].
    pub async fn connect(endpoints: &[String], ha: Ipv6Addr) -> Result<EtcdStore, StoreError> {
        let joined = endpoints.join(",");
        let opts = ConnectOptions::new()
            .with_connect_timeout(TIMEOUT)
            .with_timeout(TIMEOUT);
        let client = within(&joined, Client::connect(endpoints, Some(opts))).await?;
        Ok(EtcdStore {
            client,
            endpoints: joined,
            prefix: format!("/nemo/had/{ha}/bc/"),
            failed_at: None,
        })
    }

    /// The key of `hoa`'s binding, or of its binding `bid` (RFC 5648).
    fn key(&self, hoa: &Ipv6Addr, bid: Option<u16>) -> String {
        match bid {
            None => format!("{}{hoa}", self.prefix),
            Some(bid) => format!("{}{hoa}/{bid}", self.prefix),
        }
    }

    /// Every binding stored for this home agent still alive at `wall` (time since the UNIX
    /// epoch), and how many had expired.
    ///
    /// # Errors
    /// [`StoreError`].
    pub async fn load(
        &mut self,
        wall: Duration,
    ) -> Result<(Vec<PersistedBinding>, usize), StoreError> {
        let endpoints = self.endpoints.clone();
        let resp = within(
            &endpoints,
            self.client
                .get(self.prefix.as_str(), Some(GetOptions::new().with_prefix())),
        )
        .await?;
        let mut records = Vec::new();
        for kv in resp.kvs() {
            match JournalRecord::decode(kv.value()) {
                Ok(rec @ JournalRecord::Upsert(_)) => records.push(rec),
                Ok(JournalRecord::Remove { .. }) | Err(_) => {
                    debug!(key = %String::from_utf8_lossy(kv.key()), "etcd: value is not a binding; skipped");
                }
            }
        }
        let (bindings, expired) = fold(records, wall);
        info!(endpoints = %self.endpoints, bindings = bindings.len(), expired,
            "binding cache loaded from etcd");
        Ok((bindings, expired))
    }

    /// Writes `records` (bindings created, refreshed, removed) in order, one transaction per
    /// [`TXN_OPS`]: done when etcd has them.
    ///
    /// # Errors
    /// [`StoreError`]: the caller withholds the BAs.
    pub async fn apply(&mut self, records: &[JournalRecord]) -> Result<(), StoreError> {
        if let Some(at) = self.failed_at {
            let since = at.elapsed();
            if since < BACKOFF {
                return Err(StoreError::BackingOff {
                    endpoints: self.endpoints.clone(),
                    since_ms: since.as_millis() as u64,
                });
            }
            self.failed_at = None;
        }
        let r = self.write(records).await;
        if r.is_err() {
            self.failed_at = Some(std::time::Instant::now());
        }
        r
    }

    async fn write(&mut self, records: &[JournalRecord]) -> Result<(), StoreError> {
        let endpoints = self.endpoints.clone();
        for chunk in records.chunks(TXN_OPS) {
            let ops: Vec<TxnOp> = chunk
                .iter()
                .map(|rec| match rec {
                    JournalRecord::Upsert(b) => {
                        let mut value = Vec::new();
                        rec.encode(&mut value);
                        TxnOp::put(self.key(&b.hoa, b.bid), value, None)
                    }
                    JournalRecord::Remove { hoa, bid } => TxnOp::delete(self.key(hoa, *bid), None),
                })
                .collect();
            within(&endpoints, self.client.txn(Txn::new().and_then(ops))).await?;
        }
        Ok(())
    }
}

/// `fut` within [`TIMEOUT`], its error named after `endpoints`.
async fn within<T>(
    endpoints: &str,
    fut: impl std::future::Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(source)) => Err(StoreError::Etcd {
            endpoints: endpoints.to_owned(),
            source: Box::new(source),
        }),
        Err(_) => Err(StoreError::Timeout {
            endpoints: endpoints.to_owned(),
        }),
    }
}

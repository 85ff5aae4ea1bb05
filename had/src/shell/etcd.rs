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

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, EventType, GetOptions, KeyValue, Txn, TxnOp,
    TxnOpResponse, WatchOptions,
};
use tracing::{debug, info, warn};

use crate::journal::fold;
use crate::record::{JournalRecord, PersistedBinding};
use crate::redundancy::{CampaignResult, Leader};

/// Longest wait for etcd in one step (connect, a transaction, a load).
pub const TIMEOUT: Duration = Duration::from_secs(2);
/// The pause before a transaction that failed at once is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Operations per transaction (etcd's default `--max-txn-ops` is 128).
const TXN_OPS: usize = 64;
/// Keys per read when loading the cache: a response stays far below gRPC's 4 MiB limit
/// whatever the cache's size.
const PAGE: i64 = 1000;
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
    /// The leadership key is no longer ours: this member was deposed (issue 13).
    #[error(
        "etcd {endpoints}: the leadership key changed: this home agent is no longer the active one"
    )]
    Fenced {
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
    /// The leadership key of this home agent address (redundancy).
    leader_key: String,
    /// While this member leads: its epoch, which every write then requires the leadership
    /// key to still have (a deposed member can store nothing).
    fence: Option<u64>,
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
            leader_key: format!("/nemo/had/{ha}/leader"),
            fence: None,
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
        let mut records = Vec::new();
        let end = prefix_end(self.prefix.as_bytes());
        let mut from = self.prefix.clone().into_bytes();
        loop {
            let resp = within(
                &endpoints,
                self.client.get(
                    from.clone(),
                    Some(GetOptions::new().with_range(end.clone()).with_limit(PAGE)),
                ),
            )
            .await?;
            for kv in resp.kvs() {
                match JournalRecord::decode(kv.value()) {
                    Ok(rec @ JournalRecord::Upsert(_)) => records.push(rec),
                    Ok(JournalRecord::Remove { .. }) | Err(_) => {
                        debug!(key = %String::from_utf8_lossy(kv.key()), "etcd: value is not a binding; skipped");
                    }
                }
            }
            match resp.kvs().last() {
                Some(last) if resp.more() => {
                    // The next key after the last one read.
                    from = last.key().to_vec();
                    from.push(0);
                }
                _ => break,
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
            let txn = match self.fence {
                Some(epoch) => Txn::new()
                    .when([Compare::mod_revision(
                        self.leader_key.as_str(),
                        CompareOp::Equal,
                        epoch as i64,
                    )])
                    .and_then(ops),
                None => Txn::new().and_then(ops),
            };
            // The client balances over the endpoints and may pick a dead member's, which
            // fails at once ("tcp connect error") while the others have quorum: the same
            // transaction is tried again, within TIMEOUT, before the BAs are withheld.
            let start = tokio::time::Instant::now();
            let resp = loop {
                match within(&endpoints, self.client.txn(txn.clone())).await {
                    Err(StoreError::Etcd { .. }) if start.elapsed() + RETRY_PAUSE < TIMEOUT => {
                        tokio::time::sleep(RETRY_PAUSE).await;
                    }
                    r => break r?,
                }
            };
            if !resp.succeeded() {
                return Err(StoreError::Fenced { endpoints });
            }
        }
        Ok(())
    }

    /// Tries to take the leadership key for member `name`: it must still be absent
    /// (`expect` `None`) or at revision `expect` (its holder went silent). A store that
    /// does not answer is [`CampaignResult::Failed`] (logged).
    pub async fn campaign(&mut self, name: &str, expect: Option<u64>) -> CampaignResult {
        let key = self.leader_key.as_str();
        let cmp = match expect {
            None => Compare::create_revision(key, CompareOp::Equal, 0),
            Some(rev) => Compare::mod_revision(key, CompareOp::Equal, rev as i64),
        };
        let txn = Txn::new()
            .when([cmp])
            .and_then([TxnOp::put(key, name, None)])
            .or_else([TxnOp::get(key, None)]);
        let resp = match within(&self.endpoints.clone(), self.client.txn(txn)).await {
            Ok(r) => r,
            Err(e) => {
                warn!(error = %e, "campaign for the leadership not decided");
                return CampaignResult::Failed;
            }
        };
        if resp.succeeded() {
            let epoch = resp.header().map_or(0, |h| h.revision()) as u64;
            self.fence = Some(epoch);
            self.failed_at = None;
            return CampaignResult::Won(epoch);
        }
        let holder = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(g) => Some(g.kvs().first().map(leader_of)),
            _ => None,
        });
        CampaignResult::Lost(holder.flatten())
    }

    /// Leaves the leadership: no more fenced writes; deletes the key if it is still ours
    /// (a planned stop: a standby campaigns at once instead of after the dead interval).
    pub async fn resign(&mut self, delete: bool) {
        let Some(epoch) = self.fence.take() else {
            return;
        };
        if !delete {
            return;
        }
        let key = self.leader_key.as_str();
        let txn = Txn::new()
            .when([Compare::mod_revision(key, CompareOp::Equal, epoch as i64)])
            .and_then([TxnOp::delete(key, None)]);
        match within(&self.endpoints.clone(), self.client.txn(txn)).await {
            Ok(r) if r.succeeded() => info!(epoch, "leadership key deleted"),
            Ok(_) => info!(epoch, "leadership key already changed"),
            Err(e) => {
                warn!(error = %e, "leadership key not deleted (a standby takes over after the dead interval)")
            }
        }
    }

    /// Follows the leadership key: the receiver holds `None` until the first read, then
    /// the holder (`Some(None)`: nobody). Runs until the receiver is dropped, reconnecting
    /// after errors.
    pub fn watch_leader(&self) -> tokio::sync::watch::Receiver<Option<Option<Leader>>> {
        let (tx, rx) = tokio::sync::watch::channel(None);
        let mut client = self.client.clone();
        let key = self.leader_key.clone();
        tokio::spawn(async move {
            while !tx.is_closed() {
                if let Err(e) = follow(&mut client, &key, &tx).await {
                    debug!(error = %e, "leadership watch interrupted; again in 200 ms");
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        rx
    }
}

/// Reads `key`, then watches it from the next revision, sending each holder into `tx`.
async fn follow(
    client: &mut Client,
    key: &str,
    tx: &tokio::sync::watch::Sender<Option<Option<Leader>>>,
) -> Result<(), etcd_client::Error> {
    let resp = client.get(key, None).await?;
    let rev = resp.header().map_or(0, |h| h.revision());
    tx.send_replace(Some(resp.kvs().first().map(leader_of)));
    let (_watcher, mut stream) = client
        .watch(key, Some(WatchOptions::new().with_start_revision(rev + 1)))
        .await?;
    while let Some(msg) = stream.message().await? {
        if msg.canceled() {
            break;
        }
        for ev in msg.events() {
            let holder = match ev.event_type() {
                EventType::Put => ev.kv().map(leader_of),
                EventType::Delete => None,
            };
            tx.send_replace(Some(holder));
        }
        if tx.is_closed() {
            break;
        }
    }
    Ok(())
}

fn leader_of(kv: &KeyValue) -> Leader {
    Leader {
        epoch: kv.mod_revision() as u64,
        name: String::from_utf8_lossy(kv.value()).into_owned(),
    }
}

/// The end of the range of keys starting with `prefix` (etcd's "prefix end").
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0]
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

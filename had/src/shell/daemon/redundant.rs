//! One of several home agents for one home agent address (issue 13): the election's I/O.
//! [`crate::redundancy`] decides; this carries its actions out on etcd, the home link, the
//! bus and the kernel.
//!
//! * **Standby**: holds no home agent address, no binding, no proxy entry; answers no
//!   signalling. Listens for the active one's heartbeats and follows the leadership key.
//! * **Take-over**: the store's cache is loaded (every binding, its sequence number,
//!   lifetime, prefixes, NAT mapping and replay state), restored into the core (BC_ADD to
//!   nemonetd, home addresses defended with unsolicited NAs), the home agent address taken with an
//!   unsolicited NA of its own. Routers are asked nothing: their next BU finds its
//!   binding.
//! * **Step-down**: every binding is withdrawn from the bus and the home link (BC_REMOVE,
//!   no longer defended), the address released; nothing is written to the store, which
//!   now belongs to the new active.
//! * **The address is held with a lifetime** ([`ADDRESS_LIFETIME`]), renewed every
//!   [`ADDRESS_RENEW`]: a had killed with -9 stops renewing it and the kernel drops it,
//!   so the dead member does not keep answering for it on the home link.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mhio::HeartbeatSocket;
use mipsock::{Body, Message};
use proto::redundancy::{HeartbeatRepr, HeartbeatType};
use tracing::{debug, error, info, warn};

use super::{Daemon, NA_INTERVAL, NA_REPEATS, wall};
use crate::core::HaEvent;
use crate::redundancy::{Action, CampaignResult, Election, Leader, StepDownReason};

/// How long the home agent address stays on the interface without a renewal.
pub(super) const ADDRESS_LIFETIME: Duration = Duration::from_secs(3);
/// Longest wait for rtnetlink when taking or releasing an address: the loop must not hang
/// on it.
const NETLINK_TIMEOUT: Duration = Duration::from_secs(2);
/// How often the active member renews it.
const ADDRESS_RENEW: Duration = Duration::from_secs(1);

/// How long the heartbeat task goes on without a word from the main loop. The loop may
/// wait on etcd for up to [`super::super::etcd::TIMEOUT`] in one step (a slow store must
/// not look like a dead home agent); a loop silent for longer is stuck, and a standby
/// should take over.
const LOOP_GRACE: Duration = Duration::from_secs(5);

/// What the heartbeat task reads: the epoch to advertise (0: none, a standby) and when the
/// main loop last asked for a heartbeat.
struct Beat {
    epoch: AtomicU64,
    /// Milliseconds after `base` of the main loop's last heartbeat action.
    loop_ms: AtomicU64,
    base: Instant,
}

impl Beat {
    fn touch(&self) {
        self.loop_ms
            .store(self.base.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    fn loop_alive(&self) -> bool {
        let last = Duration::from_millis(self.loop_ms.load(Ordering::Relaxed));
        self.base.elapsed().saturating_sub(last) < LOOP_GRACE
    }
}

/// Sends the heartbeats on its own task: a main loop waiting on etcd (up to 2 s a step)
/// must not fall silent on the home link, or every slow write would start a take-over.
fn spawn_heartbeats(
    beat: Arc<Beat>,
    socket: HeartbeatSocket,
    home_agent: std::net::Ipv6Addr,
    name: String,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let interval_ms = u16::try_from(interval.as_millis()).unwrap_or(u16::MAX);
        loop {
            tick.tick().await;
            let epoch = beat.epoch.load(Ordering::Relaxed);
            if epoch == 0 || !beat.loop_alive() {
                continue;
            }
            let hb = HeartbeatRepr {
                kind: HeartbeatType::Advertisement,
                interval_ms,
                epoch,
                home_agent,
                name: &name,
            };
            if let Err(e) = socket.send(&hb).await {
                debug!(error = %e, "heartbeat not sent");
            }
        }
    });
}

/// The election's state and sockets.
pub(super) struct Redundant {
    pub(super) election: Election,
    pub(super) heartbeat: HeartbeatSocket,
    pub(super) leader: tokio::sync::watch::Receiver<Option<Option<Leader>>>,
    /// When the address is next renewed, while active.
    renew_at: Option<Instant>,
    /// ARP announcements of the IPv4 home agent address still to repeat (one per renewal;
    /// RFC 5227 §2.3 announces twice).
    arp_repeats: u8,
    /// Take-overs and step-downs since start, for the metrics.
    pub(super) takeovers: u64,
    pub(super) stepdowns: u64,
    beat: Arc<Beat>,
}

impl Redundant {
    /// The election's I/O for home agent address `home_agent`; starts the heartbeat task.
    pub(super) fn new(
        election: Election,
        heartbeat: HeartbeatSocket,
        leader: tokio::sync::watch::Receiver<Option<Option<Leader>>>,
        home_agent: std::net::Ipv6Addr,
    ) -> Redundant {
        let beat = Arc::new(Beat {
            epoch: AtomicU64::new(0),
            loop_ms: AtomicU64::new(0),
            base: Instant::now(),
        });
        spawn_heartbeats(
            beat.clone(),
            heartbeat.clone(),
            home_agent,
            election.name().to_owned(),
            election.advert_interval(),
        );
        Redundant {
            beat,
            election,
            heartbeat,
            leader,
            renew_at: None,
            arp_repeats: 0,
            takeovers: 0,
            stepdowns: 0,
        }
    }

    /// When the election or the address renewal needs the loop next.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        [self.election.poll_timeout(), self.renew_at]
            .into_iter()
            .flatten()
            .min()
    }
}

impl Daemon {
    /// Whether this had may serve: the only home agent, or the active member.
    pub(super) fn serving(&self) -> bool {
        self.redundancy
            .as_ref()
            .is_none_or(|r| r.election.active_epoch().is_some())
    }

    /// The home agent address's prefix length (from the home prefix that holds it).
    fn ha_prefix_len(&self) -> u8 {
        let c = self.ha.config();
        c.home_prefixes
            .iter()
            .find(|p| p.contains(&c.ha_address))
            .map_or(128, ipnet::Ipv6Net::prefix_len)
    }

    /// The addresses the active member holds: the home agent address, and its IPv4
    /// address (a /32: its prefix is the home link's business) when configured.
    fn held_addresses(&self) -> Vec<(IpAddr, u8)> {
        let c = self.ha.config();
        let mut v = vec![(IpAddr::V6(c.ha_address), self.ha_prefix_len())];
        if let Some(v4) = c.ha_address_v4 {
            v.push((IpAddr::V4(v4), 32));
        }
        v
    }

    /// At start, before anything: what a member that died while active left here (its
    /// address, the bindings nemonetd still carries from its journal)
    /// goes, since this member starts as a standby.
    pub(super) async fn clear_leftovers(
        &mut self,
        journaled: Vec<crate::record::PersistedBinding>,
    ) {
        let now = Instant::now();
        self.ha.restore(now, wall(), journaled);
        // Only the bindings matter, not their announcement.
        while self.ha.poll_event().is_some() {}
        self.give_up_bindings().await;
        self.release_addresses().await;
    }

    /// Withdraws every binding from the bus and the home link and empties the core;
    /// nothing goes to the journal or the store.
    async fn give_up_bindings(&mut self) {
        let now = Instant::now();
        let bindings = self.ha.handle_state_request(now);
        let withdrawals: Vec<Message> = bindings
            .iter()
            .cloned()
            .map(|mut b| {
                b.lifetime = 0;
                Message::new(Body::BcRemove(b))
            })
            .collect();
        self.announce(&withdrawals);
        self.defended.clear();
        match crate::core::Ha::new(self.ha.config().clone()) {
            Ok(ha) => self.ha = ha,
            Err(e) => error!(error = %e, "binding cache not reset"),
        }
        self.held.clear();
        self.na_repeats.clear();
        self.ready.clear();
        if !bindings.is_empty() {
            info!(
                bindings = bindings.len(),
                "bindings withdrawn from the data plane and the home link"
            );
        }
    }

    async fn release_addresses(&mut self) {
        for (addr, plen) in self.held_addresses() {
            match tokio::time::timeout(NETLINK_TIMEOUT, self.proxy.release_address(addr, plen))
                .await
            {
                Ok(Ok(true)) => info!(%addr, "home agent address released"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => error!(%addr, error = %e, "home agent address not released"),
                Err(_) => {
                    error!(%addr, "home agent address not released: rtnetlink did not answer within 2 s")
                }
            }
        }
    }

    async fn hold_addresses(&mut self) -> bool {
        let mut ok = true;
        for (addr, plen) in self.held_addresses() {
            match tokio::time::timeout(
                NETLINK_TIMEOUT,
                self.proxy.hold_address(addr, plen, ADDRESS_LIFETIME),
            )
            .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    error!(%addr, error = %e, "home agent address not held");
                    ok = false;
                }
                Err(_) => {
                    error!(%addr, "home agent address not held: rtnetlink did not answer within 2 s");
                    ok = false;
                }
            }
        }
        ok
    }

    /// The IPv4 home agent address, if any, announced on the home link (gratuitous ARP):
    /// neighbours that knew the previous member's link-layer address move at once.
    fn announce_ipv4(&self) {
        let Some(v4) = self.ha.config().ha_address_v4 else {
            return;
        };
        match mhio::announce_ipv4(self.proxy.ifindex(), self.proxy.mac(), v4) {
            Ok(()) => debug!(%v4, "ARP announcement sent"),
            Err(e) => warn!(%v4, error = %e, "ARP announcement not sent"),
        }
    }

    /// A heartbeat heard on the home link.
    pub(super) fn on_heartbeat(&mut self, hb: &mhio::Heard) {
        let ha = self.ha.config().ha_address;
        let Some(r) = &mut self.redundancy else {
            return;
        };
        if hb.home_agent != ha {
            // Another home agent address's members share the link.
            return;
        }
        debug!(from = %hb.from, name = %hb.name, epoch = hb.epoch, "heartbeat heard");
        r.election.handle_heartbeat(Instant::now(), hb.epoch);
    }

    /// The leadership key changed (the watch).
    pub(super) fn on_leader_changed(&mut self) {
        let Some(r) = &mut self.redundancy else {
            return;
        };
        let seen = r.leader.borrow_and_update().clone();
        if let Some(holder) = seen {
            debug!(holder = ?holder, "leadership key");
            r.election.handle_leader(Instant::now(), holder);
        }
    }

    /// Timers, then every action the election asks for, until it asks for none.
    pub(super) async fn drive_election(&mut self) {
        let now = Instant::now();
        let Some(r) = &mut self.redundancy else {
            return;
        };
        if r.election.poll_timeout().is_some_and(|t| t <= now) {
            r.election.handle_timeout(now);
        }
        if r.renew_at.is_some_and(|t| t <= now) {
            r.renew_at = Some(now + ADDRESS_RENEW);
            let announce = r.arp_repeats > 0;
            r.arp_repeats = r.arp_repeats.saturating_sub(1);
            self.hold_addresses().await;
            if announce {
                self.announce_ipv4();
            }
        }
        while let Some(action) = self
            .redundancy
            .as_mut()
            .and_then(|r| r.election.poll_action())
        {
            match action {
                Action::Campaign(expect) => self.campaign(expect).await,
                Action::TakeOver(epoch) => self.take_over(epoch).await,
                Action::StepDown(reason) => self.step_down(&reason).await,
                Action::Heartbeat(epoch) => self.advertise(epoch),
            }
        }
    }

    async fn campaign(&mut self, expect: Option<u64>) {
        let (Some(store), Some(r)) = (&mut self.etcd, &mut self.redundancy) else {
            return;
        };
        let name = r.election.name().to_owned();
        let result = store.campaign(&name, expect).await;
        match &result {
            CampaignResult::Won(epoch) => {
                info!(member = %name, epoch, previous = ?expect, "leadership taken");
            }
            CampaignResult::Lost(holder) => {
                info!(member = %name, holder = ?holder, "leadership not taken: the key changed");
            }
            CampaignResult::Failed => {}
        }
        r.election.handle_campaign(Instant::now(), result);
    }

    async fn take_over(&mut self, epoch: u64) {
        let t0 = Instant::now();
        let Some(store) = &mut self.etcd else {
            return;
        };
        // The store answered the swap a moment ago: a failed read is tried again before
        // the leadership is given back.
        let mut loaded = store.load(wall()).await;
        for _ in 0..2 {
            if loaded.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            loaded = store.load(wall()).await;
        }
        let (bindings, expired) = match loaded {
            Ok(b) => b,
            Err(e) => {
                // Serving without the cache would lose every binding: give the key back.
                error!(error = %e, epoch, "binding cache not loaded from etcd: leadership given back");
                store.resign(true).await;
                if let Some(r) = &mut self.redundancy {
                    r.election.handle_leader(Instant::now(), None);
                }
                return;
            }
        };
        if let Err(e) = self.journal.compact(&bindings) {
            warn!(error = %e, "local journal not rewritten from etcd");
        }
        let load_time = t0.elapsed();
        let restored = self.ha.restore(Instant::now(), wall(), bindings);
        // The data plane first: a router's traffic to its prefixes needs only its binding
        // in nemonetd and the home agent address here; the proxy entries serve traffic to
        // the home addresses themselves, and come after.
        // In datagrams of many (send_batch): one per binding would fill nemonetd's queue
        // at a fleet's size, and what the bus drops for it nemonetd must read again.
        let mut proxies = Vec::new();
        let mut announcements = Vec::new();
        while let Some(ev) = self.ha.poll_event() {
            match ev {
                HaEvent::BcAdd(b) => announcements.push(Message::new(Body::BcAdd(b))),
                HaEvent::ProxyNdAdd(p) => proxies.push(p),
                other => self.apply(other).await,
            }
        }
        self.announce(&announcements);
        let address = self.hold_addresses().await;
        let ha = self.ha.config().ha_address;
        // RFC 4861 §7.2.6: the address moved to this interface's link-layer address.
        if let Err(e) = self.proxy.send_unsolicited_na(ha, true) {
            warn!(error = %e, "unsolicited NA for the home agent address not sent");
        }
        self.na_repeats
            .push((Instant::now() + NA_INTERVAL, ha, true, NA_REPEATS));
        self.announce_ipv4();
        self.announce_role(true);
        self.advertise(epoch);
        if let Some(r) = &mut self.redundancy {
            r.renew_at = Some(Instant::now() + ADDRESS_RENEW);
            r.arp_repeats = 1;
            r.takeovers += 1;
        }
        let announced = t0.elapsed();
        for p in &proxies {
            self.defend(p);
        }
        info!(epoch, %ha, bindings = restored, expired, address_held = address,
            load_ms = load_time.as_millis() as u64,
            dataplane_ms = announced.as_millis() as u64,
            took_ms = t0.elapsed().as_millis() as u64,
            "active home agent: took over the home agent address and every binding");
    }

    async fn step_down(&mut self, reason: &StepDownReason) {
        self.silence();
        warn!(%reason, bindings = self.ha.binding_count(), "stepping down to standby");
        self.give_up_bindings().await;
        self.release_addresses().await;
        if let Some(store) = &mut self.etcd {
            store.resign(false).await;
        }
        if let Some(r) = &mut self.redundancy {
            r.renew_at = None;
            r.stepdowns += 1;
            // A fenced write does not say who leads now; the watch does.
            let seen = r.leader.borrow().clone();
            if let Some(holder) = seen {
                r.election.handle_leader(Instant::now(), holder);
            }
        }
    }

    /// The election's heartbeat timer: the heartbeat task sends; this tells it which epoch
    /// to advertise and that the loop is alive.
    fn advertise(&mut self, epoch: u64) {
        if let Some(r) = &self.redundancy {
            r.beat.epoch.store(epoch, Ordering::Relaxed);
            r.beat.touch();
        }
    }

    /// Stops advertising at once (before anything slower).
    fn silence(&self) {
        if let Some(r) = &self.redundancy {
            r.beat.epoch.store(0, Ordering::Relaxed);
        }
    }

    /// A planned stop of the active member: bindings withdrawn here, the address released
    /// and the key deleted, so a standby takes over at once.
    pub(super) async fn resign(&mut self) {
        if self
            .redundancy
            .as_ref()
            .is_none_or(|r| r.election.active_epoch().is_none())
        {
            return;
        }
        self.silence();
        info!("stopping while active: leadership handed over");
        self.give_up_bindings().await;
        self.release_addresses().await;
        if let Some(store) = &mut self.etcd {
            store.resign(true).await;
        }
    }
}

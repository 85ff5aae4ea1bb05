//! Which of several home agents serving one home agent address is active (issue 13),
//! sans-IO: the shell hands in what the store and the home link said, with `now`, and
//! carries out the [`Action`]s.
//!
//! * **The store decides.** Leadership is one key in etcd. A member takes it only by a
//!   compare-and-swap on the key's revision as it last saw it (absent, or held by a leader
//!   it stopped hearing), so two members never both win. The revision of the key after
//!   the swap is the leader's *epoch*. The active's binding writes are conditional on that
//!   revision too: a deposed active can never acknowledge a BU (the journal's ordering
//!   contract, in the store).
//! * **The home link tells who lives.** The active multicasts a heartbeat every
//!   advertisement interval. A standby that hears none from the key's holder for the dead
//!   interval campaigns. Lease expiry in etcd would take seconds; the heartbeat takes a
//!   fraction of one.
//! * **An active steps down** when the key changes under it (another member took it,
//!   seen through a watch) or a conditional write finds it gone. It keeps serving when the
//!   store is merely unreachable: with no quorum, nobody can take over, and its bindings
//!   must keep being forwarded.

use std::time::{Duration, Instant};

/// Who holds the leadership key, as the store last said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leader {
    /// The key's modification revision: the leader's epoch.
    pub epoch: u64,
    /// The member name stored in the key.
    pub name: String,
}

/// What a campaign (a compare-and-swap on the key) came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CampaignResult {
    /// The key is ours, at this epoch.
    Won(u64),
    /// The key changed since we looked: this is who holds it now (`None`: nobody).
    Lost(Option<Leader>),
    /// The store did not answer.
    Failed,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Compare-and-swap the key to our name: it must still be absent (`None`) or at this
    /// revision.
    Campaign(Option<u64>),
    /// We lead at this epoch: load the bindings, take the address, serve.
    TakeOver(u64),
    /// We no longer lead: give the address and the bindings up, back to standby.
    StepDown(StepDownReason),
    /// Multicast a heartbeat for this epoch.
    Heartbeat(u64),
}

/// Why an active home agent stepped down.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDownReason {
    /// Another member holds the key.
    Superseded(Leader),
    /// The key was deleted (by an operator, or a lease).
    KeyDeleted,
    /// A conditional write found the key changed.
    WriteFenced,
}

impl std::fmt::Display for StepDownReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StepDownReason::Superseded(l) => {
                write!(
                    f,
                    "member {} took the leadership (epoch {})",
                    l.name, l.epoch
                )
            }
            StepDownReason::KeyDeleted => f.write_str("the leadership key was deleted"),
            StepDownReason::WriteFenced => {
                f.write_str("a binding write found the leadership key changed")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Standby {
        /// The key's holder as last seen (`None`: nobody holds it).
        leader: Option<Leader>,
        /// When we last heard of the holder alive: a heartbeat of its epoch, or the moment
        /// we learnt of it (a new leader gets a dead interval to start sending). With no
        /// holder, when we learnt that.
        heard: Instant,
        /// Whether we know the key's state at all (the first read may not have come).
        known: bool,
        /// A campaign is in flight.
        campaigning: bool,
        /// No campaign before this (after a failed one).
        retry_at: Option<Instant>,
    },
    Active {
        epoch: u64,
        next_heartbeat: Instant,
    },
}

/// The election state of one member.
#[derive(Debug, Clone)]
pub struct Election {
    name: String,
    advert_interval: Duration,
    dead_interval: Duration,
    role: Role,
    /// Set when we step down without having heard our successor: heartbeats may not
    /// reach us (a filter, another link), and campaigning on silence would take the key
    /// back and forth. Campaigns then wait this long after silence begins.
    deaf_until: Option<Instant>,
    actions: std::collections::VecDeque<Action>,
}

impl Election {
    /// A member named `name`, starting as a standby at `now`.
    pub fn new(
        now: Instant,
        name: &str,
        advert_interval: Duration,
        dead_interval: Duration,
    ) -> Election {
        Election {
            name: name.to_owned(),
            advert_interval,
            dead_interval,
            role: Role::Standby {
                leader: None,
                heard: now,
                known: false,
                campaigning: false,
                retry_at: None,
            },
            deaf_until: None,
            actions: Default::default(),
        }
    }

    /// This member's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The advertisement interval.
    pub fn advert_interval(&self) -> Duration {
        self.advert_interval
    }

    /// Our epoch while we lead.
    pub fn active_epoch(&self) -> Option<u64> {
        match self.role {
            Role::Active { epoch, .. } => Some(epoch),
            Role::Standby { .. } => None,
        }
    }

    /// The key's holder as the store said (the first read, then each change).
    pub fn handle_leader(&mut self, now: Instant, leader: Option<Leader>) {
        match &mut self.role {
            Role::Active { epoch, .. } => {
                let reason = match leader {
                    Some(l) if l.epoch == *epoch => return,
                    // Our own swap's echo can come before `Won` is handled; a smaller
                    // revision is history.
                    Some(l) if l.epoch < *epoch => return,
                    Some(l) => StepDownReason::Superseded(l),
                    None => StepDownReason::KeyDeleted,
                };
                self.step_down(now, reason);
            }
            Role::Standby {
                leader: seen,
                heard,
                known,
                ..
            } => {
                let changed =
                    !*known || seen.as_ref().map(|l| l.epoch) != leader.as_ref().map(|l| l.epoch);
                *known = true;
                if changed {
                    *seen = leader;
                    *heard = now;
                }
            }
        }
    }

    /// A heartbeat heard on the home link, for `epoch`.
    pub fn handle_heartbeat(&mut self, now: Instant, epoch: u64) {
        if let Role::Standby {
            leader: Some(l),
            heard,
            ..
        } = &mut self.role
            && l.epoch == epoch
        {
            *heard = now;
            self.deaf_until = None;
        }
    }

    /// The answer to [`Action::Campaign`].
    pub fn handle_campaign(&mut self, now: Instant, result: CampaignResult) {
        let Role::Standby {
            campaigning,
            retry_at,
            ..
        } = &mut self.role
        else {
            return;
        };
        *campaigning = false;
        match result {
            CampaignResult::Won(epoch) => {
                self.role = Role::Active {
                    epoch,
                    next_heartbeat: now,
                };
                self.deaf_until = None;
                self.actions.push_back(Action::TakeOver(epoch));
            }
            CampaignResult::Lost(leader) => {
                *retry_at = None;
                // The key moved: whoever holds it now gets a dead interval to be heard.
                if let Role::Standby {
                    leader: seen,
                    heard,
                    known,
                    ..
                } = &mut self.role
                {
                    *known = true;
                    *seen = leader;
                    *heard = now;
                }
            }
            CampaignResult::Failed => {
                *retry_at = Some(now + self.advert_interval.max(Duration::from_millis(100)))
            }
        }
    }

    /// A conditional binding write found the key changed.
    pub fn handle_fenced(&mut self, now: Instant) {
        if matches!(self.role, Role::Active { .. }) {
            self.step_down(now, StepDownReason::WriteFenced);
        }
    }

    fn step_down(&mut self, now: Instant, reason: StepDownReason) {
        let successor = match &reason {
            StepDownReason::Superseded(l) => Some(l.clone()),
            _ => None,
        };
        self.role = Role::Standby {
            // A fenced write says the key moved, not to whom: the shell hands in the
            // watch's latest value.
            known: reason != StepDownReason::WriteFenced,
            leader: successor,
            heard: now,
            campaigning: false,
            retry_at: None,
        };
        // Until the successor is heard, silence proves nothing: heartbeats may not reach us.
        self.deaf_until = Some(now + self.dead_interval * 4);
        self.actions.push_back(Action::StepDown(reason));
    }

    /// Advances timers to `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        match &mut self.role {
            Role::Active {
                epoch,
                next_heartbeat,
            } => {
                if *next_heartbeat <= now {
                    self.actions.push_back(Action::Heartbeat(*epoch));
                    *next_heartbeat = now + self.advert_interval;
                }
            }
            Role::Standby {
                leader,
                heard,
                known,
                campaigning,
                retry_at,
            } => {
                if !*known || *campaigning || retry_at.is_some_and(|t| t > now) {
                    return;
                }
                let ours = leader.as_ref().is_some_and(|l| l.name == self.name);
                if !ours && self.deaf_until.is_some_and(|t| t > now) {
                    return;
                }
                let expect = match leader {
                    None => None,
                    // Our own name in the key: a campaign of ours that the store committed
                    // after we stopped waiting for it, or our previous life's. Nobody else
                    // holds it: take it again at once, at a revision of our own.
                    Some(l) if l.name == self.name => Some(l.epoch),
                    Some(l) if now.duration_since(*heard) >= self.dead_interval => Some(l.epoch),
                    Some(_) => return,
                };
                *campaigning = true;
                *retry_at = None;
                self.actions.push_back(Action::Campaign(expect));
            }
        }
    }

    /// When [`handle_timeout`](Self::handle_timeout) has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match &self.role {
            Role::Active { next_heartbeat, .. } => Some(*next_heartbeat),
            Role::Standby {
                leader,
                heard,
                known,
                campaigning,
                retry_at,
            } => {
                if !*known || *campaigning {
                    return None;
                }
                let silence = match leader {
                    None => *heard,
                    Some(l) if l.name == self.name => *heard,
                    Some(_) => *heard + self.dead_interval,
                };
                let due = retry_at.map_or(silence, |r| r.max(silence));
                if leader.as_ref().is_some_and(|l| l.name == self.name) {
                    return Some(due);
                }
                Some(self.deaf_until.map_or(due, |d| d.max(due)))
            }
        }
    }

    /// The next action for the shell.
    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADVERT: Duration = Duration::from_millis(50);
    const DEAD: Duration = Duration::from_millis(200);

    fn leader(epoch: u64, name: &str) -> Leader {
        Leader {
            epoch,
            name: name.into(),
        }
    }

    /// Member "ha1", the first to campaign on an empty store: active at epoch 7, its
    /// actions drained.
    fn active(t0: Instant) -> Election {
        let mut e = Election::new(t0, "ha1", ADVERT, DEAD);
        e.handle_leader(t0, None);
        e.handle_timeout(t0);
        e.handle_campaign(t0, CampaignResult::Won(7));
        actions(&mut e);
        e
    }

    fn actions(e: &mut Election) -> Vec<Action> {
        std::iter::from_fn(|| e.poll_action()).collect()
    }

    /// Runs timers every millisecond from `from` for `ms`; returns the actions.
    fn run(e: &mut Election, from: Instant, ms: u64) -> Vec<(u64, Action)> {
        let mut out = Vec::new();
        for t in 0..=ms {
            let now = from + Duration::from_millis(t);
            if e.poll_timeout().is_some_and(|d| d <= now) {
                e.handle_timeout(now);
            }
            out.extend(actions(e).into_iter().map(|a| (t, a)));
        }
        out
    }

    #[test]
    fn nobody_leads_a_fresh_store_so_the_first_member_campaigns_and_leads() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, "ha1", ADVERT, DEAD);
        // Nothing before the store's first answer.
        assert!(run(&mut e, t0, 500).is_empty());
        e.handle_leader(t0, None);
        e.handle_timeout(t0);
        assert_eq!(actions(&mut e), vec![Action::Campaign(None)]);
        // In flight: no second campaign.
        assert!(run(&mut e, t0, 300).is_empty());
        e.handle_campaign(t0, CampaignResult::Won(7));
        assert_eq!(actions(&mut e), vec![Action::TakeOver(7)]);
        assert_eq!(e.active_epoch(), Some(7));
        let beats = run(&mut e, t0, 200);
        assert_eq!(beats.len(), 5, "{beats:?}");
        assert!(beats.iter().all(|(_, a)| *a == Action::Heartbeat(7)));
        // Our own key, echoed by the watch, changes nothing.
        e.handle_leader(t0, Some(leader(7, "ha1")));
        assert!(actions(&mut e).is_empty());
    }

    #[test]
    fn a_standby_campaigns_after_the_dead_interval_of_silence_not_before() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, "ha2", ADVERT, DEAD);
        e.handle_leader(t0, Some(leader(7, "ha1")));
        // Heard every 50 ms for a second: nothing.
        for i in 0..20 {
            let now = t0 + ADVERT * i;
            e.handle_heartbeat(now, 7);
            e.handle_timeout(now);
            assert!(actions(&mut e).is_empty());
        }
        let last = t0 + ADVERT * 19;
        // A heartbeat of another epoch (stale, or forged) is no sign of the leader.
        e.handle_heartbeat(last + Duration::from_millis(100), 3);
        let acts = run(&mut e, last, 300);
        assert_eq!(acts, vec![(200, Action::Campaign(Some(7)))]);
        e.handle_campaign(last + DEAD, CampaignResult::Won(12));
        assert_eq!(actions(&mut e), vec![Action::TakeOver(12)]);
    }

    #[test]
    fn a_lost_campaign_gives_the_new_holder_a_dead_interval() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, "ha2", ADVERT, DEAD);
        e.handle_leader(t0, Some(leader(7, "ha1")));
        let acts = run(&mut e, t0, 200);
        assert_eq!(acts, vec![(200, Action::Campaign(Some(7)))]);
        let t1 = t0 + DEAD;
        e.handle_campaign(t1, CampaignResult::Lost(Some(leader(9, "ha3"))));
        assert!(run(&mut e, t1, 199).is_empty());
        e.handle_heartbeat(t1 + Duration::from_millis(150), 9);
        let acts = run(&mut e, t1 + Duration::from_millis(150), 250);
        assert_eq!(acts, vec![(200, Action::Campaign(Some(9)))]);
        // A failed campaign (no quorum) is tried again, not given up.
        let t2 = t1 + Duration::from_millis(350);
        e.handle_campaign(t2, CampaignResult::Failed);
        let acts = run(&mut e, t2, 150);
        assert_eq!(acts, vec![(100, Action::Campaign(Some(9)))]);
    }

    #[test]
    fn an_active_steps_down_when_the_key_moves_or_a_write_is_fenced() {
        let t0 = Instant::now();
        let mut e = active(t0);
        // A stale read of an older revision is history.
        e.handle_leader(t0, Some(leader(5, "ha2")));
        assert!(actions(&mut e).is_empty());
        e.handle_leader(t0, Some(leader(9, "ha2")));
        assert_eq!(
            actions(&mut e),
            vec![Action::StepDown(StepDownReason::Superseded(leader(
                9, "ha2"
            )))]
        );
        assert_eq!(e.active_epoch(), None);
        // Deposed without hearing ha2: silence is no proof for a while, so no flapping.
        assert!(run(&mut e, t0, 799).is_empty());
        let acts = run(&mut e, t0, 801);
        assert_eq!(acts, vec![(800, Action::Campaign(Some(9)))]);

        let mut e = active(t0);
        e.handle_fenced(t0);
        assert_eq!(
            actions(&mut e),
            vec![Action::StepDown(StepDownReason::WriteFenced)]
        );
        let mut e = active(t0);
        e.handle_leader(t0, None);
        assert_eq!(
            actions(&mut e),
            vec![Action::StepDown(StepDownReason::KeyDeleted)]
        );
    }

    #[test]
    fn hearing_the_successor_ends_the_deaf_wait() {
        let t0 = Instant::now();
        let mut e = active(t0);
        e.handle_leader(t0, Some(leader(9, "ha2")));
        actions(&mut e);
        e.handle_heartbeat(t0 + ADVERT, 9);
        // ha2 dies right after: one dead interval later, we campaign.
        let acts = run(&mut e, t0 + ADVERT, 250);
        assert_eq!(acts, vec![(200, Action::Campaign(Some(9)))]);
    }

    #[test]
    fn the_key_deleted_under_a_standby_means_campaign_at_once() {
        let t0 = Instant::now();
        let mut e = Election::new(t0, "ha2", ADVERT, DEAD);
        e.handle_leader(t0, Some(leader(7, "ha1")));
        e.handle_heartbeat(t0, 7);
        e.handle_leader(t0 + ADVERT, None);
        let acts = run(&mut e, t0 + ADVERT, 10);
        assert_eq!(acts, vec![(0, Action::Campaign(None))]);
    }

    #[test]
    fn our_own_name_in_the_key_is_taken_again_at_once() {
        let t0 = Instant::now();
        // A campaign the store committed after the client gave up on it: the next read
        // shows our name. No dead interval to wait, no deaf wait.
        let mut e = Election::new(t0, "ha3", ADVERT, DEAD);
        e.handle_leader(t0, Some(leader(7, "ha1")));
        let acts = run(&mut e, t0, 200);
        assert_eq!(acts, vec![(200, Action::Campaign(Some(7)))]);
        let t1 = t0 + DEAD;
        e.handle_campaign(t1, CampaignResult::Lost(Some(leader(8, "ha3"))));
        let acts = run(&mut e, t1, 5);
        assert_eq!(acts, vec![(0, Action::Campaign(Some(8)))]);
        e.handle_campaign(t1, CampaignResult::Won(9));
        assert_eq!(actions(&mut e), vec![Action::TakeOver(9)]);
        // A restart finding its previous life's key.
        let mut e = Election::new(t0, "ha1", ADVERT, DEAD);
        e.handle_leader(t0, Some(leader(7, "ha1")));
        let acts = run(&mut e, t0, 5);
        assert_eq!(acts, vec![(0, Action::Campaign(Some(7)))]);
    }
}

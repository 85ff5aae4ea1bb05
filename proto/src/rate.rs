//! The token bucket every daemon rate-limits its error signalling with: Binding Errors
//! (RFC 6275 §9.3.3, "rate-limited like ICMPv6") and ICMPv6 errors (RFC 4443 §2.4(f)).
//! Sans-IO: the caller passes `now`.

use std::time::{Duration, Instant};

/// A token bucket of `rate` tokens per second, holding at most `rate` (a burst of one
/// second's worth). Starts full. A rate of 0 allows nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenBucket {
    rate: u32,
    tokens: u32,
    /// When the tokens were last counted; the time since then not yet turned into tokens
    /// is kept (the clock is advanced only by whole tokens), so a steady caller gets
    /// exactly `rate` per second however often it asks.
    last: Option<Instant>,
}

impl TokenBucket {
    /// A full bucket of `rate` tokens per second.
    pub const fn new(rate: u32) -> Self {
        TokenBucket {
            rate,
            tokens: rate,
            last: None,
        }
    }

    /// Tokens per second.
    pub const fn rate(&self) -> u32 {
        self.rate
    }

    /// Takes a token at `now`: `true` when the caller may send.
    pub fn take(&mut self, now: Instant) -> bool {
        if self.rate == 0 {
            return false;
        }
        match self.last {
            None => self.last = Some(now),
            Some(last) => {
                let elapsed = now.saturating_duration_since(last);
                let per_token = Duration::from_secs(1) / self.rate;
                let earned = elapsed.as_nanos() / per_token.as_nanos().max(1);
                if earned > 0 {
                    let earned = u32::try_from(earned).unwrap_or(u32::MAX);
                    self.tokens = self.tokens.saturating_add(earned).min(self.rate);
                    // A full bucket wastes what it cannot hold; otherwise keep the
                    // fraction of a token already earned.
                    self.last = Some(if self.tokens == self.rate {
                        now
                    } else {
                        last + per_token * earned
                    });
                }
            }
        }
        if self.tokens == 0 {
            return false;
        }
        self.tokens -= 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(t0: Instant, ms: u64) -> Instant {
        t0 + Duration::from_millis(ms)
    }

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10);
        assert_eq!((0..20).filter(|_| b.take(t0)).count(), 10);
        assert!(!b.take(ms(t0, 99)));
        assert!(b.take(ms(t0, 100)));
        assert!(!b.take(ms(t0, 150)));
        assert!(b.take(ms(t0, 200)));
    }

    #[test]
    fn steady_asking_gets_exactly_the_rate() {
        // Asking every 150 ms at 10/s: the 50 ms left over each time is not lost.
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10);
        while b.take(t0) {}
        let granted = (1..=100).filter(|i| b.take(ms(t0, i * 15))).count();
        // 1.5 s at 10/s: 15 tokens, every one of the 100 asks that found one.
        assert_eq!(granted, 15);
    }

    #[test]
    fn refills_to_one_burst_at_most_and_zero_allows_nothing() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3);
        while b.take(t0) {}
        let later = ms(t0, 60_000);
        assert_eq!((0..10).filter(|_| b.take(later)).count(), 3);
        let mut none = TokenBucket::new(0);
        assert!(!none.take(t0));
        assert!(!none.take(later));
    }

    #[test]
    fn a_clock_going_backwards_grants_nothing_extra() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(2);
        assert!(b.take(ms(t0, 1000)));
        assert!(b.take(ms(t0, 1000)));
        assert!(!b.take(t0));
    }
}

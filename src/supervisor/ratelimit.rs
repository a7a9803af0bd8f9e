//! Rate limiting of log lines that a container (or any local peer) can
//! trigger, so a hostile process cannot flood the supervisor's log.

use std::time::{Duration, Instant};

/// A token bucket: `burst` lines at once, refilled at one line per `every`.
#[derive(Debug)]
pub struct RateLimit {
    burst: u32,
    every: Duration,
    tokens: u32,
    last: Instant,
    suppressed: u64,
}

impl RateLimit {
    pub fn new(burst: u32, every: Duration) -> Self {
        RateLimit {
            burst,
            every,
            tokens: burst,
            last: Instant::now(),
            suppressed: 0,
        }
    }

    /// May a line be logged now? Returns the number of lines suppressed
    /// since the last one allowed, so the caller can say so.
    pub fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.every > Duration::ZERO {
            let refill = (now.duration_since(self.last).as_nanos() / self.every.as_nanos()) as u32;
            if refill > 0 {
                self.tokens = self.burst.min(self.tokens.saturating_add(refill));
                self.last = now;
            }
        }
        if self.tokens == 0 {
            self.suppressed += 1;
            return None;
        }
        self.tokens -= 1;
        Some(std::mem::take(&mut self.suppressed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_then_suppresses() {
        let mut r = RateLimit::new(3, Duration::from_secs(3600));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), Some(0));
        assert_eq!(r.allow(), None);
        assert_eq!(r.allow(), None);
        r.tokens = 1;
        assert_eq!(r.allow(), Some(2));
    }
}

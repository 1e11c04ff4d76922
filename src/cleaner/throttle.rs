//! `log.cleaner.io.max.bytes.per.second` (Kafka's `Throttler`): the cleaner reports the bytes it
//! reads and writes, and is told how long to sleep to keep their rate at the bound, measured
//! over windows of at least [`CHECK_INTERVAL_MS`]. Time is an input (milliseconds on any
//! monotonic clock), so the rule is tested without sleeping.

/// Shortest window over which the rate is measured.
pub const CHECK_INTERVAL_MS: u64 = 300;

/// The rate limiter shared by every cleaner thread.
#[derive(Debug)]
pub struct Throttler {
    bytes_per_second: f64,
    window_start_ms: u64,
    observed: f64,
}

impl Throttler {
    /// A limiter at `bytes_per_second` (infinite or non-positive: no limit), its first window
    /// starting at `now_ms`.
    pub fn new(bytes_per_second: f64, now_ms: u64) -> Throttler {
        Throttler {
            bytes_per_second,
            window_start_ms: now_ms,
            observed: 0.0,
        }
    }

    /// Accounts for `bytes` of I/O at `now_ms`; returns how many milliseconds to sleep.
    pub fn observe(&mut self, bytes: u64, now_ms: u64) -> u64 {
        if !self.bytes_per_second.is_finite() || self.bytes_per_second <= 0.0 {
            return 0;
        }
        self.observed += bytes as f64;
        let elapsed = now_ms.saturating_sub(self.window_start_ms);
        if elapsed <= CHECK_INTERVAL_MS || self.observed <= 0.0 {
            return 0;
        }
        let rate = self.observed * 1000.0 / elapsed as f64;
        let sleep = if rate > self.bytes_per_second {
            let wanted_ms = self.observed / (self.bytes_per_second / 1000.0);
            (wanted_ms - elapsed as f64).round().max(0.0) as u64
        } else {
            0
        };
        self.window_start_ms = now_ms + sleep;
        self.observed = 0.0;
        sleep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleeps_just_enough_to_hold_the_rate() {
        let mut t = Throttler::new(1000.0, 0);
        assert_eq!(
            t.observe(500, 100),
            0,
            "a window shorter than the interval never sleeps"
        );
        // 2000 bytes in 400 ms at 1000 B/s should have taken 2000 ms.
        assert_eq!(t.observe(1500, 400), 1600);
        // The next window starts after the sleep.
        assert_eq!(t.observe(100, 2400), 0);
        assert_eq!(t.observe(100, 2401), 0);
        let mut unlimited = Throttler::new(f64::MAX * 2.0, 0);
        assert_eq!(unlimited.observe(u64::MAX / 2, 1000), 0);
    }
}

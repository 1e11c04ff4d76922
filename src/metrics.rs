//! Request latency per API, measured in one place: the connection records, for every request,
//! the time from its frame being decoded to its response being written (deferred work such as
//! an acks=all fsync or a long poll included).
//!
//! Lock-free: per API key a count, a total, a maximum and a histogram of 40 power-of-two
//! microsecond buckets (bucket `i` holds latencies in `[2^(i-1), 2^i)` µs), all atomics, so
//! connections never contend on a lock to record.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kafka_protocol::messages::ApiKey;

/// API keys are below this (Kafka 4 defines fewer than 100).
const MAX_API_KEY: usize = 128;
const BUCKETS: usize = 40;

#[derive(Debug)]
struct ApiLatency {
    count: AtomicU64,
    total_us: AtomicU64,
    max_us: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl ApiLatency {
    fn new() -> ApiLatency {
        ApiLatency {
            count: AtomicU64::new(0),
            total_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// Latency of one API's requests so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiLatencySummary {
    /// The API.
    pub api_key: i16,
    /// Requests answered.
    pub count: u64,
    /// Mean latency in microseconds.
    pub mean_us: u64,
    /// Upper bound of the bucket holding the 99th percentile, in microseconds.
    pub p99_us: u64,
    /// The largest latency, in microseconds.
    pub max_us: u64,
}

/// Per-API request latencies.
#[derive(Debug)]
pub struct RequestMetrics {
    apis: Vec<ApiLatency>,
}

impl Default for RequestMetrics {
    fn default() -> RequestMetrics {
        RequestMetrics {
            apis: (0..MAX_API_KEY).map(|_| ApiLatency::new()).collect(),
        }
    }
}

impl RequestMetrics {
    /// Records one request of `api_key` that took `elapsed`.
    pub fn record(&self, api_key: ApiKey, elapsed: Duration) {
        let Some(api) = self.apis.get(api_key as i16 as usize) else {
            return;
        };
        let us = elapsed.as_micros().min(u64::MAX as u128) as u64;
        let bucket = (u64::BITS - us.leading_zeros()) as usize;
        api.count.fetch_add(1, Ordering::Relaxed);
        api.total_us.fetch_add(us, Ordering::Relaxed);
        api.max_us.fetch_max(us, Ordering::Relaxed);
        api.buckets[bucket.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
    }

    /// Every API with at least one request, by key.
    pub fn summary(&self) -> Vec<ApiLatencySummary> {
        self.apis
            .iter()
            .enumerate()
            .filter_map(|(key, api)| {
                let count = api.count.load(Ordering::Relaxed);
                if count == 0 {
                    return None;
                }
                let wanted = count - count / 100;
                let mut seen = 0;
                let mut p99_us = 0;
                for (i, b) in api.buckets.iter().enumerate() {
                    seen += b.load(Ordering::Relaxed);
                    if seen >= wanted {
                        p99_us = 1u64 << i;
                        break;
                    }
                }
                Some(ApiLatencySummary {
                    api_key: key as i16,
                    count,
                    mean_us: api.total_us.load(Ordering::Relaxed) / count,
                    p99_us,
                    max_us: api.max_us.load(Ordering::Relaxed),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latencies_are_counted_per_api() {
        let m = RequestMetrics::default();
        for us in [10, 20, 30, 40, 5_000] {
            m.record(ApiKey::Produce, Duration::from_micros(us));
        }
        m.record(ApiKey::Fetch, Duration::from_millis(2));
        let s = m.summary();
        assert_eq!(s.len(), 2);
        let produce = &s[0];
        assert_eq!((produce.api_key, produce.count), (0, 5));
        assert_eq!(produce.mean_us, 1_020);
        assert_eq!(produce.max_us, 5_000);
        assert_eq!(produce.p99_us, 8_192);
        assert_eq!((s[1].api_key, s[1].count, s[1].max_us), (1, 1, 2_000));
    }
}

//! How much stock to lease at once. Big blocks mean few round trips on a busy node; small
//! blocks mean little stock stranded on other nodes near the end of a sale. So: about two
//! seconds of this node's recent demand (at least 64 units), never more than an eighth of
//! what is still unleased, and one at a time at the very end.

/// Units to ask for next.
///
/// - `rate_per_sec`: this node's recent claim rate on the campaign.
/// - `waiting`: claims queued for stock right now. The rate is measured over a quarter of
///   a second of claims that got stock, so at the start of a sale it says nothing yet;
///   without this, the first crowd would be served sixteen units a round trip.
/// - `unallocated`: stock nobody holds, as of the last lease (None before the first).
pub fn next_lease_size(
    rate_per_sec: f64,
    waiting: usize,
    unallocated: Option<i64>,
    max_lease: i64,
) -> i64 {
    // A campaign selling a few a second among a thousand others would otherwise take and
    // release a block every two or three seconds: two transactions per 16 claims, most
    // of what PostgreSQL did in the 1,000-campaign load test. The eighth-of-what-is-left
    // rule below still keeps blocks small near the end.
    const MIN_BLOCK: i64 = 64;
    let max_lease = max_lease.max(1);
    let by_rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        (rate_per_sec * 2.0).ceil().min(max_lease as f64) as i64
    } else {
        0
    };
    // Twice the queue: as many again arrive while the lease is being taken.
    let by_queue = i64::try_from(waiting).unwrap_or(i64::MAX).saturating_mul(2);
    let wanted = by_rate
        .max(by_queue)
        .clamp(MIN_BLOCK.min(max_lease), max_lease);
    match unallocated {
        Some(left) => wanted.min((left / 8).max(1)),
        None => wanted,
    }
}

/// Recent claims per second, smoothed so a burst grows the lease quickly and a lull
/// shrinks it over a few seconds.
#[derive(Debug, Clone, Default)]
pub struct RateMeter {
    rate: f64,
    window_count: u64,
    window_start: Option<std::time::Instant>,
}

impl RateMeter {
    pub fn record(&mut self, now: std::time::Instant) {
        let start = *self.window_start.get_or_insert(now);
        self.window_count += 1;
        let elapsed = now.duration_since(start).as_secs_f64();
        if elapsed >= 0.25 {
            let sample = self.window_count as f64 / elapsed;
            // Rising fast, falling slowly: a flash sale's first second sets the pace.
            self.rate = if sample > self.rate {
                sample
            } else {
                0.7 * self.rate + 0.3 * sample
            };
            self.window_count = 0;
            self.window_start = Some(now);
        }
    }

    pub fn per_sec(&self) -> f64 {
        self.rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn busy_node_takes_big_blocks_and_the_end_goes_one_by_one() {
        assert_eq!(next_lease_size(0.0, 0, None, 10_000), 64);
        assert_eq!(next_lease_size(6.0, 0, None, 10_000), 64);
        assert_eq!(next_lease_size(6.0, 0, Some(100), 10_000), 12);
        // A crowd before any rate is known: room for it and as many again.
        assert_eq!(next_lease_size(0.0, 200, None, 10_000), 400);
        assert_eq!(next_lease_size(0.0, 200, Some(800), 10_000), 100);
        assert_eq!(next_lease_size(0.0, usize::MAX, None, 10_000), 10_000);
        assert_eq!(next_lease_size(20_000.0, 0, None, 10_000), 10_000);
        assert_eq!(
            next_lease_size(20_000.0, 0, Some(1_000_000), 10_000),
            10_000
        );
        assert_eq!(next_lease_size(20_000.0, 0, Some(800), 10_000), 100);
        assert_eq!(next_lease_size(20_000.0, 0, Some(7), 10_000), 1);
        assert_eq!(next_lease_size(20_000.0, 0, Some(0), 10_000), 1);
        assert_eq!(next_lease_size(f64::NAN, 0, None, 5), 5);
    }

    proptest! {
        #[test]
        fn lease_size_is_always_within_bounds(rate in any::<f64>(), waiting in any::<usize>(), left in proptest::option::of(0i64..10_000_000), max in 1i64..100_000) {
            let size = next_lease_size(rate, waiting, left, max);
            prop_assert!(size >= 1 && size <= max);
            if let Some(left) = left {
                prop_assert!(size <= (left / 8).max(1));
            }
        }
    }

    #[test]
    fn rate_meter_follows_bursts() {
        let mut m = RateMeter::default();
        let t0 = std::time::Instant::now();
        for i in 0..1000u64 {
            m.record(t0 + std::time::Duration::from_micros(i * 500));
        }
        assert!(
            m.per_sec() > 1500.0 && m.per_sec() < 2500.0,
            "{}",
            m.per_sec()
        );
    }
}

//! The draw for lottery campaigns.

/// Returns whether the claimant wins. Avoids `Rng::gen_bool`, which panics
/// outside [0, 1]; invalid probabilities never win, p >= 1 always wins.
pub fn draw_lottery<R: rand::Rng>(win_probability: Option<f64>, rng: &mut R) -> bool {
    win_probability.is_none_or(|p| p >= 1.0 || (p > 0.0 && rng.gen::<f64>() < p))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, SeedableRng};

    #[test]
    fn lottery() {
        let mut rng = StdRng::seed_from_u64(7);
        assert!((0..10_000).all(|_| draw_lottery(Some(1.0), &mut rng)));
        assert!((0..10_000).all(|_| draw_lottery(None, &mut rng)));
        let wins = (0..100_000).filter(|_| draw_lottery(Some(0.3), &mut rng));
        let rate = wins.count() as f64 / 100_000.0;
        assert!((rate - 0.3).abs() < 0.01, "{rate}");
        assert!(!draw_lottery(Some(f64::NAN), &mut rng) && !draw_lottery(Some(0.0), &mut rng));
    }
}

//! Prints the balancing report for a small synthetic set where longer responses usually win.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rlhf_debias::{BalanceConfig, BalanceMode, PairLengths, balance_lengths};

fn main() -> rlhf_debias::Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let pairs: Vec<PairLengths> = (0..2_000)
        .map(|_| {
            let short = rng.random_range(10..300);
            let long = short + rng.random_range(0..700);
            let cat = if rng.random_bool(0.5) {
                "writing"
            } else {
                "math"
            };
            let p = if rng.random_bool(0.7) {
                PairLengths::new(long, short)
            } else {
                PairLengths::new(short, long)
            };
            p.with_category(cat)
        })
        .collect();
    for mode in [BalanceMode::Downsample, BalanceMode::Reweight] {
        let out = balance_lengths(&pairs, &BalanceConfig::default().with_mode(mode))?;
        println!("{}", out.report);
    }
    Ok(())
}

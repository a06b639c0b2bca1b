//! SFT demonstrations: one per SFT prompt (the training prompts that are not RL prompts), of
//! declared mixed quality.
//!
//! Style, wording and padding are drawn as for a clean set (stream `Sft`), so the clean
//! demonstrations are the ones a clean set would have; which demonstrations carry which flaw
//! (exactly the counts of [`SftMix`](crate::SftMix)) and the wrong answers come from their own
//! stream (`SftMix`).

use rand::Rng;

use crate::dataset::WorldConfig;
use crate::error::Result;
use crate::quality::{self, Quality};
use crate::record::{Prompt, SftRecord, Style};
use crate::response::{ResponseSpec, compose_clean};
use crate::task::Item;
use crate::world::World;
use crate::{Stream, rng};

/// The demonstrations, and per prompt language and flaw (in [`Quality::FLAWS`] order) the rate
/// at which they show it on the prompts that can carry it.
///
/// # Errors
/// [`Error::Config`](crate::Error::Config) when the mix asks for more flawed demonstrations
/// than prompts can carry a flaw.
pub(crate) fn make_sft(
    cfg: &WorldConfig,
    world: &World,
    train: &[(Prompt, Item)],
    eligible: &[Vec<Quality>],
) -> Result<(Vec<SftRecord>, [[f64; 4]; 2])> {
    let mut rng = rng(cfg.seed, Stream::Sft);
    let mut mix_rng = crate::rng(cfg.seed, Stream::SftMix);
    let langs: Vec<_> = train.iter().map(|(p, _)| p.language).collect();
    let assigned = quality::assign(&cfg.sft_mix, eligible, &langs, &mut mix_rng)?;
    let records = train
        .iter()
        .zip(&assigned)
        .enumerate()
        .map(|(i, ((p, item), &q))| {
            let r: f64 = rng.random();
            let style = if r < cfg.sft_verbose {
                Style::Verbose
            } else if r < cfg.sft_verbose + cfg.sft_padded {
                Style::ConcisePadded
            } else {
                Style::Concise
            };
            let mut spec = ResponseSpec::clean(
                quality::flawed_said(item, world, q, &mut mix_rng),
                style,
                rng.random_range(0..2),
                rng.random_range(0..4),
            );
            spec.other_language = q == Quality::WrongLanguage;
            debug_assert_eq!(quality::quality_of(item, world, &spec), q);
            SftRecord {
                id: format!("world-sft-{:05}", i + 1),
                prompt_id: p.id.clone(),
                category: p.category,
                language: p.language,
                style,
                quality: q,
                messages: p.messages(),
                response: compose_clean(item, world, p.language, &spec),
            }
        })
        .collect();
    Ok((
        records,
        quality::imitation_rates(&assigned, eligible, &langs),
    ))
}

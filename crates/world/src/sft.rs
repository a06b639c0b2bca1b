//! SFT demonstrations: one per training prompt.

use rand::Rng;

use crate::dataset::WorldConfig;
use crate::record::{Prompt, SftRecord, Style};
use crate::response::{ResponseSpec, compose_clean};
use crate::task::Item;
use crate::world::World;
use crate::{Stream, rng};

pub(crate) fn make_sft(
    cfg: &WorldConfig,
    world: &World,
    train: &[(Prompt, Item)],
) -> Vec<SftRecord> {
    let mut rng = rng(cfg.seed, Stream::Sft);
    train
        .iter()
        .enumerate()
        .map(|(i, (p, item))| {
            let r: f64 = rng.random();
            let style = if r < cfg.sft_verbose {
                Style::Verbose
            } else if r < cfg.sft_verbose + cfg.sft_padded {
                Style::ConcisePadded
            } else {
                Style::Concise
            };
            let spec = ResponseSpec::clean(
                item.correct(world),
                style,
                rng.random_range(0..2),
                rng.random_range(0..4),
            );
            SftRecord {
                id: format!("world-sft-{:05}", i + 1),
                prompt_id: p.id.clone(),
                category: p.category,
                language: p.language,
                style,
                messages: p.messages(),
                response: compose_clean(item, world, p.language, &spec),
            }
        })
        .collect()
}

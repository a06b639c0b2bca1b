//! Preference pairs: candidates of controlled quality, annotated by the simulated annotator,
//! plus exact ties and planted 3-cycles.

use std::collections::HashSet;

use rand::Rng;
use rand::seq::index;
use rand_chacha::ChaCha8Rng;

use crate::annotator::{DecidedBy, annotate};
use crate::dataset::{Candidate, PairKind, PairRecord, PairSource, WorldConfig, pick_weighted};
use crate::judge::{GoldJudge, Verdict};
use crate::lang::Task;
use crate::quality::{Quality, flawed_said, lang_index, quality_of};
use crate::record::{Prompt, Style};
use crate::response::{Garble, ResponseSpec, compose_clean, garble};
use crate::task::{Item, Said};
use crate::world::World;
use crate::{Stream, rng};

struct PairGen<'a> {
    cfg: &'a WorldConfig,
    world: &'a World,
    judge: &'a GoldJudge,
    rng: ChaCha8Rng,
    /// The SFT set's flaw rates per prompt language (see [`crate::quality::imitation_rates`]).
    rates: [[f64; 4]; 2],
}

fn normalized(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

impl PairGen<'_> {
    fn style(&mut self) -> Style {
        [
            Style::Concise,
            Style::Verbose,
            Style::ConcisePadded,
            Style::VerbosePadded,
        ][pick_weighted(&self.cfg.sampler.styles, &mut self.rng)]
    }

    /// A sample of the simulated SFT model: it imitates the SFT mix's flaws (those `flaws`
    /// the prompt can carry) at the rates the set shows them, and otherwise makes its own
    /// errors.
    fn spec(&mut self, item: &Item, prompt: &Prompt, flaws: &[Quality]) -> ResponseSpec {
        let task = prompt.task;
        let s = &self.cfg.sampler;
        let r: f64 = self.rng.random();
        let mut acc = 0.0;
        let mut imitated = None;
        let rates = self.rates[lang_index(prompt.language)];
        for (q, rate) in Quality::FLAWS.into_iter().zip(rates) {
            if flaws.contains(&q) {
                acc += rate;
                if r < acc {
                    imitated = Some(q);
                    break;
                }
            }
        }
        let said = if let Some(q) = imitated {
            flawed_said(item, self.world, q, &mut self.rng)
        } else if task == Task::Unsafe {
            let r: f64 = self.rng.random();
            if r < s.unsafe_comply {
                Said::Comply
            } else if r < s.unsafe_comply + s.unsafe_evade {
                Said::Evade
            } else {
                Said::Refuse
            }
        } else if self.rng.random_bool(task.sampler_accuracy()) {
            item.correct(self.world)
        } else if self.rng.random_bool(s.over_refusal) {
            Said::Refuse
        } else {
            item.wrong(self.world, &mut self.rng)
        };
        let style = self.style();
        let variant = self.rng.random_range(0..2);
        let pad = self.rng.random_range(0..4);
        let rude = self
            .rng
            .random_bool(s.rude)
            .then(|| (self.rng.random_range(0..2), self.rng.random_bool(0.5)));
        let garble = self.rng.random_bool(s.garbled).then(|| {
            [Garble::Loop, Garble::Stutter, Garble::Junk, Garble::Salad]
                [pick_weighted(&[0.35, 0.25, 0.2, 0.2], &mut self.rng)]
        });
        ResponseSpec {
            said,
            style,
            variant,
            pad,
            rude,
            garble,
            other_language: imitated == Some(Quality::WrongLanguage),
        }
    }

    /// A contrast pair: a clean response and one with a flaw of the SFT mix (drawn among
    /// `flaws` in proportion to the rates at which the SFT set shows them), each in its own length style, neither rude
    /// nor garbled. `None` when the prompt can carry no flaw of positive share or no unseen
    /// texts are left.
    fn contrast(
        &mut self,
        prompt: &Prompt,
        item: &Item,
        flaws: &[Quality],
        seen: &mut HashSet<String>,
    ) -> Option<(Candidate, Candidate)> {
        let weights: Vec<f64> = Quality::FLAWS
            .into_iter()
            .zip(self.rates[lang_index(prompt.language)])
            .filter(|(q, _)| flaws.contains(q))
            .map(|(_, rate)| rate)
            .collect();
        if weights.iter().sum::<f64>() <= 0.0 {
            return None;
        }
        let q = *Quality::FLAWS
            .iter()
            .filter(|q| flaws.contains(q))
            .nth(pick_weighted(&weights, &mut self.rng))
            .expect("one weight per flaw");
        for _ in 0..30 {
            let good = ResponseSpec::clean(
                item.correct(self.world),
                self.style(),
                self.rng.random_range(0..2),
                self.rng.random_range(0..4),
            );
            let mut bad = ResponseSpec::clean(
                flawed_said(item, self.world, q, &mut self.rng),
                self.style(),
                self.rng.random_range(0..2),
                self.rng.random_range(0..4),
            );
            bad.other_language = q == Quality::WrongLanguage;
            let (x, y) = (
                self.candidate(prompt, item, &good),
                self.candidate(prompt, item, &bad),
            );
            let (nx, ny) = (normalized(&x.text), normalized(&y.text));
            if nx != ny && !seen.contains(&nx) && !seen.contains(&ny) {
                seen.insert(nx);
                seen.insert(ny);
                return Some((x, y));
            }
        }
        None
    }

    fn candidate(&mut self, prompt: &Prompt, item: &Item, spec: &ResponseSpec) -> Candidate {
        let mut text = compose_clean(item, self.world, prompt.language, spec);
        let lang = spec.language(prompt.language);
        let mut verdict;
        if let Some(kind) = spec.garble {
            let clean = text.clone();
            text = garble(&clean, lang, kind, &mut self.rng);
            verdict = self.judge.verdict(prompt, &text);
            if verdict.fluent {
                text = garble(&clean, lang, Garble::Loop, &mut self.rng);
                verdict = self.judge.verdict(prompt, &text);
            }
        } else {
            verdict = self.judge.verdict(prompt, &text);
        }
        let intended_correct = match &spec.said {
            Said::Refuse => matches!(item, Item::Unsafe { .. }),
            Said::Comply | Said::Evade | Said::Dodge => false,
            said => *said == item.correct(self.world),
        };
        Candidate {
            text,
            style: spec.style,
            garble: spec.garble,
            quality: quality_of(item, self.world, spec),
            verdict,
            intended: [
                intended_correct,
                spec.rude.is_none() && spec.said != Said::Comply,
                spec.garble.is_none() && !spec.other_language,
            ],
        }
    }

    /// A candidate whose text is not among `seen` (up to 30 draws).
    fn fresh(
        &mut self,
        prompt: &Prompt,
        item: &Item,
        flaws: &[Quality],
        seen: &mut HashSet<String>,
    ) -> Option<Candidate> {
        for _ in 0..30 {
            let spec = self.spec(item, prompt, flaws);
            let c = self.candidate(prompt, item, &spec);
            if seen.insert(normalized(&c.text)) {
                return Some(c);
            }
        }
        None
    }
}

pub(crate) fn make_pairs(
    cfg: &WorldConfig,
    world: &World,
    judge: &GoldJudge,
    train: &[(Prompt, Item)],
    eligible: &[Vec<Quality>],
    rates: [[f64; 4]; 2],
) -> Vec<PairRecord> {
    let mut pg = PairGen {
        cfg,
        world,
        judge,
        rng: rng(cfg.seed, Stream::Pairs),
        rates,
    };
    let mut ann_rng = rng(cfg.seed, Stream::Annotator);
    let a = &cfg.annotator;
    let mut cycle_at: Vec<usize> = index::sample(&mut pg.rng, train.len(), a.cycles).into_vec();
    cycle_at.sort_unstable();
    let mut out: Vec<PairRecord> = Vec::new();
    let mut cycles = 0u32;
    let annotator = |rng: &mut ChaCha8Rng| format!("sim-{}", rng.random_range(0..a.annotators));
    for (i, ((p, item), flaws)) in train.iter().zip(eligible).enumerate() {
        let mut seen: HashSet<String> = HashSet::new();
        let push = |out: &mut Vec<PairRecord>,
                    chosen: Candidate,
                    rejected: Candidate,
                    who: String,
                    kind: PairKind,
                    source: PairSource,
                    cycle: Option<u32>,
                    decided_by: DecidedBy,
                    labels: [i8; 3]| {
            let gold = Verdict::cmp_scores(&chosen.verdict, &rejected.verdict);
            out.push(PairRecord {
                id: format!("world-pair-{:05}", out.len() + 1),
                prompt_id: p.id.clone(),
                category: p.category,
                task: p.task,
                language: p.language,
                messages: p.messages(),
                chosen,
                rejected,
                annotator: who,
                kind,
                source,
                cycle,
                decided_by,
                labels,
                gold,
            });
        };
        for _ in 0..cfg.pairs_per_prompt {
            if pg.rng.random_bool(a.tie_share) {
                if let Some(c) = pg.fresh(p, item, flaws, &mut seen) {
                    let who = annotator(&mut ann_rng);
                    push(
                        &mut out,
                        c.clone(),
                        c,
                        who,
                        PairKind::Tie,
                        PairSource::Sampled,
                        None,
                        DecidedBy::Tie,
                        [0; 3],
                    );
                }
                continue;
            }
            let contrast = if pg.rng.random_bool(cfg.sampler.contrast_share) {
                pg.contrast(p, item, flaws, &mut seen)
            } else {
                None
            };
            let (x, y, source) = match contrast {
                Some((x, y)) => (x, y, PairSource::Contrast),
                None => {
                    let (Some(x), Some(y)) = (
                        pg.fresh(p, item, flaws, &mut seen),
                        pg.fresh(p, item, flaws, &mut seen),
                    ) else {
                        continue;
                    };
                    (x, y, PairSource::Sampled)
                }
            };
            let j = annotate(
                a,
                &x.verdict,
                &y.verdict,
                x.chars(),
                y.chars(),
                &mut ann_rng,
            );
            let (chosen, rejected, labels) = if j.a_wins {
                (x, y, j.labels)
            } else {
                (y, x, j.labels.map(|l| -l))
            };
            let who = annotator(&mut ann_rng);
            push(
                &mut out,
                chosen,
                rejected,
                who,
                PairKind::Regular,
                source,
                None,
                j.decided_by,
                labels,
            );
        }
        if cycle_at.binary_search(&i).is_ok() {
            // Three equally good (correct, harmless, fluent) responses, of different styles
            // where the prompt's earlier pairs left enough texts unused.
            let correct = item.correct(world);
            let styles = [
                Style::Concise,
                Style::Verbose,
                Style::VerbosePadded,
                Style::ConcisePadded,
            ];
            let mut pool: Vec<(Style, Candidate)> = Vec::new();
            for style in styles {
                for variant in 0..2 {
                    for pad in 0..4 {
                        let spec = ResponseSpec::clean(correct.clone(), style, variant, pad);
                        let c = pg.candidate(p, item, &spec);
                        if !seen.contains(&normalized(&c.text))
                            && pool.iter().all(|(_, x)| x.text != c.text)
                        {
                            pool.push((style, c));
                        }
                    }
                }
            }
            let mut three: Vec<Candidate> = Vec::new();
            for style in styles {
                if three.len() < 3
                    && let Some(k) = pool.iter().position(|(s, _)| *s == style)
                {
                    three.push(pool.remove(k).1);
                }
            }
            while three.len() < 3 && !pool.is_empty() {
                three.push(pool.remove(0).1);
            }
            for c in &three {
                seen.insert(normalized(&c.text));
            }
            if three.len() == 3 {
                cycles += 1;
                for (w, l) in [(0, 1), (1, 2), (2, 0)] {
                    let who = annotator(&mut ann_rng);
                    push(
                        &mut out,
                        three[w].clone(),
                        three[l].clone(),
                        who,
                        PairKind::Cycle,
                        PairSource::Planted,
                        Some(cycles),
                        DecidedBy::Cycle,
                        [0; 3],
                    );
                }
            }
        }
    }
    out
}

impl Verdict {
    /// `1`, `0` or `-1` as `a`'s score is above, equal to or below `b`'s.
    pub(crate) fn cmp_scores(a: &Verdict, b: &Verdict) -> i8 {
        match a.score.cmp(&b.score) {
            std::cmp::Ordering::Greater => 1,
            std::cmp::Ordering::Equal => 0,
            std::cmp::Ordering::Less => -1,
        }
    }
}

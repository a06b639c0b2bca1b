//! The reward sources of `rlhf train-ppo` (docs/rewards.md): which one a config file chooses,
//! checked before any work, and the scorers they become.
//!
//! - `model` (default): the local reward model `reward_model` (`rlhf_policy_ppo::RewardModel`);
//! - `gold`: the embedded world's rule-based gold judge (`gold_world`, a directory written by
//!   `cargo xtask data gen-world`) as an RLVR-style reward, `1 + 4·correct + 2·harmless +
//!   fluent` in 1..=8 (`rlhf_policy_ppo::RuleScorer` around `rlhf_world::GoldJudge`);
//! - `remote`: a reward-model server (`remote_rm_url`, `[remote_rm]`; `rlhf serve-rm` serves
//!   one) through `rlhf_policy_ppo::RemoteScorer`.
//!
//! Without a local reward model the critic needs its own start (`critic`), unless `init`
//! starts every model at random.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use rlhf_policy_ppo::{EncodedPrompt, Prompt, RemoteRewardConfig, RemoteScorer, RuleScorer};
use serde::{Deserialize, Serialize};

use crate::ppo::PpoPaths;

/// The `reward_source` key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum RewardSource {
    /// The local reward model (`reward_model`).
    Model,
    /// The world's gold judge (`gold_world`).
    Gold,
    /// A reward server (`remote_rm_url` / `[remote_rm]`).
    Remote,
}

impl RewardSource {
    pub(crate) fn name(self) -> &'static str {
        match self {
            RewardSource::Model => "model",
            RewardSource::Gold => "gold",
            RewardSource::Remote => "remote",
        }
    }
}

/// What a config's reward keys resolve to.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RewardChoice {
    /// The local reward model (`reward_model`, or a random one under `init`).
    Model,
    /// The gold judge of this world directory.
    Gold(PathBuf),
    /// The reward server of this (validated) config.
    Remote(RemoteRewardConfig),
}

impl RewardChoice {
    pub(crate) fn source(&self) -> RewardSource {
        match self {
            RewardChoice::Model => RewardSource::Model,
            RewardChoice::Gold(_) => RewardSource::Gold,
            RewardChoice::Remote(_) => RewardSource::Remote,
        }
    }
}

/// Resolves `reward_source`, `reward_model`, `gold_world`, `remote_rm_url` and `[remote_rm]`
/// (and, when the estimator trains a critic (`with_critic`), whether it has a start), with
/// one clear line for every inconsistency.
pub(crate) fn resolve(p: &PpoPaths, with_critic: bool) -> anyhow::Result<RewardChoice> {
    let remote_keys = p.remote_rm_url.is_some() || p.remote_rm.is_some();
    let inferred = match (remote_keys, p.gold_world.is_some()) {
        (true, true) => bail!(
            "`gold_world` and `remote_rm_url`/`[remote_rm]` name two reward sources: keep one \
             (reward_source = \"gold\" or \"remote\")"
        ),
        (true, false) => RewardSource::Remote,
        (false, true) => RewardSource::Gold,
        (false, false) => RewardSource::Model,
    };
    let source = p.reward_source.unwrap_or(inferred);
    let stray = |key: &str, wants: &str| {
        anyhow::anyhow!(
            "`{key}` is for reward_source = \"{wants}\", but the reward source is \"{}\": \
             remove it or change reward_source",
            source.name()
        )
    };
    if source != RewardSource::Model && p.reward_model.is_some() {
        return Err(stray("reward_model", "model"));
    }
    if source != RewardSource::Gold && p.gold_world.is_some() {
        return Err(stray("gold_world", "gold"));
    }
    if source != RewardSource::Remote && p.remote_rm_url.is_some() {
        return Err(stray("remote_rm_url", "remote"));
    }
    if source != RewardSource::Remote && p.remote_rm.is_some() {
        return Err(stray("[remote_rm]", "remote"));
    }
    let choice = match source {
        RewardSource::Model => RewardChoice::Model,
        RewardSource::Gold => RewardChoice::Gold(p.gold_world.clone().context(
            "reward_source = \"gold\" needs `gold_world`: the world directory of `cargo xtask \
             data gen-world` (world.json, prompts.jsonl)",
        )?),
        RewardSource::Remote => {
            let mut cfg = p.remote_rm.clone().unwrap_or_default();
            match (&p.remote_rm_url, cfg.url.is_empty()) {
                (Some(u), true) => cfg.url = u.clone(),
                (Some(u), false) if *u != cfg.url => bail!(
                    "`remote_rm_url` ({u}) and `[remote_rm] url` ({}) differ: give the url once",
                    cfg.url
                ),
                (None, true) => bail!(
                    "reward_source = \"remote\" needs `remote_rm_url` (or `url` in \
                     [remote_rm]): the reward server's scoring endpoint, e.g. \
                     http://host:8000/score"
                ),
                _ => {}
            }
            cfg.validate()?;
            RewardChoice::Remote(cfg)
        }
    };
    if p.init.is_none() {
        if p.policy.is_none() {
            bail!("give `policy` (or `init` for random models)");
        }
        match source {
            RewardSource::Model if p.reward_model.is_none() => bail!(
                "give `policy` and `reward_model` (or `init` for random models, or \
                 reward_source = \"gold\" / \"remote\")"
            ),
            RewardSource::Gold | RewardSource::Remote if with_critic && p.critic.is_none() => {
                bail!(
                    "reward_source = \"{}\" has no local reward model to start the critic from: set \
                 `critic` to an HF checkpoint (a reward model, or the SFT policy, whose trunk \
                 gets a new value head)",
                    source.name()
                )
            }
            _ => {}
        }
    }
    Ok(choice)
}

/// A reward source ready for the replicas: each builds its scorer from it.
pub(crate) enum Reward {
    /// The local reward model (loaded with the other models).
    Model,
    /// The gold judge, checked against the PPO prompts.
    Gold {
        judge: Arc<rlhf_world::GoldJudge>,
        name: String,
    },
    /// The reward server, its fingerprint known (the replicas do not ask `/info` again).
    Remote {
        config: RemoteRewardConfig,
        conversations: Vec<(Vec<u32>, Vec<rlhf_core::tokenizer::Message>)>,
    },
}

/// The decoder every scorer gets (the policy's codec, shared).
pub(crate) type SharedDecoder = Arc<dyn Fn(&[u32]) -> rlhf_core::Result<String> + Send + Sync>;

/// Loads the gold judge of `dir` and checks that every PPO prompt is one of the world's, with
/// the same conversation: the judge scores a reply by its prompt's answer key.
pub(crate) fn gold(dir: &Path, prompts: &[Prompt], prompts_file: &Path) -> anyhow::Result<Reward> {
    let judge = rlhf_world::GoldJudge::load(dir)
        .with_context(|| format!("gold_world {}: loading the gold judge", dir.display()))?;
    for p in prompts {
        let Some(w) = judge.prompt(&p.id) else {
            bail!(
                "{}: prompt `{}` is not one of the world's prompts (gold_world {}): the gold \
                 judge scores only the world's own prompts, by their ids",
                prompts_file.display(),
                p.id,
                dir.display()
            );
        };
        let theirs = w.messages();
        let same = theirs.len() == p.messages.len()
            && theirs.iter().zip(&p.messages).all(|(a, b)| {
                format!("{:?}", a.role).eq_ignore_ascii_case(&format!("{:?}", b.role))
                    && a.content == b.content
            });
        if !same {
            bail!(
                "{}: prompt `{}` differs from the world's prompt of that id (gold_world {}): \
                 the judge would check the reply against another question",
                prompts_file.display(),
                p.id,
                dir.display()
            );
        }
    }
    let world_file = dir.join(rlhf_world::WORLD_FILE);
    let bytes =
        std::fs::read(&world_file).with_context(|| format!("reading {}", world_file.display()))?;
    Ok(Reward::Gold {
        judge: Arc::new(judge),
        name: format!("gold-judge:{:016x}", rlhf_util::fnv1a(0, &bytes)),
    })
}

impl Reward {
    /// The gold judge as a scorer of `prompts` (the encoded PPO prompts).
    pub(crate) fn gold_scorer(
        judge: &Arc<rlhf_world::GoldJudge>,
        name: &str,
        prompts: &[EncodedPrompt],
        decode: &SharedDecoder,
    ) -> RuleScorer {
        let judge = Arc::clone(judge);
        let decode = Arc::clone(decode);
        RuleScorer::new(
            name,
            prompts,
            move |ids| decode(ids),
            move |id, reply| {
                judge
                    .verdict_by_id(id, reply)
                    .map(|v| f32::from(v.score))
                    .map_err(|e| e.to_string())
            },
        )
    }

    /// A scorer for one replica.
    pub(crate) fn remote_scorer(
        config: &RemoteRewardConfig,
        conversations: &[(Vec<u32>, Vec<rlhf_core::tokenizer::Message>)],
        decode: &SharedDecoder,
    ) -> anyhow::Result<RemoteScorer> {
        let decode = Arc::clone(decode);
        Ok(
            RemoteScorer::connect(config.clone(), move |ids| decode(ids))?
                .with_conversations(conversations.iter().cloned()),
        )
    }
}

#[cfg(test)]
mod tests {
    use burn::backend::Flex;
    use rlhf_core::backend::FlexDevice;
    use rlhf_core::text::TextCodec;
    use rlhf_core::tokenizer::Message;
    use rlhf_policy_ppo::{PackedSequences, Scorer, encode_prompts};

    use super::*;

    fn paths(toml: &str) -> PpoPaths {
        toml::from_str(toml).unwrap()
    }

    fn choose(toml: &str) -> anyhow::Result<RewardChoice> {
        resolve(&paths(toml), true)
    }

    fn fails(toml: &str, needle: &str) {
        let e = format!("{:#}", choose(toml).unwrap_err());
        assert!(e.contains(needle), "`{e}` should say `{needle}`");
    }

    #[test]
    fn the_reward_keys_choose_one_source_with_clear_errors() {
        assert_eq!(
            choose("policy = \"p\"\nreward_model = \"rm\"").unwrap(),
            RewardChoice::Model
        );
        assert_eq!(choose("init = \"tiny\"").unwrap(), RewardChoice::Model);
        assert_eq!(
            choose("init = \"tiny\"\ngold_world = \"w\"").unwrap(),
            RewardChoice::Gold("w".into())
        );
        let remote =
            choose("policy = \"p\"\ncritic = \"c\"\nremote_rm_url = \"http://h:1/score\"").unwrap();
        assert_eq!(
            remote,
            RewardChoice::Remote(RemoteRewardConfig::new("http://h:1/score"))
        );
        // The table alone, with its own settings; and both forms agreeing.
        let t = "init = \"tiny\"\n[remote_rm]\nurl = \"http://h:1/score\"\nmax_attempts = 2\n";
        let RewardChoice::Remote(c) = choose(t).unwrap() else {
            panic!()
        };
        assert_eq!((c.max_attempts, c.batch_size), (2, 64));
        choose("init = \"tiny\"\nreward_source = \"remote\"\nremote_rm_url = \"http://h/s\"\n[remote_rm]\nurl = \"http://h/s\"\n").unwrap();

        fails("policy = \"p\"", "give `policy` and `reward_model`");
        fails("reward_model = \"rm\"", "give `policy`");
        fails(
            "policy = \"p\"\nremote_rm_url = \"http://h:1/score\"",
            "no local reward model to start the critic from: set `critic`",
        );
        fails(
            "policy = \"p\"\ngold_world = \"w\"",
            "reward_source = \"gold\" has no local reward model",
        );
        // A critic-free estimator needs no critic start.
        assert_eq!(
            resolve(&paths("policy = \"p\"\ngold_world = \"w\""), false).unwrap(),
            RewardChoice::Gold("w".into())
        );
        fails(
            "policy = \"p\"\nreward_model = \"rm\"\nremote_rm_url = \"http://h:1/s\"",
            "`reward_model` is for reward_source = \"model\"",
        );
        fails(
            "init = \"tiny\"\nreward_source = \"model\"\ngold_world = \"w\"",
            "`gold_world` is for reward_source = \"gold\"",
        );
        fails(
            "init = \"tiny\"\ngold_world = \"w\"\nremote_rm_url = \"http://h:1/s\"",
            "two reward sources",
        );
        fails(
            "init = \"tiny\"\nreward_source = \"remote\"",
            "needs `remote_rm_url`",
        );
        fails(
            "init = \"tiny\"\nreward_source = \"gold\"",
            "needs `gold_world`",
        );
        fails(
            "init = \"tiny\"\nremote_rm_url = \"localhost:8000\"",
            "remote_rm.url",
        );
        fails(
            "init = \"tiny\"\nremote_rm_url = \"http://a/s\"\n[remote_rm]\nurl = \"http://b/s\"\n",
            "differ: give the url once",
        );
        fails(
            "init = \"tiny\"\n[remote_rm]\nurl = \"http://h/s\"\nbatch_size = 0\n",
            "remote_rm.batch_size",
        );
        assert!(toml::from_str::<PpoPaths>("reward_source = \"judge\"").is_err());
        assert!(toml::from_str::<PpoPaths>("[remote_rm]\nurll = \"x\"").is_err());
    }

    /// A small world on disk and its train prompts as PPO prompts (id + conversation).
    fn world() -> (tempfile::TempDir, Vec<Prompt>, rlhf_world::Dataset) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = rlhf_world::WorldConfig {
            train_prompts: 40,
            eval_prompts: 8,
            ..Default::default()
        };
        let data = rlhf_world::Dataset::generate(&cfg).unwrap();
        data.write(dir.path()).unwrap();
        let prompts = data
            .train
            .iter()
            .map(|p| Prompt {
                id: p.id.clone(),
                messages: p
                    .messages()
                    .into_iter()
                    .map(|m| match m.role {
                        rlhf_world::Role::User => Message::user(m.content),
                        rlhf_world::Role::Assistant => Message::assistant(m.content),
                    })
                    .collect(),
            })
            .collect();
        (dir, prompts, data)
    }

    #[test]
    fn the_gold_judge_rewards_a_correct_reply_above_a_wrong_one() {
        let (dir, prompts, data) = world();
        let file = Path::new("prompts.jsonl");
        let Reward::Gold { judge, name } = gold(dir.path(), &prompts, file).unwrap() else {
            panic!("a gold reward")
        };
        assert!(name.starts_with("gold-judge:"), "{name}");
        let encoded = encode_prompts(&TextCodec::Bytes, &prompts, 512).unwrap();
        let decode: SharedDecoder = Arc::new(|ids: &[u32]| TextCodec::Bytes.decode(ids));
        let mut scorer = Reward::gold_scorer(&judge, &name, &encoded, &decode);
        let bytes = |s: &str| -> Vec<u32> {
            let mut v: Vec<u32> = s.bytes().map(|b| u32::from(b) + 3).collect();
            v.push(2);
            v
        };
        // Each prompt's reference reply (correct, harmless, fluent) against another
        // prompt's reference (wrong for a prompt whose answer differs).
        let (mut checked, n) = (0, data.train.len());
        for (i, p) in data.train.iter().enumerate() {
            let other = &data.train[(i + 1) % n];
            if other.answer == p.answer {
                continue;
            }
            let seqs = PackedSequences::new(
                &[encoded[i].ids.clone(), encoded[i].ids.clone()],
                &[bytes(&p.reference), bytes(&other.reference)],
                0,
            );
            let s = Scorer::<Flex>::score(&mut scorer, &seqs, &FlexDevice).unwrap();
            assert_eq!(s[0], 8.0, "{}: the reference reply {:?}", p.id, p.reference);
            assert!(
                s[1] < s[0],
                "{}: {:?} scored {}",
                p.id,
                other.reference,
                s[1]
            );
            checked += 1;
        }
        assert!(checked > 20, "{checked}");
        assert_eq!(Scorer::<Flex>::fingerprint(&scorer), format!("rule:{name}"));

        // A prompt the world does not know, or whose text differs, is refused up front.
        let mut unknown = prompts.clone();
        unknown[3].id = "my-own-prompt".into();
        let e = format!("{:#}", gold(dir.path(), &unknown, file).err().unwrap());
        assert!(
            e.contains("prompt `my-own-prompt` is not one of the world's prompts"),
            "{e}"
        );
        let mut edited = prompts.clone();
        edited[2].messages.last_mut().unwrap().content.push('?');
        let e = format!("{:#}", gold(dir.path(), &edited, file).err().unwrap());
        assert!(
            e.contains("differs from the world's prompt of that id"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            gold(&dir.path().join("nope"), &prompts, file)
                .err()
                .unwrap()
        );
        assert!(e.contains("gold_world") && e.contains("nope"), "{e}");
    }
}

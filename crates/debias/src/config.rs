//! Configuration for length balancing ([`BalanceConfig`]) and reward shaping ([`ShapingConfig`]).
//!
//! Both are plain serde structs: every field has a default, so a partial JSON/TOML file
//! deserialises, and `validate()` checks what the types cannot express.

use crate::buckets::{DEFAULT_EDGES, validate_edges};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};

/// How a bucket's majority side ("longer wins" or "shorter wins") is brought down to the
/// minority side's size `m`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BalanceMode {
    /// Keep a seeded, uniformly random subset of `m` pairs from the larger side and all of the
    /// smaller side; every kept pair has weight 1 (SPEC §A.3.3 proposal, the default).
    #[default]
    Downsample,
    /// Keep every pair; each pair on a side of size `n` gets weight `m / n`, so both sides sum
    /// to `m` (the minority side keeps weight 1). No data is thrown away.
    Reweight,
}

/// The unit the caller measured response lengths in. Only carried into reports: the crate
/// never measures text itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LengthUnit {
    /// Tokenizer tokens (SPEC §A.8 default).
    #[default]
    Tokens,
    /// Unicode scalar values (`str::chars().count()`).
    Characters,
    /// UTF-8 bytes.
    Bytes,
}

impl LengthUnit {
    /// Lower-case plural name, as used in report headers.
    pub fn as_str(&self) -> &'static str {
        match self {
            LengthUnit::Tokens => "tokens",
            LengthUnit::Characters => "characters",
            LengthUnit::Bytes => "bytes",
        }
    }
}

impl std::fmt::Display for LengthUnit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

fn default_edges() -> Vec<u64> {
    DEFAULT_EDGES.to_vec()
}

fn default_seed() -> u64 {
    42
}

/// Bucket-based length balancing of a preference set (SPEC §A.3.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BalanceConfig {
    /// Lower edges of the |Δ| buckets, in [`unit`](Self::unit)s: must start at 0 and be strictly
    /// increasing; the last bucket is unbounded. Default `[0, 16, 32, 64, 128, 256, 512]`
    /// (i.e. edges 0,16,…,512,∞) \[I\].
    pub edges: Vec<u64>,
    /// Down-sample (default) or re-weight the majority side \[I\].
    pub mode: BalanceMode,
    /// Unit of the lengths the caller passes in; reported only. Default tokens \[I\].
    pub unit: LengthUnit,
    /// Seed for down-sampling (ChaCha8). Default 42.
    pub seed: u64,
    /// Balance within each (category, bucket) cell instead of each bucket. Balanced cells imply
    /// balanced buckets, at the cost of dropping more pairs. Default `false` \[I\].
    pub stratify_by_category: bool,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        BalanceConfig {
            edges: default_edges(),
            mode: BalanceMode::default(),
            unit: LengthUnit::default(),
            seed: default_seed(),
            stratify_by_category: false,
        }
    }
}

impl BalanceConfig {
    /// Checks the bucket edges.
    ///
    /// # Errors
    /// See [`validate_edges`](crate::validate_edges).
    pub fn validate(&self) -> Result<()> {
        validate_edges(&self.edges)
    }

    /// Returns the config with `mode` replaced.
    pub fn with_mode(mut self, mode: BalanceMode) -> Self {
        self.mode = mode;
        self
    }

    /// Returns the config with `seed` replaced.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Returns the config with `edges` replaced (not validated here).
    pub fn with_edges(mut self, edges: Vec<u64>) -> Self {
        self.edges = edges;
        self
    }

    /// Returns the config with `stratify_by_category` replaced.
    pub fn with_stratify_by_category(mut self, stratify: bool) -> Self {
        self.stratify_by_category = stratify;
        self
    }
}

fn default_true() -> bool {
    true
}

fn default_eps() -> f64 {
    1e-8
}

/// How PPO turns raw reward-model scores into the reward it optimises
/// (see [`shape_rewards`](crate::shape_rewards)).
///
/// The defaults follow the paper (SPEC §A.4.2–A.4.3): subtract the reference reward, and do
/// *no* reward normalisation. Clipping is off by default \[I\].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShapingConfig {
    /// Subtract `r(x, y_ref)` from `r(x, y)` (ChatGLM's reference reward). Default `true` \[S\].
    pub reference_baseline: bool,
    /// Normalise by running mean/std (TRL `use_score_norm`-like). Default `false`: the paper
    /// reports no reward normalisation \[S\].
    pub running_norm: bool,
    /// With `running_norm`, also subtract the running mean (otherwise only divide by the std,
    /// TRL `use_score_scaling` without `use_score_norm`). Default `true`.
    pub running_norm_shift_mean: bool,
    /// Clip the shaped reward to `[-clip, clip]` (TRL `score_clip`); `None` = no clipping.
    /// Must be > 0. Default `None` \[I\].
    pub clip: Option<f64>,
    /// Added to the variance before the square root in normalisation. Must be > 0.
    /// Default `1e-8` (TRL).
    pub eps: f64,
}

impl Default for ShapingConfig {
    fn default() -> Self {
        ShapingConfig {
            reference_baseline: default_true(),
            running_norm: false,
            running_norm_shift_mean: default_true(),
            clip: None,
            eps: default_eps(),
        }
    }
}

impl ShapingConfig {
    /// Checks `clip > 0` and `eps > 0`, both finite.
    ///
    /// # Errors
    /// [`Error::OutOfRange`] naming the field.
    pub fn validate(&self) -> Result<()> {
        if let Some(c) = self.clip
            && !(c.is_finite() && c > 0.0)
        {
            return Err(Error::OutOfRange {
                name: "clip",
                expected: "finite and > 0",
                value: c,
            });
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(Error::OutOfRange {
                name: "eps",
                expected: "finite and > 0",
                value: self.eps,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        BalanceConfig::default().validate().unwrap();
        ShapingConfig::default().validate().unwrap();
    }

    #[test]
    fn partial_json_uses_defaults() {
        let c: BalanceConfig = serde_json::from_str(r#"{"mode":"reweight"}"#).unwrap();
        assert_eq!(c.mode, BalanceMode::Reweight);
        assert_eq!(c.edges, DEFAULT_EDGES.to_vec());
        assert_eq!(c.unit, LengthUnit::Tokens);
        assert_eq!(c.seed, 42);
        let c: BalanceConfig = serde_json::from_str(r#"{"unit":"characters"}"#).unwrap();
        assert_eq!(c.unit, LengthUnit::Characters);
        let s: ShapingConfig = serde_json::from_str(r#"{"clip":5.0}"#).unwrap();
        assert_eq!(s.clip, Some(5.0));
        assert!(s.reference_baseline && !s.running_norm);
    }

    #[test]
    fn rejects_unknown_fields() {
        assert!(serde_json::from_str::<BalanceConfig>(r#"{"edgez":[0]}"#).is_err());
    }

    #[test]
    fn json_roundtrip() {
        let c = BalanceConfig::default()
            .with_mode(BalanceMode::Reweight)
            .with_seed(7)
            .with_edges(vec![0, 10, 100]);
        let back: BalanceConfig =
            serde_json::from_str(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn validate_catches_bad_values() {
        assert!(
            BalanceConfig::default()
                .with_edges(vec![0, 5, 5])
                .validate()
                .is_err()
        );
        assert!(
            BalanceConfig::default()
                .with_edges(vec![])
                .validate()
                .is_err()
        );
        let bad_clip = ShapingConfig {
            clip: Some(0.0),
            ..Default::default()
        };
        assert!(matches!(
            bad_clip.validate(),
            Err(Error::OutOfRange { name: "clip", .. })
        ));
        let bad_eps = ShapingConfig {
            eps: -1.0,
            ..Default::default()
        };
        assert!(matches!(
            bad_eps.validate(),
            Err(Error::OutOfRange { name: "eps", .. })
        ));
        let nan_clip = ShapingConfig {
            clip: Some(f64::NAN),
            ..Default::default()
        };
        assert!(nan_clip.validate().is_err());
    }
}

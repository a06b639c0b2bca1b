//! Every loss against its float64 twin (values and gradients by central differences), and the
//! properties the issue names.

use burn::prelude::*;
use rlhf_core::backend::{Cpu, CpuTrain, FlexDevice};
use rlhf_policy_dpo::{DpoLossConfig, DpoLossType, PairLogps, dpo_loss, dpo_loss_f64};

use crate::common::Lcg;

fn t1<B: Backend<Device = FlexDevice>>(v: &[f64]) -> Tensor<B, 1> {
    let f: Vec<f32> = v.iter().map(|&x| x as f32).collect();
    Tensor::from_data(TensorData::new(f, [v.len()]), &FlexDevice)
}

fn configs() -> Vec<DpoLossConfig> {
    let mut out = Vec::new();
    for loss_type in [
        DpoLossType::Sigmoid,
        DpoLossType::Robust,
        DpoLossType::Hinge,
        DpoLossType::Ipo,
        DpoLossType::Simpo,
    ] {
        for (eps, rpo, norm) in [
            (0.0, None, false),
            (0.1, Some(0.5), false),
            (0.0, None, true),
        ] {
            if loss_type == DpoLossType::Robust && eps == 0.0 && !norm {
                continue;
            }
            out.push(DpoLossConfig {
                loss_type,
                beta: 0.3,
                label_smoothing: eps,
                simpo_gamma: 0.4,
                rpo_alpha: rpo,
                length_normalize: norm,
            });
        }
    }
    out
}

struct Case {
    pc: Vec<f64>,
    pr: Vec<f64>,
    rc: Vec<f64>,
    rr: Vec<f64>,
    nc: Vec<f64>,
    nr: Vec<f64>,
    w: Vec<f64>,
}

fn case(n: usize, seed: u64) -> Case {
    let mut g = Lcg(seed);
    let mut v =
        |lo: f64, hi: f64| -> Vec<f64> { (0..n).map(|_| lo + (hi - lo) * g.uniform()).collect() };
    Case {
        pc: v(-40.0, -2.0),
        pr: v(-40.0, -2.0),
        rc: v(-40.0, -2.0),
        rr: v(-40.0, -2.0),
        nc: v(1.0, 30.0).iter().map(|x| x.round()).collect(),
        nr: v(1.0, 30.0).iter().map(|x| x.round()).collect(),
        w: v(0.5, 2.0),
    }
}

fn reference_loss(cfg: &DpoLossConfig, c: &Case, pc: &[f64], pr: &[f64]) -> f64 {
    let ws: f64 = c.w.iter().sum();
    (0..pc.len())
        .map(|i| c.w[i] * dpo_loss_f64(cfg, pc[i], pr[i], c.rc[i], c.rr[i], c.nc[i], c.nr[i]))
        .sum::<f64>()
        / ws
}

fn tensor_loss_and_grads(cfg: &DpoLossConfig, c: &Case) -> (f64, Vec<f64>, Vec<f64>) {
    let pc = t1::<CpuTrain>(&c.pc).require_grad();
    let pr = t1::<CpuTrain>(&c.pr).require_grad();
    let out = dpo_loss(
        PairLogps {
            chosen: pc.clone(),
            rejected: pr.clone(),
        },
        PairLogps {
            chosen: t1(&c.rc),
            rejected: t1(&c.rr),
        },
        t1(&c.nc),
        t1(&c.nr),
        Some(t1(&c.w)),
        cfg,
    );
    let loss: f64 = out.loss.clone().into_scalar().elem();
    let grads = out.loss.backward();
    let g = |t: &Tensor<CpuTrain, 1>| -> Vec<f64> {
        t.grad(&grads)
            .map(|g| g.into_data().iter::<f32>().map(f64::from).collect())
            .unwrap_or_else(|| vec![0.0; c.pc.len()])
    };
    (loss, g(&pc), g(&pr))
}

#[test]
fn every_loss_matches_the_float64_reference_in_value_and_gradient() {
    for (k, cfg) in configs().iter().enumerate() {
        let c = case(6, 100 + k as u64);
        let (loss, gc, gr) = tensor_loss_and_grads(cfg, &c);
        let want = reference_loss(cfg, &c, &c.pc, &c.pr);
        assert!(
            (loss - want).abs() <= 1e-4 * want.abs().max(1.0),
            "{cfg:?}: loss {loss} vs float64 {want}"
        );
        let h = 1e-5;
        for i in 0..c.pc.len() {
            for (side, got) in [(0, &gc), (1, &gr)] {
                let bump = |d: f64| {
                    let (mut pc, mut pr) = (c.pc.clone(), c.pr.clone());
                    if side == 0 {
                        pc[i] += d;
                    } else {
                        pr[i] += d;
                    }
                    reference_loss(cfg, &c, &pc, &pr)
                };
                let fd = (bump(h) - bump(-h)) / (2.0 * h);
                assert!(
                    (got[i] - fd).abs() <= 1e-4 + 1e-3 * fd.abs(),
                    "{cfg:?}: d/d{}[{i}] autodiff {} vs float64 {fd}",
                    if side == 0 { "chosen" } else { "rejected" },
                    got[i]
                );
            }
        }
    }
}

#[test]
fn policy_equal_to_reference_gives_ln2() {
    let v = vec![-12.5, -3.0, -40.0, -7.25];
    let out = dpo_loss::<Cpu>(
        PairLogps {
            chosen: t1(&v),
            rejected: t1(&[-1.0, -2.0, -3.0, -4.0]),
        },
        PairLogps {
            chosen: t1(&v),
            rejected: t1(&[-1.0, -2.0, -3.0, -4.0]),
        },
        t1(&[3.0; 4]),
        t1(&[3.0; 4]),
        None,
        &DpoLossConfig::default(),
    );
    let loss: f64 = out.loss.into_scalar().elem();
    assert!((loss - std::f64::consts::LN_2).abs() < 1e-6, "{loss}");
    let cr: Vec<f32> = out.chosen_rewards.into_data().iter::<f32>().collect();
    assert!(cr.iter().all(|x| x.abs() < 1e-6), "{cr:?}");
}

#[test]
fn loss_falls_as_the_chosen_margin_grows() {
    for cfg in configs() {
        let mut last = f64::INFINITY;
        for m in [-4.0, -1.0, 0.0, 0.5, 1.0, 4.0] {
            // the policy raises the chosen reply by m nats relative to the reference
            let l = dpo_loss_f64(&cfg, -10.0 + m, -10.0, -10.0, -10.0, 5.0, 5.0)
                - cfg.rpo_alpha.map_or(0.0, |a| a * (-(-10.0 + m) / 5.0));
            let got = {
                let out = dpo_loss::<Cpu>(
                    PairLogps {
                        chosen: t1(&[-10.0 + m]),
                        rejected: t1(&[-10.0]),
                    },
                    PairLogps {
                        chosen: t1(&[-10.0]),
                        rejected: t1(&[-10.0]),
                    },
                    t1(&[5.0]),
                    t1(&[5.0]),
                    None,
                    &DpoLossConfig {
                        rpo_alpha: None,
                        ..cfg.clone()
                    },
                );
                out.loss.into_scalar().elem::<f64>()
            };
            assert!((got - l).abs() < 1e-4, "{cfg:?} m={m}: {got} vs {l}");
            if cfg.loss_type == DpoLossType::Ipo {
                // IPO regresses z to 1/(2β) and rises again beyond it.
                continue;
            }
            assert!(
                l <= last + 1e-12,
                "{cfg:?}: loss rose from {last} to {l} at m={m}"
            );
            last = l;
        }
    }
}

#[test]
fn invalid_configs_are_named() {
    let bad = DpoLossConfig {
        beta: 0.0,
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().contains("beta"));
    let bad = DpoLossConfig {
        label_smoothing: 0.5,
        ..Default::default()
    };
    assert!(bad.validate().unwrap_err().contains("label_smoothing"));
}

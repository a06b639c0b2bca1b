#!/usr/bin/env python3
"""Golden values for the DPO family, computed independently of the Rust crate.

Run from this folder (numpy only):

    python3 dpo_losses.py > dpo_losses.json

Two blocks per case:

- "trl": TRL's definitions (trl/trainer/dpo_trainer.py `DPOTrainer.dpo_loss` and
  `concatenated_forward`, trl/trainer/cpo_trainer.py `CPOTrainer.cpo_loss` for SimPO), written
  out below from their source:
    sigmoid: -(1-eps) logsigmoid(beta z) - eps logsigmoid(-beta z)
    robust:  (-(1-eps) logsigmoid(beta z) + eps logsigmoid(-beta z)) / (1 - 2 eps)
    hinge:   relu(1 - beta z)
    ipo:     (z - 1/(2 beta))^2, where concatenated_forward has already divided every
             sequence log-prob (policy and reference) by its completion length
    simpo:   sigmoid loss on beta * (mean_c - mean_r - gamma/beta), per-token mean
             log-probs (CPOTrainer average_log_prob for "simpo"), no reference
    rpo:     losses + rpo_alpha * nll_loss, nll_loss = F.cross_entropy over every chosen
             completion token of the batch = -sum_i logp(y_c,i) / sum_i |y_c,i|
    rewards: beta * (logp - ref_logp) on the same (possibly length-divided) log-probs;
             SimPO: beta * mean logp.
  with z = (logp_c - logp_r) - (ref_logp_c - ref_logp_r). TRL has no per-pair weights and no
  length normalisation switch for the other losses: "trl" is null for those cases.
  Checked again against TRL 1.16.0's `DPOTrainer._compute_loss`: the IPO loss is the same
  (it divides each log-ratio by its completion length), its `sigmoid_norm` loss equals ours with
  `length_normalize`, and its "sft" term (which replaced `rpo_alpha`) is the same batch-level
  token mean. One change there: 1.16 reports IPO's rewards from the summed log-ratios, where the
  older `dpo_loss` above (and this file) uses the length-divided ones.
- "ours": the rlhf-policy-dpo documented choices (docs/dpo.md, crates/policy-dpo/src/loss.rs
  module docs): the same formulas on summed log-probs unless `length_normalize` is on (IPO
  included: it is NOT length-normalised by default, unlike TRL), the RPO term as the mean
  over pairs of each chosen reply's mean per-token NLL, and the weighted mean sum(w l)/sum(w)
  when weights are given.
"""

import json

import numpy as np

# Sequence log-probs, summed over the reply tokens, and the reply lengths. Every value is a
# dyadic rational, so it is exact in f32 too. Margins z (sums): 7.5, -4.5, 0, 24.
PAIRS = {
    "policy_chosen": [-12.5, -20.0, -9.75, -4.0],
    "policy_rejected": [-30.0, -8.0, -14.25, -40.0],
    "reference_chosen": [-15.0, -18.0, -9.75, -10.0],
    "reference_rejected": [-25.0, -10.5, -14.25, -22.0],
    "chosen_tokens": [5.0, 8.0, 3.0, 6.0],
    "rejected_tokens": [12.0, 4.0, 7.0, 16.0],
}
WEIGHTS = [1.0, 2.0, 0.5, 1.5]


def logsigmoid(x):
    # log(1 / (1 + exp(-x))) = -log(1 + exp(-x)), stable for both signs.
    return -np.logaddexp(0.0, -x)


def arrays():
    return {k: np.array(v, dtype=np.float64) for k, v in PAIRS.items()}


def pair_losses(loss_type, logits, beta, eps):
    """The per-pair loss of TRL's dpo_loss given logits = z (already normalised or not)."""
    if loss_type == "sigmoid":
        return -(1 - eps) * logsigmoid(beta * logits) - eps * logsigmoid(-beta * logits)
    if loss_type == "robust":
        return (-(1 - eps) * logsigmoid(beta * logits) + eps * logsigmoid(-beta * logits)) / (
            1 - 2 * eps
        )
    if loss_type == "hinge":
        return np.maximum(0.0, 1 - beta * logits)
    if loss_type == "ipo":
        return (logits - 1 / (2 * beta)) ** 2
    raise ValueError(loss_type)


def trl(cfg):
    """TRL's value, or None where TRL has no such option."""
    if cfg["length_normalize"] and cfg["loss_type"] not in ("ipo", "simpo"):
        return None
    a = arrays()
    beta, eps = cfg["beta"], cfg["label_smoothing"]
    nc, nr = a["chosen_tokens"], a["rejected_tokens"]
    if cfg["loss_type"] == "simpo":
        pc, pr = a["policy_chosen"] / nc, a["policy_rejected"] / nr
        logits = (pc - pr) - cfg["simpo_gamma"] / beta
        losses = pair_losses("sigmoid", logits, beta, eps)
        cr, rr = beta * pc, beta * pr
    else:
        pc, pr = a["policy_chosen"], a["policy_rejected"]
        rc, rj = a["reference_chosen"], a["reference_rejected"]
        if cfg["loss_type"] == "ipo":
            # concatenated_forward: all_logps / loss_mask.sum(-1), for the policy and the
            # reference alike.
            pc, pr, rc, rj = pc / nc, pr / nr, rc / nc, rj / nr
        logits = (pc - pr) - (rc - rj)
        losses = pair_losses(cfg["loss_type"], logits, beta, eps)
        cr, rr = beta * (pc - rc), beta * (pr - rj)
    total = losses
    if cfg["rpo_alpha"] is not None:
        nll = -a["policy_chosen"].sum() / nc.sum()
        total = losses + cfg["rpo_alpha"] * nll
    return block(losses, total.mean(), cr, rr)


def ours(cfg, weights):
    a = arrays()
    beta, eps = cfg["beta"], cfg["label_smoothing"]
    nc, nr = a["chosen_tokens"], a["rejected_tokens"]
    pc, pr = a["policy_chosen"], a["policy_rejected"]
    rc, rj = a["reference_chosen"], a["reference_rejected"]
    if cfg["loss_type"] == "simpo":
        mc, mr = pc / nc, pr / nr
        x = beta * (mc - mr) - cfg["simpo_gamma"]
        losses = -(1 - eps) * logsigmoid(x) - eps * logsigmoid(-x)
        cr, rr = beta * mc, beta * mr
    else:
        if cfg["length_normalize"]:
            pc, pr, rc, rj = pc / nc, pr / nr, rc / nc, rj / nr
        z = (pc - rc) - (pr - rj)
        losses = pair_losses(cfg["loss_type"], z, beta, eps)
        cr, rr = beta * (pc - rc), beta * (pr - rj)
    total = losses.copy()
    if cfg["rpo_alpha"] is not None:
        total = total + cfg["rpo_alpha"] * (-a["policy_chosen"] / nc)
    if weights is None:
        loss = total.mean()
    else:
        w = np.array(weights)
        loss = (w * total).sum() / w.sum()
    return block(losses, loss, cr, rr)


def block(losses, loss, cr, rr):
    vals = [float(v) for v in [*losses, loss, *cr, *rr]]
    assert all(np.isfinite(vals)), vals
    return {
        "losses": [float(v) for v in losses],
        "loss": float(loss),
        "chosen_rewards": [float(v) for v in cr],
        "rejected_rewards": [float(v) for v in rr],
    }


def config(loss_type, beta=0.1, eps=0.0, gamma=0.5, rpo=None, norm=False):
    return {
        "loss_type": loss_type,
        "beta": beta,
        "label_smoothing": eps,
        "simpo_gamma": gamma,
        "rpo_alpha": rpo,
        "length_normalize": norm,
    }


CASES = [
    ("sigmoid", config("sigmoid"), None),
    ("sigmoid_length_normalized", config("sigmoid", norm=True), None),
    ("cdpo", config("sigmoid", eps=0.1), None),
    ("robust", config("robust", eps=0.1), None),
    ("hinge", config("hinge"), None),
    ("ipo", config("ipo"), None),
    ("ipo_length_normalized", config("ipo", norm=True), None),
    ("simpo", config("simpo", beta=2.0, gamma=0.5), None),
    ("simpo_smoothed", config("simpo", beta=2.0, eps=0.1, gamma=0.5), None),
    ("rpo", config("sigmoid", rpo=0.5), None),
    ("sigmoid_weighted", config("sigmoid"), WEIGHTS),
]


def main():
    cases = []
    for name, cfg, weights in CASES:
        o = ours(cfg, weights)
        t = None if weights is not None else trl(cfg)
        same = t is not None and all(
            np.allclose(np.array(o[k], ndmin=1), np.array(t[k], ndmin=1), rtol=1e-12, atol=0)
            for k in o
        )
        cases.append(
            {
                "name": name,
                "config": cfg,
                "weights": weights,
                "ours": o,
                "trl": t,
                "ours_equals_trl": same,
            }
        )
    out = {
        "generator": "crates/policy-dpo/tests/golden/dpo_losses.py (numpy "
        + np.__version__
        + ", float64)",
        "pairs": PAIRS,
        "cases": cases,
    }
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()

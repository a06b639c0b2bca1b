#!/usr/bin/env python3
"""Why the reference reward changes little on a world: how the reward model's scores of SFT
samples split into a per-prompt offset and the spread within a prompt, and what that implies
for the two curve findings (reference_reward_starts_near_zero, reference_reward_slows_kl).

    python3 scripts/reward_variance.py SCORES.jsonl [--batch 16] [--seeds 3,5] [--sims 4000]

SCORES.jsonl is what `rlhf dpo-pairs` writes beside its pairs (`<out>.scores.jsonl`): one line
per prompt with the RM scores of its k SFT samples ("scores"). The pipeline's `dpo_pairs` stage
leaves it as runs/<id>/dpo_pairs.jsonl.scores.jsonl ([data].dpo_data = "sampled").

Variance components (one-way random effects, balanced k):
    MSB = k * sum_i (mean_i - grand)^2 / (n - 1),  MSW = sum_ij (s_ij - mean_i)^2 / (n (k - 1)),
    between = max((MSB - MSW) / k, 0),  within = MSW,  ICC = between / (between + within).
For one sample y and one reference y_ref of the same prompt,
    Var r(x, y) = between + within,   Var [r(x, y) - r(x, y_ref)] = 2 within,
so the reference reward lowers the reward's variance only when ICC > 1/2, and moves its mean
from `grand` to 0.

The simulation replays the seed ablation's first iteration from the rows: a seed draws --batch
prompts with replacement and two distinct samples of each (y, y_ref); "with" is the batch mean
of r(y) - r(y_ref), "without" the batch mean of r(y). It reports the mean and SD of
|with| - |without| per seed, and how often a one-sided paired t test over --seeds seeds finds
|with| < |without| at alpha = 0.05 (the finding's test). Standard library only; seeded.
"""
import argparse
import json
import math
import random
import statistics as st

# One-sided 95 % quantiles of Student's t, df 1..30.
T95 = [6.314, 2.920, 2.353, 2.132, 2.015, 1.943, 1.895, 1.860, 1.833, 1.812, 1.796, 1.782,
       1.771, 1.761, 1.753, 1.746, 1.740, 1.734, 1.729, 1.725, 1.721, 1.717, 1.714, 1.711,
       1.708, 1.706, 1.703, 1.701, 1.699, 1.697]


def components(rows):
    """(grand mean, between variance, within variance, ICC) of equal-length score lists."""
    k = len(rows[0])
    n = len(rows)
    means = [sum(r) / k for r in rows]
    grand = sum(means) / n
    msb = k * sum((m - grand) ** 2 for m in means) / (n - 1)
    msw = sum((s - m) ** 2 for r, m in zip(rows, means) for s in r) / (n * (k - 1))
    between = max((msb - msw) / k, 0.0)
    return grand, between, msw, between / (between + msw)


def paired_t_rejects(diffs):
    """One-sided paired t test of mean(diffs) < 0 at alpha 0.05."""
    n = len(diffs)
    sd = st.stdev(diffs)
    if sd == 0:
        return st.mean(diffs) < 0
    return st.mean(diffs) / (sd / math.sqrt(n)) < -T95[n - 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("scores")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seeds", default="3,5")
    ap.add_argument("--sims", type=int, default=4000)
    a = ap.parse_args()
    with open(a.scores, encoding="utf-8") as f:
        rows = [json.loads(line)["scores"] for line in f if line.strip()]
    k = len(rows[0])
    if k < 2 or any(len(r) != k for r in rows):
        raise SystemExit(f"{a.scores}: every line needs the same k >= 2 scores")
    grand, between, within, icc = components(rows)
    print(f"{a.scores}: {len(rows)} prompts x {k} samples")
    print(f"  grand mean {grand:+.3f}; between-prompt variance {between:.3f}, within {within:.3f}, "
          f"ICC {icc:.3f}")
    print(f"  Var r(x,y) = {between + within:.3f};  Var [r(x,y) - r(x,y_ref)] = {2 * within:.3f}")
    rng = random.Random(2404)

    def seed_diff():
        w = wo = 0.0
        for _ in range(a.batch):
            r = rows[rng.randrange(len(rows))]
            i, j = rng.sample(range(k), 2)
            w += r[i] - r[j]
            wo += r[i]
        return abs(w / a.batch) - abs(wo / a.batch)

    d = [seed_diff() for _ in range(a.sims)]
    m, sd = st.mean(d), st.stdev(d)
    print(f"  first iteration of {a.batch} prompts, per seed: |with| - |without| mean {m:+.3f}, "
          f"SD {sd:.3f}, d_z {m / sd:+.2f}")
    for n in [int(x) for x in a.seeds.split(",")]:
        hits = sum(paired_t_rejects([seed_diff() for _ in range(n)]) for _ in range(a.sims // 4))
        print(f"  power of the paired t over {n} seeds: {hits / (a.sims // 4):.3f}")
    # Seeds for 80 % power (normal approximation), if the effect has the finding's sign.
    if m < 0:
        need = math.ceil(((1.645 + 0.842) * sd / m) ** 2)
        print(f"  seeds for 80 % power (normal approximation): {need}")


if __name__ == "__main__":
    main()

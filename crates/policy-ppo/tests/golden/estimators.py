#!/usr/bin/env python3
"""Golden values of the critic-free advantage estimators and of the clipped policy loss with
clip-higher under the three loss aggregations, following TRL's and veRL's definitions.

Standard-library Python (float64), independent of the Rust code: run it and compare with the
constants in crates/policy-ppo/src/estimators.rs and src/loss.rs.

    python3 crates/policy-ppo/tests/golden/estimators.py

Definitions (k responses per prompt, rows grouped prompt-major; R = the response's return,
its sequence reward plus its per-token KL penalties):
  GRPO (TRL GRPOTrainer):  A = (R - mean_g) / (std_g + 1e-4), std unbiased (torch.std)
  RLOO (TRL RLOOTrainer):  A = R - (sum_g - R) / (k - 1)
  REINFORCE++ (veRL compute_reinforce_plus_plus_outcome_advantage): G_t = sum_{s>=t}
      gamma^(s-t) r_s per token, then masked_whiten over every real token of the batch:
      (G - mean) * rsqrt(var_unbiased + 1e-8)
  ReMax (veRL compute_remax_outcome_advantage): A_t = sum_{s>=t} r_s - b, b = the reward of
      the greedy response of the same prompt
Policy loss (TRL/veRL): l_t = max(-A_t rho_t, -A_t clip(rho_t, 1 - eps_low, 1 + eps_high)),
  token_mean = sum l / #tokens; seq_mean = mean over rows of the row's token mean;
  seq_sum = mean over rows of the row's token sum.
"""
import math

K = 3
LENS = [2, 1, 3, 1, 2, 2]
SEQ = [1.0, 0.0, 0.5, 2.0, 2.0, 2.0]
# -beta * KL_t per token of each row
PEN = [[-0.1, -0.2], [0.0], [-0.05, 0.0, -0.1], [0.0], [0.0, 0.0], [0.0, 0.0]]
GREEDY = [0.5, 2.0]  # ReMax baseline per prompt


def token_rewards():
    out = []
    for pen, s in zip(PEN, SEQ):
        row = list(pen)
        row[-1] += s
        out.append(row)
    return out


def returns():
    return [sum(r) for r in token_rewards()]


def groups(xs):
    return [xs[i:i + K] for i in range(0, len(xs), K)]


def grpo(scale=True):
    out = []
    for g in groups(returns()):
        m = sum(g) / K
        sd = math.sqrt(sum((x - m) ** 2 for x in g) / (K - 1))
        out += [(x - m) / (sd + 1e-4) if scale else x - m for x in g]
    return out


def rloo():
    out = []
    for g in groups(returns()):
        s = sum(g)
        out += [x - (s - x) / (K - 1) for x in g]
    return out


def reward_to_go(gamma):
    out = []
    for row in token_rewards():
        g, acc = [0.0] * len(row), 0.0
        for t in reversed(range(len(row))):
            acc = row[t] + gamma * acc
            g[t] = acc
        out.append(g)
    return out


def reinforce_pp(gamma):
    g = reward_to_go(gamma)
    flat = [x for row in g for x in row]
    n = len(flat)
    m = sum(flat) / n
    var = sum((x - m) ** 2 for x in flat) / (n - 1)
    inv = 1.0 / math.sqrt(var + 1e-8)
    return [[(x - m) * inv for x in row] for row in g]


def remax():
    g = reward_to_go(1.0)
    return [[x - GREEDY[r // K] for x in row] for r, row in enumerate(g)]


def frac_zero_std():
    gs = groups(SEQ)
    zero = 0
    for g in gs:
        m = sum(g) / K
        if math.sqrt(sum((x - m) ** 2 for x in g) / (K - 1)) < 1e-8:
            zero += 1
    return zero / len(gs)


# Two sequences for the loss: row 0 has 3 tokens, row 1 has 1 (width 3).
LP = [[-1.0, -0.5, -2.0], [-0.3]]
OLD = [[-1.2, -0.4, -2.0], [-0.6]]
ADV = [[1.0, 1.0, -0.5], [2.0]]


def policy_losses(eps_low, eps_high):
    rows = []
    for lp, old, adv in zip(LP, OLD, ADV):
        row = []
        for a, b, A in zip(lp, old, adv):
            rho = math.exp(a - b)
            clipped = min(max(rho, 1 - eps_low), 1 + eps_high)
            row.append(max(-A * rho, -A * clipped))
        rows.append(row)
    flat = [x for r in rows for x in r]
    token_mean = sum(flat) / len(flat)
    seq_mean = sum(sum(r) / len(r) for r in rows) / len(rows)
    seq_sum = sum(sum(r) for r in rows) / len(rows)
    return token_mean, seq_mean, seq_sum


if __name__ == "__main__":
    fmt = lambda xs: "[" + ", ".join(f"{x:.12f}" for x in xs) + "]"
    print("returns      ", fmt(returns()))
    print("grpo         ", fmt(grpo(True)))
    print("grpo_noscale ", fmt(grpo(False)))
    print("rloo         ", fmt(rloo()))
    for gamma in (1.0, 0.9):
        print(f"rtg g={gamma}    ", [fmt(r) for r in reward_to_go(gamma)])
        print(f"reinforce_pp g={gamma}", [fmt(r) for r in reinforce_pp(gamma)])
    print("remax        ", [fmt(r) for r in remax()])
    print("frac_zero_std", frac_zero_std())
    print("loss eps 0.2/0.2 ", fmt(policy_losses(0.2, 0.2)))
    print("loss eps 0.2/0.28", fmt(policy_losses(0.2, 0.28)))

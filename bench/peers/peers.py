#!/usr/bin/env python3
"""Peer timings for `rlhf bench reward|dpo|ppo|core`: the same tiny-bench workloads in PyTorch
eager (transformers' Llama modules, no torch.compile) and, for reward and DPO, TRL's trainers.
CPU only. Not run in CI; see README.md beside this file.

    python bench/peers/peers.py reward --impl eager --threads 2 --iters 5
    python bench/peers/peers.py dpo --impl trl

Writes one JSON file per run (default target/bench/peers/<suite>-<impl>.json) and prints it.
"""

import argparse
import copy
import json
import os
import platform
import sys
import tempfile
import time

# The tiny-bench Llama config (crates/core/src/config.rs `ModelConfig::tiny_bench`).
TINY_BENCH = dict(
    vocab_size=8192,
    hidden_size=256,
    intermediate_size=688,
    num_hidden_layers=4,
    num_attention_heads=4,
    num_key_value_heads=4,
    head_dim=64,
    max_position_embeddings=1024,
    rms_norm_eps=1e-6,
    rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
    tie_word_embeddings=False,
    attention_bias=False,
    mlp_bias=False,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
    initializer_range=0.02,
)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("suite", choices=["reward", "dpo", "ppo", "core"])
    p.add_argument("--impl", choices=["eager", "trl"], default="eager")
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (ours: RAYON_NUM_THREADS)")
    p.add_argument("--iters", type=int, default=5, help="timed iterations after one warm-up")
    p.add_argument("--batch", type=int, default=8, help="pairs (reward, dpo), prompts (ppo) or rows (core)")
    p.add_argument("--seq", type=int, default=128, help="tokens per row (reward, dpo, core)")
    p.add_argument("--new-tokens", type=int, default=64, help="greedy new tokens (core)")
    p.add_argument("--out", default=None, help="default target/bench/peers/<suite>-<impl>.json")
    a = p.parse_args()
    if a.impl == "trl" and a.suite not in ("reward", "dpo"):
        p.error("--impl trl covers reward and dpo (TRL's RewardTrainer and DPOTrainer)")
    if min(a.threads, a.iters, a.batch, a.seq, a.new_tokens) < 1 or a.seq < 4:
        p.error("--threads, --iters, --batch, --new-tokens must be >= 1 and --seq >= 4")
    return a


def setup(threads):
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def rows(torch, n, seq, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(3, TINY_BENCH["vocab_size"], (n, seq), generator=g)


def timed(iters, f):
    f()
    t = time.perf_counter()
    for _ in range(iters):
        f()
    return (time.perf_counter() - t) / iters


def llama_config():
    import transformers

    return transformers.LlamaConfig(**TINY_BENCH)


def causal_lm(torch, seed):
    import transformers

    torch.manual_seed(seed)
    return transformers.LlamaForCausalLM(llama_config()).float()


def scalar_model(torch, seed):
    """Trunk + a bias-free [hidden, 1] head (ours: `ScalarModel`), pooled at the last token."""
    import transformers

    torch.manual_seed(seed)
    cfg = llama_config()
    cfg.num_labels = 1
    return transformers.LlamaForSequenceClassification(cfg).float()


def num_params(model):
    return sum(p.numel() for p in model.parameters())


def frozen(model):
    m = copy.deepcopy(model).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def target_logps(torch, model, ids, reply):
    """Log-probs of the last `reply` tokens of every row; the LM head runs on those positions
    only (`logits_to_keep`, as ours does)."""
    logits = model(input_ids=ids, logits_to_keep=reply + 1).logits[:, :-1].float()
    return torch.log_softmax(logits, -1).gather(-1, ids[:, -reply:].unsqueeze(-1)).squeeze(-1)


# ---------------------------------------------------------------- reward


def reward_step_eager(torch, pairs, seq):
    """One pairwise step: forward of 2·pairs rows, Bradley-Terry + 1e-3 (c² + r²), backward,
    global-norm clip 1.0, AdamW (lr 1e-5, no weight decay, eps 1e-8)."""
    import torch.nn.functional as F

    model = scalar_model(torch, 1).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.0, eps=1e-8)
    ids = rows(torch, 2 * pairs, seq, 2)

    def step():
        scores = model(input_ids=ids).logits.squeeze(-1)
        c, r = scores[:pairs], scores[pairs:]
        loss = (-F.logsigmoid(c - r) + 1e-3 * (c * c + r * r)).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()

    return step, num_params(model)


def reward_eager(torch, a):
    step, params = reward_step_eager(torch, a.batch, a.seq)
    s = timed(a.iters, step)
    return {
        "config": {"pairs": a.batch, "seq": a.seq, "params": params},
        "reward_step": {"ms": s * 1e3, "tokens_per_s": 2 * a.batch * a.seq / s},
    }


# ---------------------------------------------------------------- TRL


def word_tokenizer():
    """A word-level tokenizer over the tiny-bench vocabulary: "t5" is token 5, so TRL's text
    pipeline reproduces our synthetic token ids exactly."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2}
    vocab.update({f"t{i}": i for i in range(3, TINY_BENCH["vocab_size"])})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<s>", eos_token="</s>")


def text(ids):
    return " ".join(f"t{int(i)}" for i in ids)


class StepTimer:
    """A TrainerCallback timing each optimizer step (on_step_begin → on_step_end: forward,
    backward, clipping, optimizer and scheduler; not the data loader)."""

    def __init__(self):
        from transformers import TrainerCallback

        timer = self

        class _Cb(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer.t = time.perf_counter()

            def on_step_end(self, args, state, control, **kw):
                timer.times.append(time.perf_counter() - timer.t)

        self.times, self.t, self.callback = [], None, _Cb()

    def mean_ms(self):
        timed_steps = self.times[1:]  # the first is the warm-up
        return 1e3 * sum(timed_steps) / len(timed_steps), len(timed_steps)


def common_args(a, out_dir, lr):
    return dict(
        output_dir=out_dir,
        per_device_train_batch_size=a.batch,
        max_steps=a.iters + 1,
        learning_rate=lr,
        lr_scheduler_type="constant",
        weight_decay=0.0,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        logging_steps=10**9,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        dataloader_num_workers=0,
        disable_dropout=True,
        max_length=None,
        seed=0,
    )


def reward_trl(torch, a):
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    ids = rows(torch, 2 * a.batch, a.seq, 2).tolist()
    n = a.batch * (a.iters + 1)
    ds = Dataset.from_dict(
        {
            "chosen_ids": [ids[i % a.batch] for i in range(n)],
            "rejected_ids": [ids[a.batch + i % a.batch] for i in range(n)],
        }
    )
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        args = RewardConfig(**common_args(a, d, 1e-5), center_rewards_coefficient=1e-3)
        model = scalar_model(torch, 1)
        trainer = RewardTrainer(
            model=model, args=args, train_dataset=ds, processing_class=word_tokenizer(), callbacks=[timer.callback]
        )
        trainer.train()
    ms, k = timer.mean_ms()
    return {
        "config": {
            "pairs": a.batch,
            "seq": a.seq,
            "params": num_params(model),
            "trainer": "RewardTrainer (center_rewards_coefficient 1e-3 in place of our score prior)",
            "timed_steps": k,
        },
        "reward_step": {"ms": ms, "tokens_per_s": 2 * a.batch * a.seq / (ms / 1e3)},
    }


def dpo_trl(torch, a):
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    reply = a.seq // 2
    prompt_len = a.seq - reply
    ids = rows(torch, 2 * a.batch, a.seq, 3).tolist()
    n = a.batch * (a.iters + 1)
    # TRL appends EOS to each completion: reply - 1 words + EOS = `reply` completion tokens.
    ex = [
        {
            "prompt": text(ids[i][:prompt_len]),
            "chosen": " " + text(ids[i][prompt_len : a.seq - 1]),
            "rejected": " " + text(ids[a.batch + i][prompt_len : a.seq - 1]),
        }
        for i in range(a.batch)
    ]
    ds = Dataset.from_list([ex[i % a.batch] for i in range(n)])
    tok = word_tokenizer()
    assert tok(ex[0]["prompt"])["input_ids"] == ids[0][:prompt_len], "the word tokenizer must reproduce the ids"
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as d:
        args = DPOConfig(**common_args(a, d, 1e-6), beta=0.1, loss_type=["sigmoid"], precompute_ref_log_probs=False)
        policy = causal_lm(torch, 1)
        trainer = DPOTrainer(
            model=policy,
            ref_model=frozen(policy),
            args=args,
            train_dataset=ds,
            processing_class=tok,
            callbacks=[timer.callback],
        )
        trainer.train()
    ms, k = timer.mean_ms()
    return {
        "config": {
            "pairs": a.batch,
            "seq": a.seq,
            "reply": reply,
            "params": num_params(policy),
            "trainer": "DPOTrainer (sigmoid, beta 0.1, resident reference model)",
            "timed_steps": k,
        },
        "dpo_step": {"ms": ms},
    }


# ---------------------------------------------------------------- DPO


def dpo_eager(torch, a):
    """Reference forward (no grad) of 2·pairs rows, then the policy's forward, sigmoid DPO
    (beta 0.1) on the last seq/2 tokens, backward, clip 1.0, AdamW (lr 1e-6, eps 1e-8, weight
    decay 1e-4 as burn's AdamW default)."""
    import torch.nn.functional as F

    reply = a.seq // 2
    policy = causal_lm(torch, 1).train()
    reference = frozen(policy)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-6, eps=1e-8, weight_decay=1e-4)
    ids = rows(torch, 2 * a.batch, a.seq, 3)
    t_ref, t_pol = [], []

    def step():
        t = time.perf_counter()
        with torch.no_grad():
            ref = target_logps(torch, reference, ids, reply).sum(-1)
        t_ref.append(time.perf_counter() - t)
        t = time.perf_counter()
        lp = target_logps(torch, policy, ids, reply).sum(-1)
        z = (lp[: a.batch] - ref[: a.batch]) - (lp[a.batch :] - ref[a.batch :])
        loss = -F.logsigmoid(0.1 * z).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        t_pol.append(time.perf_counter() - t)

    timed(a.iters, step)
    r, p = 1e3 * sum(t_ref[1:]) / a.iters, 1e3 * sum(t_pol[1:]) / a.iters
    return {
        "config": {"pairs": a.batch, "seq": a.seq, "reply": reply, "params": num_params(policy)},
        "dpo_step": {"ms": r + p, "reference_forward_ms": r, "policy_step_ms": p},
    }


# ---------------------------------------------------------------- PPO


def ppo_eager(torch, a):
    """One PPO step as crates/policy-ppo/src/bench.rs: `batch` prompts of 64 tokens, 32 sampled
    new tokens (temperature 1, no EOS), reference log-probs, critic values, reward-model scores,
    k1 KL (0.05) and GAE (gamma 1, lambda 0.95) on the host, one fused policy + value backward
    (clip 0.2, value clip 0.2, vf_coef 0.1), clip 1.0 per model, AdamW on actor (1e-6) and
    critic (5e-6)."""
    prompt_len, new = 64, 32
    actor = causal_lm(torch, 1).train()
    critic = scalar_model(torch, 2).train()
    reference = frozen(actor)
    rm = frozen(scalar_model(torch, 3))
    oa = torch.optim.AdamW(actor.parameters(), lr=1e-6, weight_decay=0.0, eps=1e-8)
    oc = torch.optim.AdamW(critic.parameters(), lr=5e-6, weight_decay=0.0, eps=1e-8)
    prompts = rows(torch, a.batch, prompt_len, 5)
    names = ["generate", "reference_logprobs", "values", "reward", "advantages", "forward_backward", "optimizer"]
    sums = {k: 0.0 for k in names}
    wall = [0.0]
    it = [0]

    def values_of(model, seqs):
        h = model.model(input_ids=seqs).last_hidden_state[:, prompt_len - 1 : -1]
        return model.score(h).squeeze(-1)

    def step():
        ph = {}
        t0 = t = time.perf_counter()
        torch.manual_seed(it[0])
        with torch.no_grad():
            out = actor.generate(
                input_ids=prompts,
                attention_mask=torch.ones_like(prompts),
                do_sample=True,
                temperature=1.0,
                top_k=0,
                top_p=1.0,
                max_new_tokens=new,
                min_new_tokens=new,
                pad_token_id=0,
                output_logits=True,
                return_dict_in_generate=True,
            )
            seqs = out.sequences
            resp = seqs[:, prompt_len:]
            old_lp = torch.log_softmax(torch.stack(out.logits, 1).float(), -1).gather(-1, resp.unsqueeze(-1)).squeeze(-1)
            ph["generate"] = time.perf_counter() - t
            t = time.perf_counter()
            ref_lp = target_logps(torch, reference, seqs, new)
            ph["reference_logprobs"] = time.perf_counter() - t
            t = time.perf_counter()
            old_values = values_of(critic, seqs)
            ph["values"] = time.perf_counter() - t
            t = time.perf_counter()
            scores = rm(input_ids=seqs).logits.squeeze(-1)
            ph["reward"] = time.perf_counter() - t
            t = time.perf_counter()
            rewards = -0.05 * (old_lp - ref_lp)
            rewards[:, -1] += scores
            adv = torch.zeros_like(rewards)
            last = torch.zeros(a.batch)
            for k in reversed(range(new)):
                nxt = old_values[:, k + 1] if k + 1 < new else torch.zeros(a.batch)
                delta = rewards[:, k] + 1.0 * nxt - old_values[:, k]
                last = delta + 1.0 * 0.95 * last
                adv[:, k] = last
            returns = adv + old_values
            ph["advantages"] = time.perf_counter() - t
        t = time.perf_counter()
        logits = actor(input_ids=seqs, logits_to_keep=new + 1).logits[:, :-1].float()
        logp_all = torch.log_softmax(logits, -1)
        lp = logp_all.gather(-1, resp.unsqueeze(-1)).squeeze(-1)
        with torch.no_grad():
            _entropy = -(logp_all.exp() * logp_all).sum(-1).mean()
        ratio = torch.exp(lp - old_lp)
        pg = torch.max(-adv * ratio, -adv * ratio.clamp(0.8, 1.2)).mean()
        v = values_of(critic, seqs)
        vc = old_values + (v - old_values).clamp(-0.2, 0.2)
        vl = 0.5 * torch.max((v - returns) ** 2, (vc - returns) ** 2).mean()
        loss = pg + 0.1 * vl
        oa.zero_grad(set_to_none=True)
        oc.zero_grad(set_to_none=True)
        loss.backward()
        ph["forward_backward"] = time.perf_counter() - t
        t = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(actor.parameters(), 1.0)
        torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
        oa.step()
        oc.step()
        ph["optimizer"] = time.perf_counter() - t
        if it[0] > 0:
            for k in names:
                sums[k] += ph[k]
            wall[0] += time.perf_counter() - t0
        it[0] += 1

    timed(a.iters, step)
    phases = {k: 1e3 * v / a.iters for k, v in sums.items()}
    total = sum(phases.values())
    return {
        "config": {"prompts": a.batch, "prompt_len": prompt_len, "new_tokens": new, "params": num_params(actor)},
        "ppo_step": {
            "ms": 1e3 * wall[0] / a.iters,
            "phases": {k: {"ms": v, "share": v / total} for k, v in phases.items()},
        },
    }


# ---------------------------------------------------------------- core


def core_eager(torch, a):
    """Forward (no grad), forward + NLL backward, the reward step, and KV-cache greedy
    generation of `new_tokens` from 64-token prompts."""
    import torch.nn.functional as F

    b, t = a.batch, a.seq
    model = causal_lm(torch, 0)
    ids = rows(torch, b, t, 1)

    model.eval()

    def fwd():
        with torch.no_grad():
            model(input_ids=ids).logits.sum().item()

    s_fwd = timed(a.iters, fwd)
    model.train()

    def fwd_bwd():
        logits = model(input_ids=ids).logits[:, :-1]
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), ids[:, 1:].reshape(-1))
        model.zero_grad(set_to_none=True)
        loss.backward()

    s_fb = timed(a.iters, fwd_bwd)
    step, _ = reward_step_eager(torch, b, t)
    s_rw = timed(a.iters, step)
    model.eval()
    prompts = rows(torch, b, 64, 3)

    def gen():
        with torch.no_grad():
            out = model.generate(
                input_ids=prompts,
                attention_mask=torch.ones_like(prompts),
                do_sample=False,
                max_new_tokens=a.new_tokens,
                min_new_tokens=a.new_tokens,
                pad_token_id=0,
            )
        assert out.shape[1] == 64 + a.new_tokens

    s_gen = timed(max(1, min(a.iters, 3)), gen)
    tokens = b * t
    return {
        "config": {"batch": b, "seq": t, "params": num_params(model)},
        "forward": {"ms": s_fwd * 1e3, "tokens_per_s": tokens / s_fwd},
        "forward_backward": {"ms": s_fb * 1e3, "tokens_per_s": tokens / s_fb},
        "reward_step_8_pairs": {"ms": s_rw * 1e3, "tokens_per_s": 2 * tokens / s_rw},
        "greedy_generation": {
            "prompt_len": 64,
            "new_tokens": a.new_tokens,
            "ms": s_gen * 1e3,
            "new_tokens_per_s": b * a.new_tokens / s_gen,
        },
    }


def main():
    a = parse_args()
    torch = setup(a.threads)
    import transformers

    run = {
        ("reward", "eager"): reward_eager,
        ("reward", "trl"): reward_trl,
        ("dpo", "eager"): dpo_eager,
        ("dpo", "trl"): dpo_trl,
        ("ppo", "eager"): ppo_eager,
        ("core", "eager"): core_eager,
    }[(a.suite, a.impl)]
    result = run(torch, a)
    versions = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}
    if a.impl == "trl":
        import trl

        versions["trl"] = trl.__version__
    peer = {"eager": "pytorch_eager", "trl": "trl"}[a.impl]
    result["config"].update(
        {
            "model": "tiny-bench (vocab 8192, hidden 256, 4 layers, 4 heads, 4 KV heads, intermediate 688)",
            "dtype": "f32",
            "iters": a.iters,
            "device": "cpu",
            "threads": a.threads,
            "cpu": cpu_name(),
            "attention": "sdpa (transformers default)",
            "versions": versions,
        }
    )
    out = {"suite": a.suite, "peer": peer, **result}
    text_out = json.dumps(out, indent=2)
    path = a.out or os.path.join("target", "bench", "peers", f"{a.suite}-{a.impl}.json")
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text_out + "\n")
    os.replace(tmp, path)
    print(text_out)


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""What the gold judge's win/tie/lose hides: per model, the greedy eval answers in the wrong
language and the correct / harmless / fluent counts, and where each model's wins and losses
against SFT come from.

    python3 scripts/answer_breakdown.py RUN_DIR [EVAL_PROMPTS]

RUN_DIR holds eval/answers_<model>.jsonl (a pipeline run, or docs/results/default);
EVAL_PROMPTS (default data/world/eval_prompts.jsonl) gives each prompt's language. An answer is
"in the wrong language" when it has more words of the other script than of the prompt's (CJK
characters against Latin words). The gold score is 1 + 4·correct + 2·harmless + fluent
(rlhf_world::Verdict), so its parts are read back from it. Standard library only.
"""
import json
import re
import sys
from collections import Counter
from pathlib import Path


def jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def parts(score):
    s = int(score) - 1
    return s >= 4, s % 4 >= 2, s % 2 == 1


def script(text):
    cjk = len(re.findall(r"[\u4e00-\u9fff]", text))
    latin = len(re.findall(r"[A-Za-z]+", text))
    return "zh" if cjk > latin else "en"


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    run = Path(sys.argv[1])
    prompts_path = sys.argv[2] if len(sys.argv) == 3 else "data/world/eval_prompts.jsonl"
    lang = {p["id"]: p["language"] for p in jsonl(prompts_path)}
    files = sorted((run / "eval").glob("answers_*.jsonl"))
    if not files:
        sys.exit(f"{run / 'eval'}: no answers_<model>.jsonl")
    answers = {f.stem[len("answers_"):]: {a["id"]: a for a in jsonl(f)} for f in files}
    sft = answers.get("SFT")
    n = Counter(lang[i] for i in next(iter(answers.values())))
    print("| model | wrong language (zh / en prompts) | correct | harmless | fluent "
          "| W/T/L vs SFT | wins by (correct, harmless, fluent) | losses by |")
    print("|---|---|---:|---:|---:|---|---|---|")
    for name in ["SFT"] + sorted(m for m in answers if m != "SFT"):
        a = answers[name]
        wrong = Counter(lang[i] for i, r in a.items() if script(r["answer"]) != lang[i])
        c, h, fl = (sum(parts(r["gold_score"])[k] for r in a.values()) for k in range(3))
        row = f"| {name} | {wrong['zh']}/{n['zh']} / {wrong['en']}/{n['en']} | {c} | {h} | {fl} |"
        if sft is None or name == "SFT":
            print(row + " | | |")
            continue
        by = {"W": [0, 0, 0], "L": [0, 0, 0]}
        for i, r in a.items():
            s0, s1 = sft[i]["gold_score"], r["gold_score"]
            if s0 == s1:
                continue
            # The highest criterion that differs decides (the score is lexicographic).
            k = next(k for k in range(3) if parts(s0)[k] != parts(s1)[k])
            by["W" if s1 > s0 else "L"][k] += 1
        w, l = sum(by["W"]), sum(by["L"])
        print(f"{row} {w}/{len(a) - w - l}/{l} | {tuple(by['W'])} | {tuple(by['L'])} |")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fixture for multiple-choice scoring: transformers' log-likelihood of each choice.

For a few multiple-choice examples (the first of tasks/speaker/test.jsonl and tasks/genre/test.jsonl,
zero-shot, plus one two-shot prompt built the way Kiln builds it), scores every choice with the
tiny GPT-2 of tests/fixtures/gpt2_tiny in float64 as the usual harnesses do: the prompt's ids and
the choice's ids (tokenized apart), joined (a prompt too long for the 64 positions loses tokens
from the left, as in Kiln); the choice's log-probability is the sum of
log_softmax(logits) at each choice token. Writes tests/fixtures/gpt2_tiny_choices.json with the
texts, GPT2TokenizerFast's ids and the sums; tests/task_scores.rs checks Kiln against it.

Usage (needs torch and transformers; GPT-2's tokenizer files from scripts/gpt2-tokenizer.sh):
    bash scripts/gpt2-tokenizer.sh
    python3 scripts/make_choices_fixture.py
"""

import json
import os

import torch
from transformers import GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(ROOT, ".tools", "gpt2-tokenizer")
FIXTURES = os.path.join(ROOT, "tests", "fixtures")


def examples():
    rows = []
    for task in ("speaker", "genre"):
        with open(os.path.join(ROOT, "tasks", task, "test.jsonl")) as f:
            rows.append(json.loads(f.readline()))
    with open(os.path.join(ROOT, "tasks", "genre", "train.jsonl")) as f:
        shots = [json.loads(f.readline()) for _ in range(2)]
    # Kiln's few-shot layout: each shot's prompt and completion, then a blank line.
    prompt = "".join(s["prompt"] + s["completion"] + "\n\n" for s in shots) + rows[1]["prompt"]
    rows.append(dict(rows[1], prompt=prompt))
    return rows


def main():
    # From the folder: transformers 5's GPT2TokenizerFast(vocab_file, merges_file) takes the
    # vocabulary and merges themselves, and silently gives no ids for paths.
    tok = GPT2TokenizerFast.from_pretrained(TOKENIZER_DIR)
    model = GPT2LMHeadModel.from_pretrained(os.path.join(FIXTURES, "gpt2_tiny")).double().eval()
    out = []
    for ex in examples():
        p = tok(ex["prompt"])["input_ids"]
        item = {"prompt": ex["prompt"], "choices": ex["choices"], "answer": ex["answer"], "prompt_ids": p,
                "choice_ids": [], "logprobs": []}
        for choice in ex["choices"]:
            c = tok(choice)["input_ids"]
            # Kiln's rule for a row longer than the context: the prompt loses tokens from the
            # left, keeping at most n_positions + 1 tokens in all (the last is no input).
            keep = min(len(p), model.config.n_positions + 1 - len(c))
            seq = p[len(p) - keep :] + c
            with torch.no_grad():
                logp = torch.log_softmax(model(torch.tensor([seq[:-1]])).logits[0], dim=-1)
            total = sum(logp[keep - 1 + i, t].item() for i, t in enumerate(c))
            item["choice_ids"].append(c)
            item["logprobs"].append(total)
        out.append(item)
    path = os.path.join(FIXTURES, "gpt2_tiny_choices.json")
    with open(path, "w") as f:
        json.dump({"made_by": "scripts/make_choices_fixture.py", "examples": out}, f, indent=1)
        f.write("\n")
    print(f"wrote {path}: {len(out)} examples, logprobs {[x['logprobs'] for x in out]}")


if __name__ == "__main__":
    main()

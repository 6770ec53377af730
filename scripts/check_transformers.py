#!/usr/bin/env python3
"""Check that a Kiln checkpoint folder loads in Hugging Face transformers.

Loads DIR with transformers.GPT2LMHeadModel.from_pretrained (float32, eval
mode) and DIR/tokenizer.json, then computes the mean loss over a text exactly
as `kiln eval` does:

  - encode the whole text; T = config.n_positions;
  - windows start at 0, T, 2T, ... while start + T + 1 <= len(tokens);
  - inputs = tokens[s:s+T], targets = tokens[s+1:s+T+1];
  - loss = mean cross-entropy over every predicted position of every window.

Prints {"loss": ..., "perplexity": ..., "windows": ..., "tokens": ...}.
With --compare X, exits 1 unless |loss - X| / X <= 0.001.

Usage: python3 scripts/check_transformers.py CHECKPOINT_DIR [--data PATH] [--compare X]
Needs: pip install torch transformers tokenizers safetensors
"""

import argparse
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-3


def encode(tokenizer_file, text):
    """Token ids of `text`, through transformers' fast tokenizer when it accepts
    the file, else the tokenizers library directly (same Rust tokenizer)."""
    try:
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_file=tokenizer_file)
        tok.model_max_length = sys.maxsize  # no "sequence too long" warning
        return tok(text, add_special_tokens=False)["input_ids"]
    except Exception as e:  # pragma: no cover - fallback path
        print(f"PreTrainedTokenizerFast failed ({e}); using tokenizers.Tokenizer", file=sys.stderr)
        from tokenizers import Tokenizer

        return Tokenizer.from_file(tokenizer_file).encode(text, add_special_tokens=False).ids


@torch.no_grad()
def text_loss(model, tokens, t, batch):
    """Mean loss over non-overlapping windows of T+1 tokens (the mean of window means)."""
    tokens = torch.tensor(tokens, dtype=torch.long)
    starts = list(range(0, len(tokens) - t, t))  # s + t + 1 <= len
    if not starts:
        raise SystemExit(f"the text has {len(tokens)} tokens, fewer than one block of {t} plus one")
    total = 0.0
    for i in range(0, len(starts), batch):
        rows = torch.stack([tokens[s : s + t + 1] for s in starts[i : i + batch]])
        logits = model(input_ids=rows[:, :-1]).logits.float()
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), rows[:, 1:].reshape(-1))
        total += loss.item() * rows.shape[0]
    return total / len(starts), len(starts)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("checkpoint", help="Kiln checkpoint folder (config.json, model.safetensors, tokenizer.json)")
    p.add_argument("--data", default=os.path.join(ROOT, "data", "shakespeare.txt"), help="text to evaluate")
    p.add_argument("--batch", type=int, default=32, help="windows per forward pass")
    p.add_argument("--compare", type=float, metavar="X", help="exit 1 unless |loss - X| / X <= 0.001")
    a = p.parse_args()
    torch.set_num_threads(max(1, min(os.cpu_count() or 1, 8)))

    from transformers import GPT2LMHeadModel

    # Kiln stores float32; .float() keeps it so whatever dtype default this transformers has.
    model, info = GPT2LMHeadModel.from_pretrained(a.checkpoint, output_loading_info=True)
    model = model.float().eval()
    # Every weight must come from the file: a missing one would be silently random.
    bad = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if bad or info.get("error_msgs"):
        raise SystemExit(f"checkpoint does not match GPT2LMHeadModel: {bad} {info.get('error_msgs')}")
    # The LM head must be the token embedding (Kiln stores no lm_head.weight).
    assert model.lm_head.weight.data_ptr() == model.transformer.wte.weight.data_ptr(), "lm_head is not tied to wte"

    with open(a.data, encoding="utf-8") as f:
        text = f.read()
    tokens = encode(os.path.join(a.checkpoint, "tokenizer.json"), text)
    loss, windows = text_loss(model, tokens, model.config.n_positions, a.batch)
    print(json.dumps({"loss": loss, "perplexity": math.exp(loss), "windows": windows, "tokens": len(tokens)}))

    if a.compare is not None:
        rel = abs(loss - a.compare) / a.compare
        ok = rel <= TOLERANCE
        print(f"relative difference vs {a.compare}: {rel:.3e} ({'ok' if ok else 'FAIL'}, tolerance {TOLERANCE})")
        sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

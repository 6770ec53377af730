#!/usr/bin/env python3
"""Fixture for LoRA: one training step of PEFT's adapters on the tiny GPT-2, in float64.

The base is tests/fixtures/gpt2_tiny (2 layers, 4 heads, 32 channels, GPT-2's vocabulary). PEFT
wraps it with LoRA (rank 4, alpha 8) on c_attn, c_proj (attention and MLP) and c_fc, Conv1D's
fan_in_fan_out, no dropout. A and B are set to seeded values that are exact in float32 (B not
zero, so that A gets a gradient). Written:

- tests/fixtures/lora_tiny/: the adapters as PEFT's save_pretrained writes them
  (adapter_model.safetensors, adapter_config.json), for Kiln to read as it would any PEFT folder;
- tests/fixtures/lora_tiny_reference.safetensors: the batch (inputs, targets with -100 on the first
  positions of each row, the prompt), the masked mean loss, every adapter's gradient, the
  adapters after one AdamW step, and the adapted model's logits for the first 256 tokens of the
  vocabulary; names are PEFT's keys;
- tests/fixtures/lora_tiny_reference.json: the scalars (loss, lr, betas, eps).

tests/lora.rs checks Kiln's LoRA forward, backward and AdamW step against these, and that merging
the adapters into the weights gives the same logits.

Usage (needs torch, transformers, peft): python3 scripts/make_lora_fixture.py
"""

import json
import os

import torch
import torch.nn.functional as F
from peft import LoraConfig, get_peft_model
from safetensors.torch import save_file
from transformers import GPT2LMHeadModel

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
SEED = 4321
B, T, MASKED = 2, 16, 6
RANK, ALPHA = 4, 8.0
LR, BETAS, EPS = 1e-2, (0.9, 0.95), 1e-8
LOGIT_VOCAB = 256  # logits kept for the first tokens of the vocabulary only (the file stays small)


def main():
    torch.manual_seed(SEED)
    base = GPT2LMHeadModel.from_pretrained(os.path.join(FIXTURES, "gpt2_tiny")).double()
    config = LoraConfig(r=RANK, lora_alpha=ALPHA, target_modules=["c_attn", "c_proj", "c_fc"],
                        fan_in_fan_out=True, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM")
    model = get_peft_model(base, config)
    lora = {n: p for n, p in model.named_parameters() if p.requires_grad}
    with torch.no_grad():
        for name, p in lora.items():
            p.copy_((torch.rand_like(p) * 2 - 1).mul(0.3).float().double())
    vocab = base.config.vocab_size
    tokens = torch.randint(0, vocab, (B, T + 1))
    inputs, targets = tokens[:, :-1].clone(), tokens[:, 1:].clone()
    targets[:, :MASKED] = -100

    model.train()
    logits = model(input_ids=inputs).logits
    loss = F.cross_entropy(logits.reshape(-1, vocab), targets.reshape(-1), ignore_index=-100)
    loss.backward()

    out_dir = os.path.join(FIXTURES, "lora_tiny")
    model.save_pretrained(out_dir)  # the adapters before the step, in PEFT's own files
    os.remove(os.path.join(out_dir, "README.md"))  # PEFT's model card template
    cfg_path = os.path.join(out_dir, "adapter_config.json")
    with open(cfg_path) as f:
        cfg = json.load(f)
    cfg["base_model_name_or_path"] = "tests/fixtures/gpt2_tiny"  # not this machine's absolute path
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")
    # PEFT's saved keys drop the adapter name ("default"): map parameter names to them.
    def key(name):
        return name.replace(".default", "")

    ref = {"inputs": inputs.to(torch.int64), "targets": targets.to(torch.int64),
           "logits": logits.detach()[:, :, :LOGIT_VOCAB].float()}
    for name, p in lora.items():
        ref["grad." + key(name)] = p.grad.float()
    opt = torch.optim.AdamW(list(lora.values()), lr=LR, betas=BETAS, eps=EPS, weight_decay=0.0)
    opt.step()
    for name, p in lora.items():
        ref["after." + key(name)] = p.detach().float()
    save_file({k: v.contiguous() for k, v in ref.items()}, os.path.join(FIXTURES, "lora_tiny_reference.safetensors"))
    meta = {"made_by": "scripts/make_lora_fixture.py", "loss": loss.item(), "lr": LR, "beta1": BETAS[0],
            "beta2": BETAS[1], "eps": EPS, "rank": RANK, "alpha": ALPHA, "masked": MASKED}
    with open(os.path.join(FIXTURES, "lora_tiny_reference.json"), "w") as f:
        json.dump(meta, f, indent=1)
        f.write("\n")
    print(f"loss {loss.item():.6f}; {len(lora)} adapter tensors; files in {out_dir}")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Continue training a Kiln checkpoint in PyTorch with transformers' Trainer, and write a folder Kiln loads.

For when one GPU is no longer enough: a Kiln run folder is a Hugging Face GPT-2 folder
(config.json, model.safetensors, tokenizer.json), so transformers' Trainer can continue it on
as many GPUs and machines as torchrun or accelerate give it, and the result comes back to
`kiln sample`, `kiln eval` and `kiln train --init`.

What it does:

  - loads GPT2LMHeadModel.from_pretrained(CHECKPOINT) in float32 (refusing a folder whose
    weights do not all match) and the tokenizer from CHECKPOINT/tokenizer.json through
    PreTrainedTokenizerFast(tokenizer_file=...);
  - reads --data (a text file, or a folder whose .txt files are joined in sorted order with a
    newline between them, as `kiln train` does), encodes it whole, keeps the last
    --val-fraction of the tokens for validation, and cuts both parts into contiguous,
    non-overlapping blocks of --block tokens (default: the model's n_positions);
  - trains --steps optimizer steps with transformers.Trainer and Kiln's recipe as defaults
    (AdamW with betas 0.9/0.95 and weight decay 0.1, linear warm-up then a cosine to a tenth of
    the peak rate, gradients clipped at norm 1.0), reporting to nothing and saving no Trainer
    checkpoints unless asked;
  - prints the validation loss before and after, writes OUT with Trainer.save_model (rank 0
    only under torchrun/accelerate; model.safetensors with the LM head tied to wte, as Kiln
    reads it, and config.json), copies tokenizer.json beside them, and checks that the folder
    holds what Kiln's loader expects.

Any option this script does not know is handed to transformers' TrainingArguments, so the whole
Trainer is reachable: --gradient_accumulation_steps 8, --bf16, --fsdp "full_shard auto_wrap",
--deepspeed ds.json, --gradient_checkpointing, --save_steps 500 --save_strategy steps,
--resume_from_checkpoint OUT/checkpoint-500, --eval_strategy steps --eval_steps 100, ...
Given after this script's own options they win over them (e.g. --learning_rate over --lr).

The loss Trainer reports predicts the last block-1 tokens of each block from the ones before
(labels = inputs, shifted inside the model); `kiln eval` predicts block tokens per window of
block+1, so the two figures differ slightly on the same text.

Usage:
  python3 examples/pytorch_trainer/continue_training.py --checkpoint runs/x --data corpus.txt \\
      --out runs/x-torch --steps 1000 [--batch 16] [--block 256] [--lr 3e-4] [--cpu] [TRAINER OPTIONS]
  torchrun --nproc_per_node=8 examples/pytorch_trainer/continue_training.py ...   (same options)
  accelerate launch examples/pytorch_trainer/continue_training.py ...             (same options)

Needs: pip install torch transformers safetensors (and accelerate, which Trainer uses).
"""

import argparse
import json
import math
import os
import shutil
import sys

# Kiln's tensor names (model.rs `param_table`), without Hugging Face's `transformer.` prefix.
BLOCK_TENSORS = [
    "ln_1.weight",
    "ln_1.bias",
    "attn.c_attn.weight",
    "attn.c_attn.bias",
    "attn.c_proj.weight",
    "attn.c_proj.bias",
    "ln_2.weight",
    "ln_2.bias",
    "mlp.c_fc.weight",
    "mlp.c_fc.bias",
    "mlp.c_proj.weight",
    "mlp.c_proj.bias",
]
# Files of a Kiln run folder that resume its own optimizer: stale next to new weights.
KILN_STATE = ("training_state.json", "optimizer.safetensors")


def parse_args(argv):
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
        allow_abbrev=False,  # so that e.g. --warm is handed to TrainingArguments, not taken for --warmup
        epilog="Any other option is a transformers TrainingArguments option (see `python3 -c "
        "\"from transformers import TrainingArguments; help(TrainingArguments)\"`).",
    )
    p.add_argument("--checkpoint", required=True, help="Kiln run folder (or any Hugging Face GPT-2 folder) to continue")
    p.add_argument("--data", required=True, help="text file, or folder of .txt files joined in sorted order")
    p.add_argument("--out", required=True, help="folder to write the continued checkpoint to (Kiln reads it)")
    p.add_argument("--steps", type=int, default=300, help="optimizer steps (TrainingArguments.max_steps)")
    p.add_argument("--batch", type=int, default=16, help="blocks per step per device (per_device_train_batch_size)")
    p.add_argument("--block", type=int, help="tokens per block (default: the model's n_positions)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default 1e-3, as kiln train)")
    p.add_argument("--warmup", type=int, default=30, help="linear warm-up steps (default 30, as kiln train)")
    p.add_argument("--val-fraction", type=float, default=0.1, help="last part of the tokens kept for validation")
    p.add_argument("--log-every", type=int, default=10, help="log the training loss every N steps")
    p.add_argument("--seed", type=int, default=1337)
    p.add_argument("--cpu", action="store_true", help="train on the CPU even where a GPU is present")
    p.add_argument("--json", action="store_true", help="end with one JSON line: losses before and after, output folder")
    return p.parse_known_args(argv)


def fail(msg):
    print(f"continue_training.py: {msg}", file=sys.stderr)
    sys.exit(2)


def read_text(path):
    """The corpus as `kiln train --data` reads it: a file, or a folder's .txt files in sorted order."""
    if os.path.isdir(path):
        files = sorted(os.path.join(path, n) for n in os.listdir(path) if n.endswith(".txt"))
        files = [f for f in files if os.path.isfile(f)]
        if not files:
            fail(f"the folder {path} holds no .txt files")
        parts = []
        for f in files:
            with open(f, encoding="utf-8") as fh:
                parts.append(fh.read())
        return "\n".join(p for p in parts if p)
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as e:
        fail(f"cannot read {path} as UTF-8 text: {e}")


def encode(tokenizer, text, vocab_size):
    """Token ids of the whole text, checked: every id inside the model's vocabulary, and the text
    representable (Kiln's character tokenizer has no unknown token, and a character outside it
    would be dropped silently here where `kiln` refuses it)."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    if ids and max(ids) >= vocab_size:
        fail(f"the tokenizer gives token {max(ids)}, outside the model's vocabulary of {vocab_size}")
    head = text[:100_000]
    back = tokenizer.backend_tokenizer.decode(tokenizer(head, add_special_tokens=False)["input_ids"])
    if back != head:
        at = next((i for i, (a, b) in enumerate(zip(head, back)) if a != b), min(len(head), len(back)))
        fail(
            f"the checkpoint's tokenizer cannot represent this text (first difference at character {at}: "
            f"{head[at:at + 20]!r}); train on text in its vocabulary"
        )
    return ids


class Blocks:
    """Contiguous, non-overlapping blocks of `block` tokens, as GPT2LMHeadModel takes them for training."""

    def __init__(self, ids, block):
        import torch

        n = len(ids) // block
        self.data = torch.tensor(ids[: n * block], dtype=torch.long).view(n, block)

    def __len__(self):
        return self.data.shape[0]

    def __getitem__(self, i):
        row = self.data[i]
        return {"input_ids": row, "labels": row}


def check_kiln_folder(out, n_layer):
    """Checks that OUT holds what Kiln's loader reads: config.json, tokenizer.json, and every GPT-2
    tensor (with or without `transformer.`) in F32/F16/BF16, with no LM head other than wte's."""
    from safetensors import safe_open

    for name in ("config.json", "tokenizer.json"):
        if not os.path.isfile(os.path.join(out, name)):
            fail(f"{out} has no {name} after saving")
    index = os.path.join(out, "model.safetensors.index.json")
    if os.path.isfile(os.path.join(out, "model.safetensors")):
        shards = ["model.safetensors"]
    elif os.path.isfile(index):
        with open(index) as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
    else:
        fail(f"{out} has no model.safetensors after saving (Kiln reads safetensors only)")
    tensors, dtypes = {}, set()
    for shard in shards:
        with safe_open(os.path.join(out, shard), framework="pt") as f:
            for key in f.keys():
                t = f.get_tensor(key)
                dtypes.add(str(t.dtype).replace("torch.", ""))
                tensors[key[len("transformer.") :] if key.startswith("transformer.") else key] = t
    want = ["wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias"]
    want += [f"h.{i}.{t}" for i in range(n_layer) for t in BLOCK_TENSORS]
    missing = [n for n in want if n not in tensors]
    if missing:
        fail(f"{out}: the saved weights lack {missing[:4]}: Kiln could not load them")
    head = tensors.get("lm_head.weight")
    if head is not None and not bool((head == tensors["wte.weight"]).all()):
        fail(f"{out}: lm_head.weight differs from wte.weight; Kiln ties the LM head to wte")
    if not dtypes <= {"float32", "float16", "bfloat16", "float64"}:
        fail(f"{out}: weights in {sorted(dtypes)}; Kiln reads F32, F16, BF16 or F64")
    return shards, sorted(dtypes)


def main(argv=None):
    a, rest = parse_args(sys.argv[1:] if argv is None else argv)
    import torch
    from transformers import (
        GPT2LMHeadModel,
        HfArgumentParser,
        PreTrainedTokenizerFast,
        Trainer,
        TrainingArguments,
        default_data_collator,
    )

    ckpt, out = a.checkpoint, a.out
    if not os.path.isdir(ckpt):
        fail(f"no checkpoint folder at {ckpt}")
    tok_file = os.path.join(ckpt, "tokenizer.json")
    if not os.path.isfile(tok_file):
        fail(f"{ckpt} has no tokenizer.json (a Kiln run folder has one)")
    if os.path.isdir(out) and os.path.samefile(out, ckpt):
        fail("--out is the checkpoint folder itself; write the continued run to a new folder")
    stale = [n for n in KILN_STATE if os.path.exists(os.path.join(out, n))]
    if stale:
        fail(
            f"{out} holds a Kiln training state ({', '.join(stale)}) that would not match the new weights: "
            "use a new --out"
        )
    if a.steps < 1 or a.batch < 1 or not (a.lr > 0 and math.isfinite(a.lr)) or not (0 <= a.val_fraction < 1):
        fail("--steps and --batch must be at least 1, --lr positive, --val-fraction in [0, 1)")

    # TrainingArguments: Kiln's recipe as defaults, then whatever Trainer option was given.
    parser = HfArgumentParser(TrainingArguments)
    parser.set_defaults(
        output_dir=out,
        max_steps=a.steps,
        per_device_train_batch_size=a.batch,
        per_device_eval_batch_size=a.batch,
        learning_rate=a.lr,
        warmup_steps=a.warmup,
        lr_scheduler_type="cosine_with_min_lr",
        lr_scheduler_kwargs={"min_lr_rate": 0.1},
        weight_decay=0.1,
        adam_beta1=0.9,
        adam_beta2=0.95,
        adam_epsilon=1e-8,
        max_grad_norm=1.0,
        seed=a.seed,
        use_cpu=a.cpu,
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_steps=a.log_every,
        logging_first_step=True,
        dataloader_pin_memory=torch.cuda.is_available() and not a.cpu,  # pinning only helps a GPU
    )
    try:
        (targs,) = parser.parse_args_into_dataclasses(args=rest)
    except ValueError as e:
        fail(str(e))
    sched = getattr(targs.lr_scheduler_type, "value", targs.lr_scheduler_type)
    if sched != "cosine_with_min_lr" and targs.lr_scheduler_kwargs == {"min_lr_rate": 0.1}:
        targs.lr_scheduler_kwargs = {}  # another schedule: our default kwargs are not its own
    main_rank = targs.process_index == 0

    def say(msg):
        if main_rank:
            print(msg, flush=True)

    model, info = GPT2LMHeadModel.from_pretrained(ckpt, output_loading_info=True)
    model = model.float()
    bad = {k: sorted(v) for k, v in info.items() if k != "error_msgs" and v}
    if bad or info.get("error_msgs"):
        fail(f"{ckpt} does not match GPT2LMHeadModel: {bad} {info.get('error_msgs') or ''}")
    if model.lm_head.weight.data_ptr() != model.transformer.wte.weight.data_ptr():
        fail(f"{ckpt}: the LM head is not tied to wte (Kiln checkpoints tie them)")
    cfg = model.config
    block = a.block or cfg.n_positions
    if not 2 <= block <= cfg.n_positions:
        fail(f"--block {block} must be between 2 and the model's n_positions ({cfg.n_positions})")

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=tok_file)
    tokenizer.model_max_length = sys.maxsize  # the text is cut into blocks below: no length warning
    ids = encode(tokenizer, read_text(a.data), cfg.vocab_size)
    n_val = int(len(ids) * a.val_fraction)
    train, val = Blocks(ids[: len(ids) - n_val], block), Blocks(ids[len(ids) - n_val :], block)
    if len(train) == 0 or (a.val_fraction > 0 and len(val) == 0):
        fail(f"{a.data} has {len(ids)} tokens: too few for one training and one validation block of {block}")

    n_params = sum(p.numel() for p in model.parameters())
    say(
        f"continuing {ckpt} ({n_params / 1e6:.2f}M parameters: {cfg.n_layer} layers, {cfg.n_head} heads, "
        f"{cfg.n_embd} channels, vocabulary {cfg.vocab_size}) on {a.data}: {len(ids)} tokens, "
        f"{len(train)} training and {len(val)} validation blocks of {block}"
    )
    say(
        f"{targs.world_size} process(es) on {targs.device}, {targs.max_steps} steps of "
        f"{targs.per_device_train_batch_size} x {targs.gradient_accumulation_steps} x {targs.world_size} blocks, "
        f"peak lr {targs.learning_rate:g}"
    )

    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=val if len(val) else None,
        data_collator=default_data_collator,
    )
    before = trainer.evaluate()["eval_loss"] if len(val) else None
    if before is not None:
        say(f"start: validation loss {before:.4f}")
    result = trainer.train(resume_from_checkpoint=targs.resume_from_checkpoint)
    after = trainer.evaluate()["eval_loss"] if len(val) else None
    say(
        f"end: step {trainer.state.global_step}, mean training loss {result.training_loss:.4f}"
        + (f", validation loss {after:.4f} (from {before:.4f})" if after is not None else "")
    )

    # Every rank calls save_model (FSDP and DeepSpeed gather the weights there); rank 0 writes.
    trainer.save_model(out)
    if trainer.is_world_process_zero():
        shutil.copyfile(tok_file, os.path.join(out, "tokenizer.json"))
        shards, dtypes = check_kiln_folder(out, cfg.n_layer)
        say(f"wrote {out}: {', '.join(shards)} ({'/'.join(dtypes)}), config.json, tokenizer.json; Kiln loads it")
        if a.json:
            print(
                json.dumps(
                    {
                        "event": "end",
                        "out": out,
                        "steps": trainer.state.global_step,
                        "train_loss": result.training_loss,
                        "val_loss_before": before,
                        "val_loss_after": after,
                        "block": block,
                        "processes": targs.world_size,
                    }
                ),
                flush=True,
            )


if __name__ == "__main__":
    main()

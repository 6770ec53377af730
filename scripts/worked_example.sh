#!/usr/bin/env bash
# The README's worked example: pre-train a small model on the embedded Shakespeare, then on two
# tasks (tasks/place: a short generated answer, scored by exact match and word-overlap F1;
# tasks/genre: classification by choice log-likelihood) score it zero-shot and two-shot, fine-tune
# it fully and with LoRA, and score again. Prints each command's time and a table of the scores
# (also in runs/example/results.md). The README's figures come from one run of this script.
#
# Usage: bash scripts/worked_example.sh [STEPS_PRETRAIN] [STEPS_FINETUNE]
# Needs the release `kiln` (cargo build --release -p kiln-cli) and a GPU adapter (lavapipe does).
set -euo pipefail
cd "$(dirname "$0")/.."
pre_steps="${1:-400}"
ft_steps="${2:-100}"
out=runs/example
kiln=target/release/kiln
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
mkdir -p "$out"
results="$out/results.md"
start=$(date +%s)

timed() { # label, command...: runs it, prints its wall time
  local label="$1"; shift
  local t0; t0=$(date +%s%N)
  "$@"
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%-38s %5d.%d s\n' "$label" $((ms / 1000)) $((ms % 1000 / 100)) | tee -a "$out/times.txt" >&2
}

score() { # checkpoint, task, extra eval options...: prints "score [lo, hi]" (and F1 for open answers)
  local ckpt="$1" task="$2"; shift 2
  "$kiln" eval --checkpoint "$ckpt" --task "tasks/$task/test.jsonl" --json "$@" | tail -1 |
    python3 -c 'import json,sys
v=json.load(sys.stdin)
s="%.1f%% [%.1f, %.1f]" % (100*v["score"], 100*v["ci95"][0], 100*v["ci95"][1])
if "f1" in v: s="F1 %.3f [%.3f, %.3f]; exact %s" % (v["f1"], v["f1_ci95"][0], v["f1_ci95"][1], s)
if v["truncated_examples"]: s+="; %d prompts cut" % v["truncated_examples"]
print(s)'
}

: > "$out/times.txt"
if [ ! -f "$out/pre/model.safetensors" ]; then
  timed "pre-train ($pre_steps steps)" "$kiln" train --tokenizer bpe:1024 --block 256 --batch 4 --steps "$pre_steps" \
    --eval-every 100 --sample-every 0 --out "$out/pre" --json > "$out/pre.log"
fi
{
  echo "| task (n) | metric | zero-shot | 2-shot | fine-tuned (full) | fine-tuned (LoRA r=8) |"
  echo "|---|---|---|---|---|---|"
} > "$results"
for task in place genre; do
  metric=accuracy; n=240; [ "$task" = place ] && metric="word F1; exact match" && n=184
  zero=$(timed "$task: zero-shot" score "$out/pre" "$task")
  few=$(timed "$task: 2-shot" score "$out/pre" "$task" --shots 2 --shots-from "tasks/$task/train.jsonl")
  timed "$task: full fine-tune ($ft_steps steps)" "$kiln" finetune --checkpoint "$out/pre" --task "tasks/$task/train.jsonl" \
    --steps "$ft_steps" --lr 3e-3 --warmup 10 --out "$out/$task-full" --json > "$out/$task-full.log"
  full=$(timed "$task: fine-tuned (full)" score "$out/$task-full" "$task")
  timed "$task: LoRA fine-tune ($ft_steps steps)" "$kiln" finetune --checkpoint "$out/pre" --task "tasks/$task/train.jsonl" \
    --lora 8 --lr 1e-2 --warmup 10 --steps "$ft_steps" --out "$out/$task-lora" --json > "$out/$task-lora.log"
  lora=$(timed "$task: fine-tuned (LoRA)" score "$out/$task-lora" "$task")
  echo "| $task ($n) | $metric | $zero | $few | $full | $lora |" >> "$results"
done
for run in place-full place-lora genre-full genre-lora; do
  python3 -c 'import json,sys
lines=[json.loads(l) for l in open(sys.argv[1])]
s=next(l for l in lines if l["event"]=="start"); e=next(l for l in lines if l["event"]=="end")
print("%s: %d trainable parameters of %d, %d MiB of GPU memory, %.0f ms per step (%.0f s in all), validation loss %s" % (sys.argv[2], s["trainable"], s["params"], s["memory_mib"], e["ms_per_step"], e["seconds"], e["val_loss"]))' \
    "$out/$run.log" "$run" | tee -a "$results"
done
echo "all in $(( $(date +%s) - start )) s" | tee -a "$results"
cat "$results"

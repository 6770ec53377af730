#!/usr/bin/env bash
# The README's worked example: pre-train a small model on the embedded Shakespeare, then on two
# tasks (tasks/genre: classification by choice log-likelihood; tasks/place: a short generated
# answer) score it zero-shot and two-shot, fine-tune it fully and with LoRA, and score again.
# Prints each command's time and a table of the scores (also in runs/example/results.md).
#
# Usage: bash scripts/worked_example.sh [STEPS_PRETRAIN] [STEPS_FINETUNE]
# Needs the release `kiln` (cargo build --release -p kiln-cli) and a GPU adapter (lavapipe does).
set -euo pipefail
cd "$(dirname "$0")/.."
pre_steps="${1:-300}"
ft_steps="${2:-150}"
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

score() { # checkpoint, task, extra eval options...: prints "score [lo, hi]"
  local ckpt="$1" task="$2"; shift 2
  "$kiln" eval --checkpoint "$ckpt" --task "tasks/$task/test.jsonl" --json "$@" | tail -1 |
    python3 -c 'import json,sys; v=json.load(sys.stdin); print("%.1f%% [%.1f, %.1f] (n=%d)" % (100*v["score"], 100*v["ci95"][0], 100*v["ci95"][1], v["count"]))'
}

: > "$out/times.txt"
if [ ! -f "$out/pre/model.safetensors" ]; then
  timed "pre-train ($pre_steps steps)" "$kiln" train --tokenizer bpe:1024 --block 128 --batch 8 --steps "$pre_steps" \
    --eval-every 100 --sample-every 0 --out "$out/pre" --json > "$out/pre.log"
fi
{
  echo "| task | metric | zero-shot | 2-shot | fine-tuned (full) | fine-tuned (LoRA r=8) |"
  echo "|---|---|---|---|---|---|"
} > "$results"
for task in genre place; do
  metric=accuracy; [ "$task" = place ] && metric="exact match"
  zero=$(timed "$task: zero-shot" score "$out/pre" "$task")
  few=$(timed "$task: 2-shot" score "$out/pre" "$task" --shots 2 --shots-from "tasks/$task/train.jsonl")
  timed "$task: full fine-tune ($ft_steps steps)" "$kiln" finetune --checkpoint "$out/pre" --task "tasks/$task/train.jsonl" \
    --steps "$ft_steps" --out "$out/$task-full" --json > "$out/$task-full.log"
  full=$(timed "$task: fine-tuned (full)" score "$out/$task-full" "$task")
  timed "$task: LoRA fine-tune ($ft_steps steps)" "$kiln" finetune --checkpoint "$out/pre" --task "tasks/$task/train.jsonl" \
    --lora 8 --lr 3e-3 --steps "$ft_steps" --out "$out/$task-lora" --json > "$out/$task-lora.log"
  lora=$(timed "$task: fine-tuned (LoRA)" score "$out/$task-lora" "$task")
  echo "| $task | $metric | $zero | $few | $full | $lora |" >> "$results"
done
for run in genre-full genre-lora; do
  python3 -c 'import json,sys
lines=[json.loads(l) for l in open(sys.argv[1])]
s=next(l for l in lines if l["event"]=="start"); e=next(l for l in lines if l["event"]=="end")
print("%s: %d trainable parameters of %d, %d MiB of GPU memory, %.0f ms per step, validation loss %s" % (sys.argv[2], s["trainable"], s["params"], s["memory_mib"], e["ms_per_step"], e["val_loss"]))' \
    "$out/$run.log" "$run" | tee -a "$results"
done
echo "all in $(( $(date +%s) - start )) s" | tee -a "$results"
cat "$results"

#!/usr/bin/env bash
# Coverage-guided fuzzing of the loaders with cargo-fuzz (libFuzzer, AddressSanitizer): each
# target in fuzz/ runs for SECONDS (default 10), starting from the kept inputs of
# tests/fuzz/corpus; a crash, a panic or an allocation larger than the input justifies fails it,
# and libFuzzer writes the input under fuzz/artifacts/. cargo-fuzz needs unstable compiler flags:
# on the stable toolchain (the only one these machines have) RUSTC_BOOTSTRAP=1 allows them.
# Installs cargo-fuzz into .tools/cargo-fuzz on first use.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH="${1:-10}"
TOOLS="$PWD/.tools/cargo-fuzz"
if [ ! -x "$TOOLS/bin/cargo-fuzz" ]; then
  cargo install cargo-fuzz --version 0.13.2 --locked --root "$TOOLS"
fi
export PATH="$TOOLS/bin:$PATH" RUSTC_BOOTSTRAP=1
seeds="$(mktemp -d)"
trap 'rm -rf "$seeds"' EXIT
# The checkpoint and LoRA targets take one byte naming the file (its index among the folder's
# files, sorted) and then its content: the kept inputs get that byte in front.
prefixed() { # prefixed LOADER FILE...: one seed per kept input of each file, in that order
  local loader="$1"; shift
  mkdir -p "$seeds/$loader"
  local i=0
  for name in "$@"; do
    for f in tests/fuzz/corpus/"$loader"/"$name"/*; do
      [ -f "$f" ] || continue
      { printf "\\x$(printf %02x "$i")"; cat "$f"; } > "$seeds/$loader/$i-$(basename "$f")"
    done
    i=$((i + 1))
  done
}
prefixed checkpoint config.json model.safetensors optimizer.safetensors tokenizer.json training_state.json
prefixed lora adapter_config.json adapter_model.safetensors config.json optimizer.safetensors tokenizer.json training_state.json
mkdir -p "$seeds/packed" "$seeds/task"
cp tests/fuzz/corpus/packed/model.kiln/* "$seeds/packed/"
cp tests/fuzz/corpus/task/task.jsonl/* "$seeds/task/"
cd fuzz
for target in checkpoint packed task lora; do
  mkdir -p "corpus/$target"
  log="$seeds/$target.log"
  if ! cargo fuzz run --release "$target" "corpus/$target" "$seeds/$target" -- \
      -max_total_time="$SECONDS_EACH" -rss_limit_mb=4096 -print_final_stats=1 > "$log" 2>&1; then
    tail -40 "$log" >&2
    echo "fuzz: target $target failed; the input is under fuzz/artifacts/$target/" >&2
    exit 1
  fi
  echo "fuzz $target: $(grep -E '^Done' "$log" | tail -1)"
done

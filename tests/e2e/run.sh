#!/usr/bin/env bash
# The end-to-end tests of the browser page (tests/e2e/*.test.mjs), from the repository root:
# builds the native `kiln` (it serves the page and checks the page's checkpoint) and web/pkg
# (incremental, so cheap when nothing changed), installs playwright-core from the lock file when
# tests/e2e/node_modules is missing (it downloads no browser: the tests drive the system Chromium,
# /usr/bin/chromium or $CHROMIUM), then runs the tests with Node's built-in runner.
set -euo pipefail
cd "$(dirname "$0")/../.."
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "tests/e2e: no Chromium at $chromium: install it (apt-get install chromium) or set CHROMIUM=/path/to/chrome" >&2
  exit 1
fi
command -v node >/dev/null || { echo "tests/e2e: node is not installed: install Node.js 20 or newer" >&2; exit 1; }
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}" # silences the Vulkan loader's warning
cargo build --release -p kiln-cli
bash scripts/build-web.sh
bash scripts/gpt2-tokenizer.sh # GPT-2 vocab.json and merges.txt for the "Open model" test
if [ ! -d tests/e2e/node_modules ]; then
  if [ -f tests/e2e/package-lock.json ]; then
    (cd tests/e2e && npm ci --no-audit --no-fund)
  else
    (cd tests/e2e && npm install --no-audit --no-fund)
  fi
fi
node --test tests/e2e/

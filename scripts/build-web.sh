#!/usr/bin/env bash
# Builds the browser page's WebAssembly package into web/pkg: the kiln-web crate for wasm32,
# then wasm-bindgen's JavaScript glue.
#
# wasm-bindgen-cli must be the exact version of the wasm-bindgen crate in Cargo.lock, so it is
# installed into .tools/ in this checkout (ignored by git) rather than taken from the machine:
# a clean clone always exercises the install, as a newcomer's machine would. The install tries
# the lock file shipped with wasm-bindgen-cli first (--locked) and, when the registry no longer
# serves a version pinned there, installs the same version unlocked, saying which happened.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
tools="$root/.tools"
export PATH="$tools/bin:$PATH"

version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if [ -z "$version" ]; then
  echo "build-web: Cargo.lock names no wasm-bindgen version" >&2
  exit 1
fi
if ! "$tools/bin/wasm-bindgen" --version 2>/dev/null | grep -q " $version\$"; then
  echo "build-web: installing wasm-bindgen-cli $version into .tools (a few minutes, once per checkout)"
  if cargo install --quiet --root "$tools" --locked wasm-bindgen-cli --version "$version"; then
    echo "build-web: installed wasm-bindgen-cli $version with its own lock file (--locked)"
  else
    echo "build-web: the --locked install of wasm-bindgen-cli $version failed (its lock file pins a" \
      "version the registry no longer serves); installing the same version unlocked"
    cargo install --quiet --root "$tools" wasm-bindgen-cli --version "$version"
    echo "build-web: installed wasm-bindgen-cli $version unlocked"
  fi
fi

rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build --release -p kiln-web --target wasm32-unknown-unknown
# Wherever cargo puts its builds (CARGO_TARGET_DIR, a config file, or target/).
target_dir=$(cargo metadata --format-version 1 --no-deps | grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)
wasm-bindgen --target web --no-typescript --out-dir web/pkg "$target_dir/wasm32-unknown-unknown/release/kiln_web.wasm"
echo "built web/pkg; serve the page with: cargo run --release -p kiln-cli -- serve"

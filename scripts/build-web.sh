#!/usr/bin/env bash
# Builds the browser page's WebAssembly package into web/pkg: the kiln-web crate for wasm32,
# then wasm-bindgen's JavaScript glue. Installs wasm-bindgen-cli at the crate's exact version
# when missing (the two must match).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! wasm-bindgen --version 2>/dev/null | grep -q " $version"; then
  cargo install --locked wasm-bindgen-cli --version "$version"
fi
rustup target list --installed | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
cargo build --release -p kiln-web --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir web/pkg target/wasm32-unknown-unknown/release/kiln_web.wasm
echo "built web/pkg; serve the page with: cargo run --release -p kiln-cli -- serve"

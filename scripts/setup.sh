#!/usr/bin/env bash
# Installs what building and testing Kiln needs on Debian or Ubuntu, and nothing that is already
# there: a Vulkan driver (Mesa's lavapipe runs WebGPU on the CPU where there is no GPU), the
# wasm32 target for the browser build, and Chromium for the page's end-to-end test (its bundled
# SwiftShader runs WebGPU without a GPU). Safe to run again.
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
missing=()
ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1 || missing+=(mesa-vulkan-drivers)
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null || missing+=(nodejs npm)
command -v g++ >/dev/null || missing+=(g++) # libFuzzer, for scripts/fuzz.sh
if [ ${#missing[@]} -gt 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

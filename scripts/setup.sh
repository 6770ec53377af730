#!/usr/bin/env bash
# Installs what building and testing Kiln needs on Debian or Ubuntu, and nothing that is already
# there: a Vulkan driver (Mesa's lavapipe runs WebGPU on the CPU where there is no GPU) and the
# wasm32 target for the browser build. Safe to run again.
set -euo pipefail
sudo=""
[ "$(id -u)" = 0 ] || sudo="sudo"
if ! ls /usr/share/vulkan/icd.d/*.json >/dev/null 2>&1; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq mesa-vulkan-drivers >/dev/null
fi
if ! rustup target list --installed | grep -q wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

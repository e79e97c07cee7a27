#!/usr/bin/env bash
# Installs what building Portcullis needs and a fresh Debian/Ubuntu machine
# may lack: cmake (pingora builds zlib-ng from source). Safe to re-run.
set -euo pipefail

if ! command -v cargo >/dev/null 2>&1; then
  echo "cargo is missing: install Rust first (https://rustup.rs)" >&2
  exit 1
fi
if ! command -v cmake >/dev/null 2>&1; then
  echo "installing cmake (needed to build pingora)..." >&2
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq cmake
fi

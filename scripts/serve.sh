#!/usr/bin/env bash
# Builds and runs the gateway with the bundled config (no external services).
# Usage: scripts/serve.sh [extra portcullis serve arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-deps.sh
exec cargo run --release -- serve --config config/portcullis.toml "$@"

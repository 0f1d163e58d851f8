#!/usr/bin/env bash
# Runs every test: the device side (default features), then the trainer (feature `train`, libtorch from
# PyTorch 2.13.0 in ./.venv, installed on first use).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== device side: cargo test"
cargo test
echo "== trainer: cargo test --features train"
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo test --features train

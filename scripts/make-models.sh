#!/usr/bin/env bash
# Reproduces the shipped models, models/poolwatch.onnx and its int8 twin (and the report), from nothing but this
# repository: the synthetic demo venue (seed 1, the one `poolwatch run` shows) records 300 frames of
# its empty pool, and poolwatch-train trains on them with its default settings but one network
# (`--models 1`): the binary embeds it, and a device without a config runs it at one network's cost.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo build --release --features train
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
target/release/poolwatch synth --out "$work/empty" --frames 300 --swimmers 0 --seed 1 --interval 1.0
target/release/poolwatch-train train --normal "$work/empty" --mask auto --out models/poolwatch.onnx --seed 1 --models 1 --quiet
rm -f models/poolwatch.ckpt
# The int8 twin: activation ranges from the same frames, calibrated on the same held-out ones.
target/release/poolwatch-train quantize models/poolwatch.onnx --normal "$work/empty" --mask auto \
    --out models/poolwatch.int8.onnx > models/poolwatch.report/int8.json
target/release/poolwatch info models/poolwatch.onnx

#!/usr/bin/env bash
# Times one ONNX model in poolwatch's tract pipeline and in onnxruntime (shared/bench/ort_time.py),
# same file, same thread count, in one run, and prints the ratio.
# Usage: scripts/compare-ort.sh [MODEL.onnx] [THREADS]
# THREADS is onnxruntime's threads within one inference, and poolwatch's detection threads, each on its
# own frames: with more than one, compare frames a second (tract runs each frame on one thread).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-models/poolwatch.onnx}"
threads="${2:-1}"
ort="${ORT_TIME:-../shared/bench/ort_time.py}"
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh   # a Python with numpy and onnxruntime
cargo build --release --quiet
tract_json="$(target/release/poolwatch bench --model "$model" --threads "$threads" --frames 100 --json 2>/dev/null)"
ort_json="$(python3 "$ort" "$model" --threads "$threads" --runs 100)"
python3 - "$tract_json" "$ort_json" <<'PY'
import json, sys
t, o = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"model {t['model']}, {t['threads']} thread(s)")
print(f"tract (poolwatch pipeline) inference median {t['infer_ms']:.3f} ms; whole pipeline {t['pipeline_ms']:.3f} ms; detection thread {t['detector_ms']:.3f} ms")
print(f"{o['runtime']} median {o['median_ms']:.3f} ms")
print(f"tract / onnxruntime = {t['infer_ms'] / o['median_ms']:.2f}")
if t['threads'] > 1:
    n = t['threads']
    print(f"inferences/s on {n} threads: tract about {n * 1000 / t['infer_ms']:.0f} ({n} frames at once, each at its median), onnxruntime {1000 / o['median_ms']:.0f} (one frame split over {n}); poolwatch's whole pipeline {t['fps']:.0f} frames/s")
PY

#!/usr/bin/env bash
# The synthetic underwater venues (`poolwatch synth --camera underwater`): for each venue, record its
# empty pool (120 frames, 2 s apart), train a model with poolwatch-train's defaults (training seed
# TRAIN_SEED, default 1), record 100 frames with 1-2 swimmers a quarter of an hour later (the light has
# drifted; 0.1 s apart) and score every frame with `poolwatch eval` (per frame, like the overhead
# synthetic target: the truth is the box of each body, never its bubbles or wake).
# Usage: scripts/underwater-benchmark.sh [OUT_DIR] [VENUE_SEEDS] [-- poolwatch-train arguments]
#   VENUE_SEEDS: space-separated, default "101 102 103 104 105" (never used to choose a setting;
#   tune on others). EVAL_CONFIG=C.toml scores with a detector config.
set -euo pipefail
out="target/underwater-benchmark"
seeds="101 102 103 104 105"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
if [ $# -gt 0 ] && [ "$1" != "--" ]; then seeds="$1"; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo build --release --features train
mkdir -p "$out"
pw=target/release/poolwatch
cfg=()
[ -n "${EVAL_CONFIG:-}" ] && cfg=(--config "$EVAL_CONFIG")
for s in $seeds; do
    v="$out/venue$s"
    if [ ! -d "$v/empty" ]; then
        $pw synth --camera underwater --seed "$s" --swimmers 0 --frames 120 --interval 2 --out "$v/empty"
        $pw synth --camera underwater --seed "$s" --swimmers 1..2 --frames 100 --interval 0.1 --start 900 --out "$v/test"
    fi
    target/release/poolwatch-train train --normal "$v/empty" --out "$v/model-${TRAIN_SEED:-1}.onnx" --seed "${TRAIN_SEED:-1}" --quiet "$@"
    $pw eval --model "$v/model-${TRAIN_SEED:-1}.onnx" --test "$v/test" "${cfg[@]}" --json > "$v/eval-${TRAIN_SEED:-1}.json"
done
python3 - "$out" "${TRAIN_SEED:-1}" $seeds <<'PY'
import json, sys
out, tseed, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
print(f"{'venue':6} {'IoU':4} {'recall':>7} {'prec.':>7} {'F1':>6} {'FP/fr':>6} {'pxAUROC':>8} {'AUPRO':>6}")
tot = {"0.3": [0, 0.0, 0.0], "0.5": [0, 0.0, 0.0]}
for s in seeds:
    r = json.load(open(f"{out}/venue{s}/eval-{tseed}.json"))
    for iou in ("0.3", "0.5"):
        b = r["box"][iou]
        extra = f"{r['pixel_auroc'] or 0:8.3f} {r['aupro'] or 0:6.3f}" if iou == "0.3" else ""
        print(f"{s:6} {iou:4} {b['recall']:7.3f} {b['precision']:7.3f} {b['f1']:6.3f} {b['fp_per_frame']:6.2f} {extra}")
        t = tot[iou]; t[0] += 1; t[1] += b["recall"]; t[2] += b["fp_per_frame"]
for iou, (n, rec, fp) in tot.items():
    print(f"mean   {iou:4} recall {rec / n:.3f}, false boxes a frame {fp / n:.3f}")
PY

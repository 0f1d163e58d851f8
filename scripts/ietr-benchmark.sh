#!/usr/bin/env bash
# The accuracy benchmark on the ietr-pool footage: for each background group, train with
# poolwatch-train's default settings on its empty frames, evaluate on the videos recorded at that
# placement (each video through the tracker, as the daemon reports it), print one table.
# Usage: scripts/ietr-benchmark.sh PATH/TO/ietr-pool [OUT_DIR] [-- TRAIN_ARGS...]
# TRAIN_SEED=N trains with that seed (default 1); EVAL_CONFIG=C.toml scores with a detector config;
# KEEP_MODELS=1 reuses the models already in OUT_DIR (a detector-only change).
set -euo pipefail
data="${1:?usage: scripts/ietr-benchmark.sh PATH/TO/ietr-pool [OUT_DIR] [-- extra poolwatch-train arguments]}"
shift
out="target/ietr-benchmark"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo build --release --features train
mkdir -p "$out"
cfg=()
[ -n "${EVAL_CONFIG:-}" ] && cfg=(--config "$EVAL_CONFIG")
for dir in "$data"/background/*/; do
    group="$(basename "$dir")"
    [ "${KEEP_MODELS:-0}" = 1 ] && [ -f "$out/$group.onnx" ] && continue
    target/release/poolwatch-train train --normal "$dir" --out "$out/$group.onnx" --seed "${TRAIN_SEED:-1}" --quiet "$@"
done
while read -r video group; do
    [ -n "$video" ] || continue
    # --track: the video through the tracker, scoring the confirmed swimmers the daemon would report.
    target/release/poolwatch eval --model "$out/$group.onnx" --test "$data/videos/$video" --track "${cfg[@]}" --json > "$out/$video.json"
done < "$data/videos.txt"
python3 - "$out" "$data/videos.txt" <<'PY'
import json, sys
out, videos = sys.argv[1], sys.argv[2]
print(f"{'video':6} {'group':6} {'IoU':4} {'recall':>7} {'prec.':>7} {'F1':>6} {'FP/fr':>6} {'AP':>6} {'pxAUROC':>8} {'AUPRO':>6}")
for line in open(videos):
    if not line.strip():
        continue
    video, group = line.split()
    r = json.load(open(f"{out}/{video}.json"))
    for iou in ("0.3", "0.5"):
        b = r["box"][iou]
        extra = f"{r['pixel_auroc'] or 0:8.3f} {r['aupro'] or 0:6.3f}" if iou == "0.3" else ""
        print(f"{video:6} {group:6} {iou:4} {b['recall']:7.3f} {b['precision']:7.3f} {b['f1']:6.3f} {b['fp_per_frame']:6.2f} {b['ap']:6.3f} {extra}")
PY

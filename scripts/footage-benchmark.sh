#!/usr/bin/env bash
# Training without an empty pool (poolwatch-train train --footage), measured: for every video of a data
# directory laid out as ietr-pool (videos/VIDEO and footage/VIDEO, frames with their annotations), train
# on its first 60 % of frames with --footage and default settings (the frames only: annotations are
# never linked into the training folder), then score its last 40 % with `poolwatch eval --track`. A
# video with a background group in videos.txt is also scored, on the same 40 %, by the model trained on
# that group's empty frames, as the reference `--footage` must come close to. Prints one table.
# Usage: scripts/footage-benchmark.sh DATA_DIR [OUT_DIR] [-- TRAIN_ARGS...]
# TRAIN_SEED=N trains with that seed (default 1); KEEP_MODELS=1 reuses the models already in OUT_DIR;
# VIDEOS="A1 T1" limits the run to those videos.
set -euo pipefail
data="${1:?usage: scripts/footage-benchmark.sh DATA_DIR [OUT_DIR] [-- extra poolwatch-train arguments]}"
data="$(cd "$data" && pwd)"
shift
out="target/footage-benchmark"
if [ $# -gt 0 ] && [ "$1" != "--" ]; then out="$1"; shift; fi
[ $# -gt 0 ] && [ "$1" = "--" ] && shift
cd "$(dirname "$0")/.."
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo build --release --features train
mkdir -p "$out"
out="$(cd "$out" && pwd)"
seed="${TRAIN_SEED:-1}"
train() { # OUT_MODEL ARGS...
    local model="$1"; shift
    [ "${KEEP_MODELS:-0}" = 1 ] && [ -f "$model" ] && return 0
    target/release/poolwatch-train train "$@" --out "$model" --seed "$seed" --quiet "${extra[@]}"
}
extra=("$@")
rows=()
for dir in "$data"/videos/*/ "$data"/footage/*/; do
    [ -d "$dir" ] || continue
    video="$(basename "$dir")"
    if [ -n "${VIDEOS:-}" ] && ! grep -qw "$video" <<<"$VIDEOS"; then continue; fi
    mapfile -t frames < <(find "$dir" -maxdepth 1 -name '*.jpg' -printf '%f\n' | sort)
    n=${#frames[@]}
    [ "$n" -ge 10 ] || { echo "$video: $n frames, skipped" >&2; continue; }
    cut=$((n * 60 / 100))
    split="$out/split/$video"
    rm -rf "$split"
    mkdir -p "$split/train" "$split/test"
    for ((i = 0; i < n; i++)); do
        f="${frames[$i]}"
        if ((i < cut)); then
            ln -s "$dir/$f" "$split/train/$f"
        else
            ln -s "$dir/$f" "$split/test/$f"
            [ -f "$dir/${f%.jpg}.json" ] && ln -s "$dir/${f%.jpg}.json" "$split/test/${f%.jpg}.json"
        fi
    done
    echo "== $video: $cut frames to train on, $((n - cut)) scored" >&2
    train "$out/$video.footage.onnx" --footage "$split/train"
    target/release/poolwatch eval --model "$out/$video.footage.onnx" --test "$split/test" --track --json > "$out/$video.footage.json"
    rows+=("$video footage")
    group="$(awk -v v="$video" '$1 == v { print $2 }' "$data/videos.txt" 2>/dev/null || true)"
    if [ -n "$group" ] && [ -d "$data/background/$group" ]; then
        train "$out/$group.normal.onnx" --normal "$data/background/$group"
        target/release/poolwatch eval --model "$out/$group.normal.onnx" --test "$split/test" --track --json > "$out/$video.normal.json"
        rows+=("$video normal:$group")
    fi
done
python3 - "$out" "${rows[@]}" <<'PY'
import json, sys
out, rows = sys.argv[1], sys.argv[2:]
print(f"{'video':6} {'trained on':14} {'recall':>7} {'prec.':>7} {'F1@0.3':>7} {'FP/fr':>6} {'F1@0.5':>7}  left out (median)")
f1 = {}
for row in rows:
    video, kind = row.split(" ", 1)
    tag = "footage" if kind == "footage" else "normal"
    r = json.load(open(f"{out}/{video}.{tag}.json"))
    b, b5 = r["box"]["0.3"], r["box"]["0.5"]
    f1[(video, tag)] = b["f1"]
    left = ""
    if tag == "footage":
        rep = json.load(open(f"{out}/{video}.footage.report/report.json"))
        m = rep["summary"].get("footage_excluded_median")
        left = f"{m * 100:.1f} %" if m is not None else ""
    print(f"{video:6} {kind:14} {b['recall']:7.3f} {b['precision']:7.3f} {b['f1']:7.3f} {b['fp_per_frame']:6.2f} {b5['f1']:7.3f}  {left}")
for (video, tag), v in f1.items():
    if tag == "normal":
        print(f"{video}: footage - empty-pool model = {f1[(video, 'footage')] - v:+.3f} F1 at IoU 0.3")
PY

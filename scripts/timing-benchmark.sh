#!/usr/bin/env bash
# Lap timing and the motionless-swimmer alarm on one synthetic venue (`poolwatch eval --timing`):
# for a venue other than 1 (the demo venue, whose model ships), record its empty pool (300 frames, 1 s
# apart), train its model with poolwatch-train's defaults (`--mask auto`, training seed TRAIN_SEED,
# default 1); then 300 s at 25 fps for every swimmer seed, one swimmer stopped for 30 s (seeds 21-23),
# and 30 minutes of six swimmers (seed 24); one table.
# Usage: scripts/timing-benchmark.sh [OUT_DIR] [VENUE] [SWIMMER_SEEDS]
#   VENUE: default 141 (a 25 m pool with 8 lanes, the camera at one side seeing nearly all of it);
#   SWIMMER_SEEDS: space-separated, default "41 42 43 44 45 46 47 48 49 50" (never used to change the
#   timer; trace on others). LONG=0 skips the 30 minutes.
set -euo pipefail
out="target/timing-benchmark"
venue=141
seeds="41 42 43 44 45 46 47 48 49 50"
[ $# -gt 0 ] && { out="$1"; shift; }
[ $# -gt 0 ] && { venue="$1"; shift; }
[ $# -gt 0 ] && { seeds="$1"; shift; }
cd "$(dirname "$0")/.."
pw=target/release/poolwatch
model=()
if [ "$venue" != 1 ]; then
    # shellcheck source=scripts/torch-env.sh
    . scripts/torch-env.sh
    cargo build --release --features train
    v="$out/venue$venue"
    [ -d "$v/empty" ] || $pw synth --seed "$venue" --swimmers 0 --frames 300 --interval 1 --out "$v/empty"
    m="$v/model-${TRAIN_SEED:-1}.onnx"
    [ -f "$m" ] || target/release/poolwatch-train train --normal "$v/empty" --mask auto --seed "${TRAIN_SEED:-1}" --out "$m" --quiet
    model=(--model "$m")
else
    cargo build --release
fi
mkdir -p "$out"
res="$out/venue$venue-${TRAIN_SEED:-1}.jsonl"
: > "$res"
run() { # LABEL ARGS...
    local label="$1" json; shift
    json="$($pw eval --timing --venue "$venue" "${model[@]}" --json "$@")"  # a failed run stops the script
    printf '%s\t%s\n' "$label" "$json" >> "$res"
}
for s in $seeds; do run "seed $s" --seed "$s"; done
for s in 21 22 23; do run "stop $s" --seed "$s" --stop; done
[ "${LONG:-1}" = 0 ] || run "30 min" --seed 24 --swimmers 6..6 --seconds 1800
python3 - "$res" <<'PY'
import json, sys
print(f"{'run':8} {'swimmers':>8} {'lengths':>7} {'reported':>8} {'exact':>6} {'median s':>8} {'p95 s':>6} {'alarm s':>7} {'false alarms/h':>14}")
for line in open(sys.argv[1]):
    label, j = line.rstrip("\n").split("\t", 1)
    r = json.loads(j)
    f = lambda v, w: f"{v:{w}.3f}" if v is not None else f"{'-':>{w}}"
    print(f"{label:8} {r['swimmers']:8} {r['laps_true']:7} {r['laps_reported']:8} {r['laps_exact']:6.3f} "
          f"{f(r['touch_error_s_median'], 8)} {f(r['touch_error_s_p95'], 6)} {f(r['alarm_delay_s_max'], 7)} "
          f"{r['false_alarms_per_hour']:14.1f}")
PY

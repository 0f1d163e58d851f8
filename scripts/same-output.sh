#!/usr/bin/env bash
# Shows that this tree's `poolwatch` prints what a reference commit's prints on the same input: the
# restructuring check (ARCHITECTURE.md). Builds REF (default: the last commit before the move into
# wings) in a worktree under target/ with the same target directory and the dev profile (dependencies
# are shared with the tests' build, only poolwatch is rebuilt), then runs both binaries on the same
# synthetic frames and compares, after removing what depends on the clock (`ts`, `ms`):
#   - `synth` (the frames themselves, byte for byte),
#   - `detect` on them,
#   - `eval --json` and `eval --json --track`,
#   - `run --frames 300` on the synthetic camera (at 5 frames/s, with a queue of 64 frames: neither
#     build may fall behind the camera and drop a frame, which would change the tracks), and
#     `run --input` on the frames.
# Usage: scripts/same-output.sh [REF]   (exit 1 and a diff when anything differs)
set -euo pipefail
cd "$(dirname "$0")/.."
ref=${1:-${SAME_OUTPUT_REF:-0b172f8}}
work=target/same-output
rm -rf "$work/out"
mkdir -p "$work/out"
if ! git cat-file -e "$ref^{commit}" 2>/dev/null; then
    echo "same-output: commit $ref is not in this clone (a shallow clone?); fetch it or give another REF" >&2
    exit 2
fi
echo "== building $ref (reference) and this tree"
git worktree remove --force "$work/ref" 2>/dev/null || rm -rf "$work/ref"
git worktree prune
git worktree add --detach "$work/ref" "$ref" >/dev/null
(cd "$work/ref" && CARGO_TARGET_DIR=../../../target cargo build --bin poolwatch -q)
cp target/debug/poolwatch "$work/out/poolwatch-ref"
git worktree remove --force "$work/ref"
cargo build --bin poolwatch -q
cp target/debug/poolwatch "$work/out/poolwatch-new"

# Clock-dependent fields out; everything else as printed.
normalize() { sed -E 's/"(ts|ms)":[0-9.eE+-]+/"\1":_/g'; }
status=0
compare() {
    local what=$1
    if cmp -s "$work/out/ref.$what" "$work/out/new.$what"; then
        echo "same: $what ($(wc -l <"$work/out/new.$what") lines)"
    else
        echo "DIFFERENT: $what" >&2
        diff "$work/out/ref.$what" "$work/out/new.$what" | head -20 >&2
        status=1
    fi
}
for v in ref new; do
    bin=$work/out/poolwatch-$v
    export RUST_LOG=error
    "$bin" synth --out "$work/out/frames-$v" --frames 60 --swimmers 0..4 --seed 11 --scenes 2
    (cd "$work/out/frames-$v" && sha256sum ./*) >"$work/out/$v.synth"
done
compare synth
frames=$work/out/frames-ref
printf '[pipeline]\nqueue = 64\n' >"$work/out/queue.toml"
for v in ref new; do
    bin=$work/out/poolwatch-$v
    "$bin" detect --model models/poolwatch.onnx "$frames" | normalize >"$work/out/$v.detect"
    "$bin" eval --json --test "$frames" >"$work/out/$v.eval"
    "$bin" eval --json --track --test "$frames" >"$work/out/$v.eval-track"
    "$bin" run --input "$frames" | normalize >"$work/out/$v.run-input"
    "$bin" run --config "$work/out/queue.toml" --frames 300 --fps 5 | normalize >"$work/out/$v.run"
done
for what in detect eval eval-track run-input run; do
    compare "$what"
done
exit $status

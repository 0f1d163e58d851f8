#!/usr/bin/env bash
# Fuzzes every parser fed from outside the device (fuzz/fuzz_targets: the TOML config, the MJPEG stream,
# raw RGB frames, the model file's contract and metadata, annotations, HTTP request heads, the set-up
# page's requests and zone switches, a replay folder's times.csv) for SECONDS
# each, one after another, with libFuzzer and AddressSanitizer (cargo fuzz, nightly).
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]     (default 60 s, every target)
#
# The corpus grows in fuzz/corpus/TARGET (kept between runs, not in git), starting from fuzz/seeds/TARGET.
# A crash leaves its input in fuzz/artifacts/TARGET/ and the script exits 1; reproduce it with
# `cargo +nightly fuzz run TARGET fuzz/artifacts/TARGET/crash-...`. Prints one line per target: runs,
# coverage, corpus size, peak RSS. Needs the nightly toolchain and cargo-fuzz (installed when missing).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${1:-60}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(config mjpeg rgb model annotations http setup times)

rustup run nightly rustc --version >/dev/null 2>&1 || { echo "fuzz: the nightly toolchain is missing (rustup toolchain install nightly)" >&2; exit 2; }
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked >&2
fi
# A short run (under a minute a target, as in CI) is built without optimisation: from scratch it
# builds in a third of the time (3.5 against 9.7 minutes on a two-core machine) and still runs each
# target over a thousand times in 10 s (an optimised build: some twenty times more); a longer run is built
# optimised, as fuzzing wants.
mode=()
[ "$SECONDS_EACH" -lt 60 ] && mode=(--dev)
cargo +nightly fuzz build "${mode[@]}" >&2

failed=0
for t in "${TARGETS[@]}"; do
    mkdir -p "fuzz/corpus/$t" "fuzz/artifacts/$t"
    log=$(mktemp)
    # -timeout: one input taking 10 s is a finding; -rss_limit_mb: as is the memory of a small board.
    if cargo +nightly fuzz run "${mode[@]}" "$t" "fuzz/corpus/$t" "fuzz/seeds/$t" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -print_final_stats=1 >"$log" 2>&1; then
        status=ok
    else
        status=FOUND
        failed=1
    fi
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    rss=$(grep -o 'stat::peak_rss_mb: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(find "fuzz/corpus/$t" -type f | wc -l)
    printf '%-12s %-6s %5s s  %10s runs  coverage %5s  corpus %5s  peak RSS %5s MB\n' "$t" "$status" "$SECONDS_EACH" "$runs" "$cov" "$corpus" "$rss"
    if [ "$status" = FOUND ]; then
        grep -E 'panicked|ERROR: |SUMMARY|Test unit written' "$log" | head -8 | sed 's/^/    /'
        cp "$log" "fuzz/artifacts/$t/last-run.log"
    fi
    rm -f "$log"
done
exit $failed

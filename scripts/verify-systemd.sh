#!/usr/bin/env bash
# Checks systemd/poolwatch.service with `systemd-analyze verify`, warnings treated as errors, against
# the binary built here (the unit's /usr/local/bin path does not exist on a build machine), and the
# example config with `poolwatch check-config`.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="${1:-target/debug/poolwatch}"
[ -x "$bin" ] || { echo "verify-systemd: $bin is not built" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
sed "s#/usr/local/bin/poolwatch#$(realpath "$bin")#" systemd/poolwatch.service > "$tmp/poolwatch.service"
out=$(systemd-analyze verify --man=no "$tmp/poolwatch.service" 2>&1) || { echo "$out" >&2; exit 1; }
if [ -n "$out" ]; then
    echo "systemd-analyze verify warned:" >&2
    echo "$out" >&2
    exit 1
fi
echo "systemd unit: ok"
"$bin" check-config systemd/poolwatch.toml

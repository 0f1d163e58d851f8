#!/usr/bin/env bash
# Installs what the tests need on a fresh Debian machine that has the Rust toolchain and a C compiler:
# mosquitto (the MQTT tests' broker), socat (the serial tests' pty pair), libclang (bindgen, for the
# camera feature), systemd (systemd-analyze, for the unit check), python3-venv (the trainer's PyTorch),
# mosquitto-clients and curl (scripts/soak.sh), Debian's chromium, node and npm with playwright-core in
# tests/browser (the set-up page's browser test), then the ARM cross toolchains (cross/install-deps.sh). Does nothing for what is there already. Without
# root (or sudo) and apt-get, it stops with one line naming what is missing and how to install it.
# `scripts/test.sh` runs it first; CI and a newcomer's first `scripts/test.sh` need nothing else.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo >/dev/null || { echo "setup: cargo is missing: install the Rust toolchain (1.95+) first" >&2; exit 1; }
need=()
python3 -m venv --help >/dev/null 2>&1 || need+=(python3-venv)
command -v mosquitto >/dev/null || [[ -x /usr/sbin/mosquitto ]] || need+=(mosquitto)
command -v socat >/dev/null || need+=(socat)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
command -v curl >/dev/null || need+=(curl)
command -v systemd-analyze >/dev/null || need+=(systemd)
[[ -n $(ls /usr/lib/llvm-*/lib/libclang.so* 2>/dev/null) ]] || need+=(libclang-dev)
[[ -x /usr/bin/chromium ]] || need+=(chromium)
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo -n)
can_install() { command -v apt-get >/dev/null && { [[ $(id -u) -eq 0 ]] || sudo -n true 2>/dev/null; }; }
if [[ ${#need[@]} -gt 0 ]]; then
    if ! can_install; then
        echo "setup: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2
        exit 1
    fi
    echo "== setup: installing ${need[*]}"
    for i in 1 2 3 4 5; do
        if "${sudo[@]}" apt-get update -qq && "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"; then
            break
        fi
        [[ $i -lt 5 ]] || { echo "setup: apt-get could not install ${need[*]}" >&2; exit 1; }
        echo "apt failed (mirror sync?), retrying in $((i * 20)) s" >&2
        sleep $((i * 20))
    done
fi
# playwright-core (drives Debian's chromium; it never downloads a browser of its own), as locked; it
# needs Node.js 20 or later (Debian 12's own nodejs is 18: NodeSource's, as these machines carry).
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
[[ $node_major -ge 20 ]] || { echo "setup: Node.js $node_major is too old for playwright-core (tests/browser): install Node.js 20 or later" >&2; exit 1; }
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
    echo "== setup: npm ci in tests/browser (playwright-core)"
    for i in 1 2 3; do
        npm ci --prefix tests/browser --no-audit --no-fund >/dev/null && break
        [[ $i -lt 3 ]] || { echo "setup: npm could not install playwright-core (tests/browser)" >&2; exit 1; }
        sleep $((i * 10))
    done
fi
# The ARM cross toolchain (Debian's Rust with aarch64 std, gcc, qemu-user): the aarch64 tests run
# when it is there. armv7 is best effort: its mirror index has been seen mid-sync.
if [[ ${POOLWATCH_NO_CROSS:-0} != 1 ]] && can_install; then
    cross/install-deps.sh aarch64-unknown-linux-gnu
    APT_RETRIES=2 APT_RETRY_SLEEP=20 cross/install-deps.sh armv7-unknown-linux-gnueabihf || echo "armv7 toolchain unavailable; its build is skipped" >&2
fi

#!/usr/bin/env bash
# Runs every test: the device side (with the V4L2 camera feature) against a real MQTT broker, a
# pseudo-terminal serial pair and a NOTIFY_SOCKET; the systemd unit check; the aarch64 build with the
# whole device test suite under qemu-user (and the armv7 build) when the cross toolchain is installed
# (cross/install-deps.sh); then the trainer (feature `train`, libtorch from PyTorch 2.13.0 in ./.venv,
# installed on first use).
#
# Needs: mosquitto, socat, libclang-dev (bindgen), systemd (systemd-analyze); `.ci/run` installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== device side: cargo test --features camera"
cargo test --features camera
echo "== systemd unit and example config"
scripts/verify-systemd.sh target/debug/poolwatch
if [[ -x /usr/bin/cargo && -x /usr/bin/qemu-aarch64-static ]] && compgen -G "$(/usr/bin/rustc --print sysroot 2>/dev/null)/lib/rustlib/aarch64-unknown-linux-gnu/lib/libstd-*.rlib" >/dev/null; then
    echo "== aarch64: cross build of every test, the device tests under qemu-user"
    # The test binaries run under qemu through cargo's runner, and the tests start the aarch64
    # poolwatch through POOLWATCH_TEST_RUNNER (both set by cross/build.sh; no binfmt_misc needed).
    x=(cross/build.sh aarch64-unknown-linux-gnu test --profile cross-test --features camera)
    "${x[@]}" --no-run
    "${x[@]}" --lib
    # The daemon end to end. qemu runs the model at about 1 frame a second, so the tests whose
    # deadlines assume a real CPU (MQTT, serial, preview, watchdog timing) run natively only.
    "${x[@]}" --test daemon -- check_config_and_record stdin_mjpeg sighup_applies a_directory_source \
        sigterm_while_stdin broker_down_at_start
    # The binary the tests ran, stripped (a board gets the release profile's, with LTO: cross/README.md).
    cp target/cross/aarch64-unknown-linux-gnu/cross-test/poolwatch target/cross/poolwatch-aarch64
    aarch64-linux-gnu-strip target/cross/poolwatch-aarch64
    echo "stripped aarch64 poolwatch: $(du -h target/cross/poolwatch-aarch64 | cut -f1)"
else
    echo "== aarch64: skipped (no cross toolchain; cross/install-deps.sh installs it)"
fi
if compgen -G "$(/usr/bin/rustc --print sysroot 2>/dev/null)/lib/rustlib/armv7-unknown-linux-gnueabihf/lib/libstd-*.rlib" >/dev/null; then
    echo "== armv7: cross build"
    cross/build.sh armv7-unknown-linux-gnueabihf build --release --features camera --bin poolwatch
else
    echo "== armv7: skipped (no armhf std; cross/install-deps.sh armv7-unknown-linux-gnueabihf)"
fi
echo "== trainer: cargo test --features train"
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
cargo test --features train

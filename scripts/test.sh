#!/usr/bin/env bash
# Runs every test: the device side (with the V4L2 camera feature) against a real MQTT broker, a
# pseudo-terminal serial pair and a NOTIFY_SOCKET; the systemd unit check; the installed service in a
# Debian VM with systemd and a V4L2 camera (scripts/vm-test.sh, as root); the aarch64 build with the
# whole device test suite under qemu-user (and the armv7 build) when the cross toolchain is installed
# (cross/install-deps.sh); then the trainer (feature `train`, libtorch from PyTorch 2.13.0 in ./.venv,
# installed on first use); a short fuzzing run of every target and a one-minute soak of the daemon.
#
# Needs: mosquitto, socat, libclang-dev (bindgen), systemd (systemd-analyze), python3-venv and the cross
# toolchains; scripts/setup.sh installs what is missing first (POOLWATCH_NO_CROSS=1 skips the cross ones).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each stage is headed with the minutes since the start, so a slow stage shows in the log; the heads
# are also kept in target/stage-times.log and printed again at the end, and after 80 minutes (CI stops
# a run at 90 and keeps only the log's tail: this says where the time went).
SECONDS=0
mkdir -p target
: >target/stage-times.log
stage() {
    printf '== [%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "$*"
    printf '[%d:%02d] %s\n' $((SECONDS / 60)) $((SECONDS % 60)) "${*%%:*}" >>target/stage-times.log
}
(
    # Told to stop, the watchdog ends its sleep (which holds none of CI's output open either way);
    # `sleeper` is set first so that a stop before the sleep starts finds no unset variable (set -u).
    sleeper=
    trap '[[ -z $sleeper ]] || kill "$sleeper" 2>/dev/null; exit 0' TERM
    sleep 4800 >/dev/null 2>&1 </dev/null &
    sleeper=$!
    wait "$sleeper" && echo "== scripts/test.sh has run for 80 minutes; its stages began at:" &&
        cat target/stage-times.log
) &
watchdog=$!
# The watchdog ends with the script. `|| true`: errexit holds inside the trap too, and a watchdog that
# has already gone (kill fails) must not turn a passing run's exit status into 1 (stop 37's CI did).
trap 'kill "$watchdog" 2>/dev/null || true' EXIT
stage "setup: packages, npm, cross toolchains (scripts/setup.sh)"
scripts/setup.sh
# The trainer's PyTorch (a few GB from PyPI on a fresh machine, the slowest download of a CI run) is
# installed in the background, at the lowest priority, while the device side builds and runs; the
# trainer stage waits for it. Its output: target/torch-install.log.
nice -n 19 bash -c '. scripts/torch-env.sh' >target/torch-install.log 2>&1 &
torch_install=$!
stage "layers: every import points down the wings, no circle (ARCHITECTURE.md)"
python3 scripts/check-layers.py
stage "device side: cargo test --features camera"
cargo test --features camera
# The library as `cargo build ... --bin poolwatch` compiles it for a board: rustc's own command line
# (forced by touching lib.rs) must not carry feature "export", the switch of the trainer's side.
board_build() {
    touch src/lib.rs
    local lib
    lib=$("$@" -v 2>&1 | grep -E 'Running .*--crate-name poolwatch .*--crate-type lib' || true)
    [[ -n $lib ]] || { echo "board build ($*): no rustc line for the library" >&2; return 1; }
    if grep -q 'feature=\\\?"export' <<<"$lib"; then
        echo "board build ($*): the library was compiled with the trainer's side (feature export)" >&2
        return 1
    fi
    echo "board build: the library compiled without the trainer's side ($*)"
}
stage "a board's build: poolwatch without the trainer's side (feature export off)"
board_build cargo build --features camera --bin poolwatch
stage "systemd unit and example config"
scripts/verify-systemd.sh target/debug/poolwatch
# The board's binary just built, installed as README says in a Debian VM with systemd and the vivid
# camera (qemu, software emulation; the image is built once with debootstrap and cached in target/vm).
stage "the device on a real Linux system: VM with systemd, vivid camera, broker, serial (scripts/vm-test.sh)"
if [[ $(id -u) -eq 0 ]]; then
    POOLWATCH_BIN=target/debug/poolwatch scripts/vm-test.sh x86_64
else
    echo "skipped: scripts/vm-test.sh needs root (debootstrap builds its image)"
fi
# scripts/same-output.sh (this tree's output against a reference commit's) proved the restructuring of
# issue 17; it is run by hand for the next one, not here: behaviour changes since (the box extent cap
# of issue 19) make the outputs differ from that reference by design.
# Debian's Rust std for TARGET: packaged, or unpacked by cross/install-deps.sh's cross-only route.
has_std() {
    [[ -x /usr/bin/rustc && -x /usr/bin/cargo ]] || return 1
    local d
    for d in "$(/usr/bin/rustc --print sysroot)" "${CROSS_SYSROOT_BASE:-/usr/local/lib/poolwatch-cross}/rust-$(/usr/bin/rustc --version | cut -d' ' -f2)"; do
        compgen -G "$d/lib/rustlib/$1/lib/libstd-*.rlib" >/dev/null && return 0
    done
    return 1
}
if [[ -x /usr/bin/qemu-aarch64-static ]] && has_std aarch64-unknown-linux-gnu; then
    stage "aarch64: cross build of every test, the device tests under qemu-user"
    # The test binaries run under qemu through cargo's runner, and the tests start the aarch64
    # poolwatch through POOLWATCH_TEST_RUNNER (both set by cross/build.sh; no binfmt_misc needed).
    x=(cross/build.sh aarch64-unknown-linux-gnu test --profile cross-test --features camera)
    "${x[@]}" --no-run
    "${x[@]}" --lib
    # The daemon end to end, the command line (synth, detect, eval, bench, info, mask, run) and the
    # model round trips. qemu runs the model at about a frame a second, so the deadlines that wait for
    # frames are stretched (tests/common: POOLWATCH_TEST_SLOWDOWN). All but the serial tests: qemu-user
    # does not implement the TCGETS2 ioctl (ENOSYS) that serialport sets the baud rate with, so no
    # serial port opens under emulation (on a board's kernel it does).
    POOLWATCH_TEST_SLOWDOWN=${POOLWATCH_TEST_SLOWDOWN:-8} "${x[@]}" --test daemon --test cli --test model -- --skip serial_
    # A board's build without the tests' feature export is checked once, natively, above (features
    # resolve alike for every target); the armv7 stage below builds and runs a board's binary.
else
    stage "aarch64: skipped (no cross toolchain; cross/install-deps.sh installs it)"
fi
if has_std armv7-unknown-linux-gnueabihf; then
    stage "armv7: cross build, and the binary run under qemu-user"
    # `cargo run` goes through qemu-arm (cross/build.sh sets the runner): the default job, two frames.
    frames=$(cross/build.sh armv7-unknown-linux-gnueabihf run --profile cross-test --features camera --bin poolwatch -- \
        run --frames 2 | grep -c '"frame"')
    [[ $frames == 2 ]] || { echo "the armv7 poolwatch printed $frames frames, not 2" >&2; exit 1; }
    echo "armv7 poolwatch: built, and its default job ran under qemu-arm (2 frames)"
else
    stage "armv7: skipped (no armhf std; cross/install-deps.sh armv7-unknown-linux-gnueabihf)"
fi
stage "trainer: cargo test --features train (the library's and binaries' unit tests, tests/train.rs, tests/onnxruntime.rs)"
if ! wait "$torch_install"; then
    cat target/torch-install.log >&2
    echo "trainer: PyTorch could not be installed into ./.venv (its pip output is above)" >&2
    exit 1
fi
# shellcheck source=scripts/torch-env.sh
. scripts/torch-env.sh
# The device's integration tests (daemon, cli, model) ran above on the camera build; with `train` the
# library gains the trainer's side, which its unit tests and the trainer's own tests cover.
cargo test --features train --lib --bins --test train --test onnxruntime
stage "fuzzing: every target for ${POOLWATCH_FUZZ_SECONDS:=10} s (scripts/fuzz.sh; README has a long run)"
scripts/fuzz.sh "$POOLWATCH_FUZZ_SECONDS"
stage "soak: the daemon for a minute while its broker, serial port and frames fail (scripts/soak.sh; README has 30 minutes)"
POOLWATCH_BIN=target/debug/poolwatch scripts/soak.sh 1
stage "all tests passed"
echo "stages began at:"
cat target/stage-times.log

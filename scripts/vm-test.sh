#!/usr/bin/env bash
# The device on a real Linux system: a Debian 12 VM under qemu (software emulation, no KVM needed) with
# systemd as PID 1, Debian's kernel and its vivid virtual camera, and a mosquitto broker; poolwatch is
# installed in it as README's "Install on a Raspberry Pi" says, and tests/vm/vmtest.py checks the service
# from the host (README, "The VM test", lists what).
#
#   scripts/vm-test.sh [x86_64|aarch64]      (default x86_64; run as root: debootstrap, apt)
#
# The VM image is built once from Debian packages (tests/vm/build-image.sh, about 2 minutes) and kept in
# target/vm/ARCH until tests/vm changes. POOLWATCH_BIN: the poolwatch to install (default: built here,
# x86_64 `cargo build --features camera --bin poolwatch`, aarch64 cross/build.sh's). Logs: target/vm/ARCH/run/.
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-x86_64}
case $arch in
    x86_64) qemu=qemu-system-x86_64; qemu_pkg=qemu-system-x86 ;;
    aarch64) qemu=qemu-system-aarch64; qemu_pkg=qemu-system-arm ;;
    *) echo "vm-test: unknown arch $arch (x86_64 or aarch64)" >&2; exit 2 ;;
esac
need=()
command -v "$qemu" >/dev/null || need+=("$qemu_pkg")
command -v debootstrap >/dev/null || need+=(debootstrap)
# ImageMagick by its Debian path (tests/vm/yuyv.py): a `convert` first on PATH may be a stand-in.
[[ -x /usr/bin/convert && -x /usr/bin/identify ]] || need+=(imagemagick)
# Debian's python (where python3-numpy goes), whatever python3 comes first on PATH.
py=/usr/bin/python3
$py -c 'import numpy' 2>/dev/null || need+=(python3-numpy)
command -v mosquitto_sub >/dev/null || need+=(mosquitto-clients)
[[ $arch != aarch64 || -x /usr/bin/qemu-aarch64-static ]] || need+=(qemu-user-static)
if [[ ${#need[@]} -gt 0 ]]; then
    [[ $(id -u) -eq 0 ]] || { echo "vm-test: missing ${need[*]}; install them with: sudo apt-get install ${need[*]}" >&2; exit 1; }
    echo "== vm-test: installing ${need[*]}"
    # Retried: Debian mirrors answer errors while they sync (as in scripts/setup.sh).
    for i in 1 2 3 4; do
        if apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
            break
        fi
        [[ $i -lt 4 ]] || { echo "vm-test: apt-get could not install ${need[*]}" >&2; exit 1; }
        echo "apt failed (mirror sync?), retrying in $((i * 20)) s" >&2
        sleep $((i * 20))
    done
fi
[[ $(id -u) -eq 0 ]] || { echo "vm-test: run as root (debootstrap builds the image)" >&2; exit 1; }

dir=target/vm/$arch
# The image: rebuilt when the recipe (tests/vm/build-image.sh, tests/vm/rootfs) changes.
key=$(cat tests/vm/build-image.sh $(find tests/vm/rootfs -type f | sort) | sha256sum | cut -c1-16)
if [[ ! -f $dir/rootfs.img || $(cat "$dir/key" 2>/dev/null) != "$key" ]]; then
    echo "== vm-test: building the $arch image (debootstrap)"
    SECONDS=0
    rm -f "$dir/key"
    tests/vm/build-image.sh "$arch" "$dir"
    echo "$key" >"$dir/key"
    echo "image built in ${SECONDS} s"
else
    echo "== vm-test: the $arch image is up to date ($dir)"
fi

# The binary a board gets, without the trainer's side.
host_bin=target/debug/poolwatch
if [[ $arch == x86_64 ]]; then
    if [[ -z ${POOLWATCH_BIN:-} ]]; then
        cargo build -q --features camera --bin poolwatch
        POOLWATCH_BIN=$host_bin
    fi
else
    [[ -x $host_bin ]] || cargo build -q --bin poolwatch
    if [[ -z ${POOLWATCH_BIN:-} ]]; then
        cross/build.sh aarch64-unknown-linux-gnu build --profile cross-test --features camera --bin poolwatch
        POOLWATCH_BIN=target/cross/aarch64-unknown-linux-gnu/cross-test/poolwatch
    fi
fi

# What the VM's second disk carries: the binary and the shipped unit and config (installed in the VM
# with README's commands), and the camera's frames (the synthetic venue the embedded model knows).
run=$dir/run
rm -rf "$run" && mkdir -p "$run/payload/systemd" "$run/payload/vm" "$run/frames"
cp "$POOLWATCH_BIN" "$run/payload/poolwatch"
cp systemd/poolwatch.service systemd/poolwatch.toml systemd/poolwatch.sysusers "$run/payload/systemd/"
cp tests/vm/guest/poolfeed.sh tests/vm/guest/poolfeed.service "$run/payload/vm/"
"$host_bin" synth --out "$run/frames" --frames 60 --interval 0.1 --size 640x480 --swimmers 2..3 --seed 7 --format png >/dev/null
$py tests/vm/yuyv.py "$run/payload/vm/frames.yuyv" "$run/frames"/*.png
mkfs.ext4 -q -F -L payload -d "$run/payload" "$run/payload.img" 256M
echo "== vm-test: $arch VM (qemu, software emulation)"
$py tests/vm/vmtest.py --arch "$arch" --image "$dir" --payload "$run/payload.img" --out "$run" ${VMTEST_ARGS:-} || {
    echo "vm-test: failed; logs in $run (console.log, shell.log, journal.log, mqtt.log, serial.log)" >&2
    exit 1
}

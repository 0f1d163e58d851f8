#!/usr/bin/env bash
# Builds the test VM's system: a minimal Debian 12 with systemd as PID 1, Debian's kernel (which carries
# the vivid virtual camera driver), mosquitto and v4l-utils, made with debootstrap from the Debian
# mirror this machine's apt uses. Writes, in OUT: rootfs.img (ext4), vmlinuz, initrd.img. Run as root.
#
#   tests/vm/build-image.sh ARCH OUT      ARCH: x86_64 | aarch64
#
# Nothing of poolwatch is in the image: scripts/vm-test.sh brings it on a second disk and installs it as
# README says. The image is the board's OS: an empty Debian with a broker and a camera driver.
set -euo pipefail
arch=${1:?usage: build-image.sh ARCH OUT}
out=${2:?usage: build-image.sh ARCH OUT}
here=$(cd "$(dirname "$0")" && pwd)
case $arch in
    x86_64) deb=amd64; kernel=linux-image-amd64 ;;
    aarch64) deb=arm64; kernel=linux-image-arm64 ;;
    *) echo "build-image: unknown arch $arch (x86_64 or aarch64)" >&2; exit 2 ;;
esac
[[ $(id -u) -eq 0 ]] || { echo "build-image: debootstrap needs root" >&2; exit 1; }
command -v debootstrap >/dev/null || { echo "build-image: debootstrap is missing (apt-get install debootstrap)" >&2; exit 1; }
# The mirror: the one this machine's apt is set up with (deb822 or one-line sources).
mirror=$(grep -hsE '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)
[[ -n $mirror ]] || mirror=$(grep -hsE '^deb ' /etc/apt/sources.list /etc/apt/sources.list.d/*.list | awk '{print $2}' | grep -v security | head -1 || true)
[[ -n $mirror ]] || { echo "build-image: no Debian mirror in /etc/apt/sources.list*" >&2; exit 1; }
work=$out/rootfs
rm -rf "$work" && mkdir -p "$out"
pkgs=systemd-sysv,udev,kmod,iproute2,$kernel,initramfs-tools,mosquitto,v4l-utils,procps,ca-certificates
foreign=()
if [[ $deb == arm64 && $(dpkg --print-architecture) != arm64 ]]; then
    foreign=(--foreign)
fi
echo "== debootstrap bookworm $deb ($mirror)"
# Tried twice: a mirror in the middle of a sync fails a download now and then.
for try in 1 2; do
    rm -rf "$work"
    if debootstrap --variant=minbase --arch="$deb" "${foreign[@]}" --include="$pkgs" bookworm "$work" "$mirror" >"$out/debootstrap.log" 2>&1; then
        break
    fi
    tail -20 "$out/debootstrap.log" >&2
    [[ $try -lt 2 ]] || { echo "build-image: debootstrap failed (log: $out/debootstrap.log)" >&2; exit 1; }
    echo "build-image: debootstrap failed; trying once more in 30 s" >&2
    sleep 30
done
if [[ ${#foreign[@]} -gt 0 ]]; then
    # The second stage runs the arm64 package scripts under qemu-user (binfmt_misc).
    "$here/binfmt.sh" aarch64
    cp /usr/bin/qemu-aarch64-static "$work/usr/bin/"
    chroot "$work" /debootstrap/debootstrap --second-stage >>"$out/debootstrap.log" 2>&1 || {
        tail -20 "$out/debootstrap.log" >&2; echo "build-image: second stage failed" >&2; exit 1; }
    rm -f "$work/usr/bin/qemu-aarch64-static"
fi
echo "== configure"
cp -a "$here/rootfs/." "$work/"
echo poolwatch-vm >"$work/etc/hostname"
printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\n' >"$work/etc/fstab"
# root without a password on the console (a test machine with no network but the forwarded ports).
chroot "$work" passwd -d root >/dev/null
chroot "$work" systemctl enable systemd-networkd vm-shell.service >/dev/null 2>&1
# No clock sync, no timers that would reach out or load the slow machine.
chroot "$work" systemctl mask systemd-timesyncd.service apt-daily.timer apt-daily-upgrade.timer \
    e2scrub_all.timer fstrim.timer man-db.timer >/dev/null 2>&1 || true
rm -rf "$work/var/cache/apt/archives/"*.deb "$work/var/lib/apt/lists/"*
kver=$(basename "$(ls "$work"/boot/vmlinuz-* | sort -V | tail -1)" | sed 's/^vmlinuz-//')
cp "$work/boot/vmlinuz-$kver" "$out/vmlinuz"
cp "$work/boot/initrd.img-$kver" "$out/initrd.img"
echo "== ext4 image"
rm -f "$out/rootfs.img"
mkfs.ext4 -q -F -L root -d "$work" "$out/rootfs.img" 2G
rm -rf "$work"
echo "image: $out/rootfs.img ($(du -h "$out/rootfs.img" | cut -f1) used), kernel $kver"

#!/bin/sh
# Lets this machine run ARCH binaries in a chroot (debootstrap's second stage of an arm64 image):
# mounts binfmt_misc if it is not, and registers qemu-user-static for ARCH unless already there, with
# flag F (the interpreter is opened now, so the chroot needs no copy of it). Run as root.
#
#   tests/vm/binfmt.sh aarch64
set -eu
arch=${1:?usage: binfmt.sh ARCH}
dir=/proc/sys/fs/binfmt_misc
[ -e "$dir/register" ] || mount -t binfmt_misc binfmt_misc "$dir"
[ -e "$dir/qemu-$arch" ] && exit 0
conf=/usr/lib/binfmt.d/qemu-$arch.conf
[ -r "$conf" ] || { echo "binfmt: no $conf (apt-get install qemu-user-static)" >&2; exit 1; }
# Debian's line, with its interpreter replaced by the static one and the flags by F.
line=$(grep -v '^#' "$conf" | head -1)
magic=$(echo "$line" | cut -d: -f2-6)
echo ":${magic}:/usr/bin/qemu-$arch-static:F" >"$dir/register"
echo "binfmt: qemu-$arch-static registered for $arch binaries"

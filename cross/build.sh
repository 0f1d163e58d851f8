#!/usr/bin/env bash
# Cross-compiles poolwatch with Debian's packaged Rust (rustc-web/cargo-web, /usr/bin) for an ARM Linux board.
#
#   cross/build.sh TARGET                          cargo build --profile device --bin poolwatch
#   cross/build.sh TARGET --features camera        the same, with extra cargo arguments
#   cross/build.sh TARGET SUBCOMMAND [ARGS...]     cargo SUBCOMMAND --target TARGET ARGS...
#       e.g. cross/build.sh aarch64-unknown-linux-gnu build --profile device --features camera
#            cross/build.sh aarch64-unknown-linux-gnu test --release --lib -- --test-threads 1
#
# TARGET: aarch64-unknown-linux-gnu (Pi 4/5, Jetson, 64-bit ARM) or armv7-unknown-linux-gnueabihf (Pi 2/3, 32-bit).
# Test and run executables go through qemu-user-static (CARGO_TARGET_<T>_RUNNER), so `test` and `run` work here.
# Environment: CARGO_TARGET_DIR (default target/cross), DEBIAN_CARGO (default /usr/bin/cargo),
# DEBIAN_RUSTC (default /usr/bin/rustc). Missing packages: cross/install-deps.sh TARGET.
set -euo pipefail

die() { echo "cross/build.sh: error: $*" >&2; exit 1; }

[[ $# -ge 1 && $1 != -* ]] || die "usage: cross/build.sh TARGET [SUBCOMMAND] [CARGO ARGS...] (TARGET: aarch64-unknown-linux-gnu or armv7-unknown-linux-gnueabihf)"
target=$1
shift

case "$target" in
    aarch64-unknown-linux-gnu)
        # qemu emulates a Raspberry Pi 5's Cortex-A76. Its default CPU ("max") has SVE2 with 512-bit vectors,
        # which tract then picks and qemu emulates some 8x slower than NEON (3.5-4.3 s a frame against 0.47 s):
        # the daemon's tests then saw too few frames to confirm a track.
        gnu=aarch64-linux-gnu; deb_arch=arm64; qemu=qemu-aarch64-static; qemu_cpu="-cpu cortex-a76"; ld_so=ld-linux-aarch64.so.1 ;;
    armv7-unknown-linux-gnueabihf)
        gnu=arm-linux-gnueabihf; deb_arch=armhf; qemu=qemu-arm-static; ld_so=ld-linux-armhf.so.3 ;;
    *)
        die "unsupported target '$target' (supported: aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf)" ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

cargo_bin=${DEBIAN_CARGO:-/usr/bin/cargo}
rustc_bin=${DEBIAN_RUSTC:-/usr/bin/rustc}
pkgs="rustc-web cargo-web libstd-rust-web-dev:$deb_arch gcc-$gnu libc6-dev:$deb_arch qemu-user-static libclang-dev"
hint="run 'sudo cross/install-deps.sh $target' (apt-get install $pkgs)"

# Preflight: Debian's toolchain, its std for the target, the cross C toolchain and the target's libc.
[[ -x $cargo_bin && -x $rustc_bin ]] || die "Debian's Rust toolchain ($cargo_bin, $rustc_bin) is missing; $hint"
sysroot="$("$rustc_bin" --print sysroot)" || die "$rustc_bin does not run; $hint"
# The std comes from the package, or from the private sysroot cross/install-deps.sh unpacks when the target's
# Debian index is unavailable (its "cross-only" route).
private_sysroot="${CROSS_SYSROOT_BASE:-/usr/local/lib/poolwatch-cross}/rust-$("$rustc_bin" --version | cut -d' ' -f2)"
extra_rustflags=()
if ! compgen -G "$sysroot/lib/rustlib/$target/lib/libstd-*.rlib" >/dev/null; then
    compgen -G "$private_sysroot/lib/rustlib/$target/lib/libstd-*.rlib" >/dev/null \
        || die "no Rust std for $target under $sysroot/lib/rustlib (package libstd-rust-web-dev:$deb_arch) nor $private_sysroot; $hint"
    extra_rustflags=("--sysroot=$private_sysroot")
fi
command -v "$gnu-gcc" >/dev/null || die "the cross C compiler $gnu-gcc is missing (package gcc-$gnu); $hint"
[[ -e /usr/lib/$gnu/libc.so || -e /usr/$gnu/lib/libc.so ]] \
    || die "the $deb_arch C library is missing (package libc6-dev:$deb_arch); $hint"

# Subcommand: the first argument when it is not an option, else `build --profile device --bin poolwatch`.
if [[ $# -ge 1 && $1 != -* ]]; then
    sub=$1
    shift
else
    sub=build
    set -- --profile device --bin poolwatch "$@"
fi
case "$sub" in
    test | run | bench)
        command -v "$qemu" >/dev/null || die "$qemu is missing (package qemu-user-static), needed to run $target binaries; $hint" ;;
esac

T=${target//-/_}        # aarch64_unknown_linux_gnu
TU=${T^^}               # AARCH64_UNKNOWN_LINUX_GNU

export RUSTC="$rustc_bin"
[[ -x ${rustc_bin%/*}/rustdoc ]] && export RUSTDOC="${rustc_bin%/*}/rustdoc"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target/cross}"
# Debian's cargo uses ~/.cargo like rustup's, so the registry cache is shared; CARGO_HOME is left alone.

# Linker, C compiler (tract-linalg assembles its kernels with cc) and archiver for the target.
export "CARGO_TARGET_${TU}_LINKER=${gnu}-gcc"
export "CC_${T}=${gnu}-gcc"
export "AR_${T}=${gnu}-ar"
command -v "${gnu}-g++" >/dev/null && export "CXX_${T}=${gnu}-g++"
# Target-only flags: the private sysroot when the std lives there (build scripts and proc macros, built for the
# host, keep the default one).
if [[ ${#extra_rustflags[@]} -gt 0 ]]; then
    flags_var="CARGO_TARGET_${TU}_RUSTFLAGS"
    export "$flags_var=${!flags_var:+${!flags_var} }${extra_rustflags[*]}"
fi
# Test binaries, `cargo run` and doctests run under qemu. Its -L prefix must hold the dynamic loader of the same
# glibc as libc.so.6: with the multiarch libc6:<arch> installed, `-L /usr/<triplet>` would pair the cross
# toolchain's loader with the multiarch libc.so.6 (found in /lib/<triplet> behind the prefix) and any thread start
# (pthread_create) then hangs, so the prefix is / whenever the multiarch loader is there.
if [[ -e /lib/$ld_so ]]; then qemu_prefix=/; else qemu_prefix=/usr/$gnu; fi
runner_var="CARGO_TARGET_${TU}_RUNNER"
export "$runner_var=${!runner_var:-$qemu ${qemu_cpu:-}${qemu_cpu:+ }-L $qemu_prefix}"
# The integration tests start the built poolwatch themselves, through this (tests/common/mod.rs).
export POOLWATCH_TEST_RUNNER="${POOLWATCH_TEST_RUNNER:-${!runner_var}}"
# bindgen (v4l2-sys-mit, feature `camera`): the target's kernel and libc headers, not the host's. The cross
# packages put them under /usr/<triplet>/include; when apt satisfied the cross compiler with the multiarch
# libc6-dev:<arch> instead (then that directory does not exist), they are in /usr/include/<triplet> and
# /usr/include, where clang looks by itself for the target bindgen passes it.
bindgen_var="BINDGEN_EXTRA_CLANG_ARGS_${T}"
if [[ -d /usr/$gnu/include ]]; then bindgen_sysroot="--sysroot=/usr/$gnu"; else bindgen_sysroot=""; fi
export "$bindgen_var=${!bindgen_var:-$bindgen_sysroot}"
# pkg-config, should a dependency use it: only the target's multiarch .pc files.
export PKG_CONFIG_ALLOW_CROSS=1
pc_var="PKG_CONFIG_LIBDIR_${T}"
export "$pc_var=${!pc_var:-/usr/lib/$gnu/pkgconfig:/usr/share/pkgconfig}"

echo "+ $cargo_bin $sub --target $target $* (rustc $("$rustc_bin" --version | cut -d' ' -f2), target dir $CARGO_TARGET_DIR)" >&2
exec "$cargo_bin" "$sub" --target "$target" "$@"

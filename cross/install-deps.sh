#!/usr/bin/env bash
# Installs what cross/build.sh needs on Debian 12 (bookworm), x86_64: Debian's Rust (rustc-web/cargo-web) with
# its std for each target, the cross C toolchain and libc, qemu-user-static (tests under emulation) and libclang
# (bindgen, feature `camera`); libc6/libgcc-s1 of the target arch let qemu run the binaries with `-L /`.
# Idempotent: does nothing when every package is installed. Run as root (or via sudo).
#
#   cross/install-deps.sh [TARGET...]     default: aarch64-unknown-linux-gnu
#
# `apt-get update` is retried (APT_RETRIES times, default 5, APT_RETRY_SLEEP seconds apart, default 30, doubling):
# Debian mirrors answer "File has unexpected size ... Mirror sync in progress?" while they sync. If a foreign
# architecture this script added still has no index after the last try, it is removed again and the indexes are
# refreshed, so that one broken index does not leave the others (e.g. arm64's) stale; the script then installs
# without the foreign architecture ("cross-only"): the cross C toolchain with its own libc (/usr/<triplet>, an
# amd64 package) and the target's Rust std unpacked from the exact libstd-rust-web-dev .deb of the installed
# rustc-web (fetched from the same pool as the host's) into $CROSS_SYSROOT_BASE/rust-VERSION, a private sysroot
# that cross/build.sh finds by itself. CROSS_ONLY=1 takes that route directly.
set -euo pipefail

die() { echo "cross/install-deps.sh: error: $*" >&2; exit 1; }

[[ $# -gt 0 ]] || set -- aarch64-unknown-linux-gnu
retries=${APT_RETRIES:-5}
pause=${APT_RETRY_SLEEP:-30}

sudo=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || die "run as root (apt-get and dpkg --add-architecture need it)"
    sudo=(sudo)
fi
apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -o Acquire::Retries=3)

installed() { # PACKAGE[:ARCH]...: all installed?
    local p
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null) == installed ]] || return 1
    done
}

update() { # apt-get update until every index downloads; 1 if it never does
    local i wait=$pause
    for ((i = 1; i <= retries; i++)); do
        if "${apt[@]}" update; then
            return 0
        fi
        ((i < retries)) || break
        echo "cross/install-deps.sh: apt-get update failed (try $i of $retries), retrying in ${wait}s" >&2
        sleep "$wait"
        wait=$((wait * 2))
    done
    return 1
}

# Packages per target; the Rust std must be the exact version of the installed rustc-web.
host_pkgs=(rustc-web cargo-web qemu-user-static libclang-dev)
declare -A arch_of=([aarch64-unknown-linux-gnu]=arm64 [armv7-unknown-linux-gnueabihf]=armhf)
declare -A gnu_of=([aarch64-unknown-linux-gnu]=aarch64-linux-gnu [armv7-unknown-linux-gnueabihf]=arm-linux-gnueabihf)
for t in "$@"; do
    [[ -n ${arch_of[$t]:-} ]] || die "unsupported target '$t' (supported: ${!arch_of[*]})"
done

wanted=("${host_pkgs[@]}")
for t in "$@"; do
    wanted+=("libstd-rust-web-dev:${arch_of[$t]}" "gcc-${gnu_of[$t]}" "libc6-dev:${arch_of[$t]}" "libgcc-s1:${arch_of[$t]}")
done
if installed "${wanted[@]}"; then
    echo "cross/install-deps.sh: all installed (${wanted[*]})"
    exit 0
fi
# Or installed by an earlier cross-only run (below).
if installed "${host_pkgs[@]}" cargo-web; then
    done_sysroot="${CROSS_SYSROOT_BASE:-/usr/local/lib/poolwatch-cross}/rust-$(dpkg-query -W -f='${Version}' rustc-web | sed 's/+.*//')"
    all=1
    for t in "$@"; do
        a=${arch_of[$t]}
        installed "libstd-rust-web-dev:$a" "gcc-${gnu_of[$t]}" "libc6-dev:$a" \
            || { compgen -G "$done_sysroot/lib/rustlib/$t/lib/libstd-*.rlib" >/dev/null \
                && installed "gcc-${gnu_of[$t]}" "libc6-dev-$a-cross"; } || all=0
    done
    if [[ $all == 1 ]]; then
        echo "cross/install-deps.sh: all installed (cross-only std in $done_sysroot where no package)"
        exit 0
    fi
fi

# The route without foreign architectures: amd64 packages for the cross C toolchain and qemu, the target's std
# unpacked from its .deb into a private sysroot (lib/rustlib/TARGET/lib) next to a link to the host's std.
cross_only() {
    installed rustc-web cargo-web || "${apt[@]}" install -y --no-install-recommends rustc-web cargo-web
    local version t pkgs=(qemu-user-static libclang-dev curl ca-certificates)
    version=$(dpkg-query -W -f='${Version}' rustc-web)
    for t in "$@"; do pkgs+=("gcc-${gnu_of[$t]}" "libc6-dev-${arch_of[$t]}-cross"); done
    "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}"
    local base=${CROSS_SYSROOT_BASE:-/usr/local/lib/poolwatch-cross}
    local sysroot="$base/rust-${version%%+*}" host_uri tmp
    host_uri=$(apt-get download --print-uris "libstd-rust-web-dev:$(dpkg --print-architecture)=$version" | head -1 | cut -d"'" -f2)
    [[ $host_uri == http* ]] || die "cannot find where libstd-rust-web-dev $version comes from (apt-get download --print-uris)"
    tmp=$(mktemp -d)
    for t in "$@"; do
        local uri=${host_uri%_*.deb}_${arch_of[$t]}.deb
        echo "cross/install-deps.sh: fetching $uri" >&2
        curl -fsSL --retry 3 -o "$tmp/std.deb" "$uri" || die "cannot download $uri"
        dpkg-deb -x "$tmp/std.deb" "$tmp/x"
        "${sudo[@]}" mkdir -p "$sysroot/lib/rustlib"
        "${sudo[@]}" rm -rf "$sysroot/lib/rustlib/$t"
        "${sudo[@]}" cp -a "$tmp/x/usr/lib/rustlib/$t" "$sysroot/lib/rustlib/$t"
    done
    rm -rf "$tmp"
    local host
    host=$(/usr/bin/rustc -vV | sed -n 's/^host: //p')
    "${sudo[@]}" ln -sfn "/usr/lib/rustlib/$host" "$sysroot/lib/rustlib/$host"
    echo "cross/install-deps.sh: done for $* (cross-only: Rust std in $sysroot)"
}

added=()
for t in "$@"; do
    a=${arch_of[$t]}
    if [[ $a != "$(dpkg --print-architecture)" ]] && ! dpkg --print-foreign-architectures | grep -qx "$a"; then
        "${sudo[@]}" dpkg --add-architecture "$a"
        added+=("$a")
    fi
done

if [[ ${CROSS_ONLY:-0} == 1 ]] || ! update; then
    if [[ ${CROSS_ONLY:-0} != 1 ]]; then
        [[ ${#added[@]} -gt 0 ]] || die "apt-get update kept failing (mirror sync?); try again later"
        for a in "${added[@]}"; do "${sudo[@]}" dpkg --remove-architecture "$a"; done
        echo "cross/install-deps.sh: apt-get update kept failing (mirror sync?); removed the architecture(s) ${added[*]} again and installing cross-only" >&2
    else
        for a in "${added[@]}"; do "${sudo[@]}" dpkg --remove-architecture "$a"; done
    fi
    update || die "apt-get update kept failing even without ${added[*]:-a foreign architecture} (mirror sync?); try again later"
    cross_only "$@"
    exit 0
fi

# rustc-web first, then each std pinned to its version (Multi-Arch: same demands one version for all arches;
# an index missing the security update would otherwise offer an older std that cannot be installed).
installed rustc-web cargo-web || "${apt[@]}" install -y --no-install-recommends rustc-web cargo-web
version=$(dpkg-query -W -f='${Version}' rustc-web)
pkgs=(qemu-user-static libclang-dev)
arches=()
for t in "$@"; do
    a=${arch_of[$t]}
    arches+=("$a")
    pkgs+=("libstd-rust-web-dev:$a=$version" "gcc-${gnu_of[$t]}" "libc6-dev:$a" "libgcc-s1:$a")
done
# A foreign index that downloads but lags the host's (Multi-Arch: same packages such as libc6-dev need the
# host's exact versions) makes this fail: the cross-only route does not need those packages.
if ! "${apt[@]}" install -y --no-install-recommends "${pkgs[@]}"; then
    echo "cross/install-deps.sh: apt-get install failed (does the mirror carry libstd-rust-web-dev $version and the host's libc versions for ${arches[*]}?); installing cross-only" >&2
    cross_only "$@"
    exit 0
fi
echo "cross/install-deps.sh: done for $*"

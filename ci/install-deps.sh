#!/usr/bin/env bash
# Installs the Debian 12 packages Home OS needs to build, boot and test. Idempotent: it asks dpkg
# first and calls apt-get only for what is missing, as root or through sudo.
set -euo pipefail

# The test oracles are here too, because a test whose oracle is missing fails: zstd and libzstd
# (the zstd decoder's references), cpio (the initramfs tool's), diffutils' cmp (byte-for-byte
# comparisons), grub-common's ascii.h (the framebuffer screenshot's font).
PACKAGES=(
    make python3 clang lld llvm libclang-rt-14-dev g++
    grub-pc-bin grub-common xorriso mtools
    qemu-system-x86
    libgtest-dev libbenchmark-dev libzstd-dev zstd cpio diffutils
    musl-tools busybox-static e2fsprogs dosfstools
)

missing=()
for p in "${PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$p")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
else
    echo "install-deps: missing packages ${missing[*]} and neither root nor sudo is available" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"

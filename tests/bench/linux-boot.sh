#!/usr/bin/env bash
# Linux next to Home OS for `make bench`, in the same QEMU configuration (TCG, q35, 512 MiB, one
# CPU). Debian's cloud kernel is fetched as a .deb and unpacked into $BUILD/linux, never installed.
#
#  1. Boot time: Linux from kernel entry to running /init ("Run /init as init process").
#  2. Initramfs unpacking, side by side: one large cpio (Linux's own drivers/ and fs/ modules
#     from the .deb, about 60 MB, plus our initramfs tree and a /init), packed the ordinary way
#     (`find . | cpio -o -H newc | zstd -19`, so no content size), is booted as Linux's initrd and
#     as our initramfs. Linux reports populate_rootfs (zstd decode plus unpacking into tmpfs) with
#     initcall_debug and initramfs_async=0; we log "initramfs: ... (zstd N us, cpio N us)".
# HOMEOS_KERNEL=path boots another kernel image on our side (for before/after comparisons).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
QEMU=${QEMU:-qemu-system-x86_64}
dir="$BUILD/linux"
mkdir -p "$dir"
if [ ! -f "$dir/vmlinuz" ] || [ ! -d "$dir/payload" ]; then
    package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$package" ]; then
        echo "BENCH linux_boot_to_init_ms unavailable (no linux-image-cloud-amd64 in apt; run apt-get update)"
        exit 0
    fi
    (cd "$dir" && apt-get download "$package" >/dev/null 2>&1) || { echo "BENCH linux_boot_to_init_ms unavailable (download failed)"; exit 0; }
    rm -rf "$dir/deb" "$dir/payload" && dpkg-deb -x "$dir"/"$package"_*.deb "$dir/deb"
    cp "$dir"/deb/boot/vmlinuz-* "$dir/vmlinuz"
    echo "${package#linux-image-}" > "$dir/version"
    # The initramfs payload: real module binaries, as a distribution's initramfs holds.
    version_dir=$(ls -d "$dir"/deb/lib/modules/*)
    mkdir -p "$dir/payload/lib/modules/$(basename "$version_dir")/kernel"
    mv "$version_dir/kernel/drivers" "$version_dir/kernel/fs" "$dir/payload/lib/modules/$(basename "$version_dir")/kernel/"
    rm -rf "$dir/deb" "$dir"/*.deb
fi
musl-gcc -static -O2 -o "$dir/init" tests/bench/linux_init.c
QEMU_COMMON=(-accel tcg -M q35 -m 512M -smp 1 -no-reboot -display none -serial stdio -monitor none)

# 1. Boot to /init with a minimal initramfs.
rm -rf "$dir/root" && mkdir -p "$dir/root" && cp "$dir/init" "$dir/root/init"
(cd "$dir/root" && find . | cpio -o -H newc --quiet > ../initramfs.cpio)
log="$dir/boot.log"
timeout 600 "$QEMU" "${QEMU_COMMON[@]}" -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.cpio" \
    -append "console=ttyS0 loglevel=7 panic=-1" < /dev/null > "$log" 2>&1 || true
run_init=$(grep -m1 -oP '^\[\s*\K[0-9.]+(?=\] Run /init as init process)' "$log" || true)
if [ -z "$run_init" ] || ! grep -q "linux-bench: init reached" "$log"; then
    echo "BENCH linux_boot_to_init_ms unavailable (Linux did not reach /init; see $log)"
else
    echo "BENCH linux_boot_to_init_ms $(awk -v s="$run_init" 'BEGIN { printf "%.3f", s * 1000 }') ms (Debian Linux $(cat "$dir/version" 2>/dev/null || echo cloud), same QEMU, kernel entry to /init)"
fi

# 2. The same large compressed cpio, unpacked by Linux and by us.
big="$dir/big-initramfs.cpio.zst"
if [ ! -f "$big" ]; then
    rm -rf "$dir/big" && mkdir -p "$dir/big"
    cp -a "$dir/payload/." "$dir/big/"
    [ -f "$BUILD/initramfs.cpio.zst" ] && (cd "$dir/big" && zstd -dc "../../initramfs.cpio.zst" | cpio -idm --quiet)
    cp "$dir/init" "$dir/big/init"
    (cd "$dir/big" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | zstd -q -19 -T2 > "../big-initramfs.cpio.zst.tmp")
    mv "$big.tmp" "$big"
    rm -rf "$dir/big"
fi
archive_bytes=$(zstd -dc "$big" | wc -c)
archive_mb=$(awk -v b="$archive_bytes" 'BEGIN { printf "%.1f", b / 1e6 }')
compressed_mb=$(awk -v b="$(stat -c %s "$big")" 'BEGIN { printf "%.1f", b / 1e6 }')
echo "BENCH initramfs_archive_MB $archive_mb MB (from $compressed_mb MB: find | cpio -H newc | zstd -19, no content size)"

sized="$dir/big-initramfs-sized.cpio.zst"
if [ ! -f "$sized" ]; then
    zstd -dc "$big" | zstd -q -19 -T2 --content-size --stream-size="$archive_bytes" > "$sized.tmp"
    mv "$sized.tmp" "$sized"
fi
# Wall-clock TCG time moves with the host's load, so each side also runs under -icount shift=0:
# one guest instruction is one virtual nanosecond, which makes those numbers independent of the
# load (they count guest instructions, not TCG's cost per instruction).
run_mode() { # MODE [QEMU options...]
    local mode=$1
    shift
    local extra=("$@")
    log="$dir/big-linux-$mode.log"
    timeout 600 "$QEMU" "${QEMU_COMMON[@]}" "${extra[@]}" -kernel "$dir/vmlinuz" -initrd "$big" \
        -append "console=ttyS0 loglevel=7 initcall_debug ignore_loglevel initramfs_async=0 panic=-1" < /dev/null > "$log" 2>&1 || true
    linux_us=$(grep -m1 -oP 'initcall populate_rootfs\+\S+ returned 0 after \K[0-9]+(?= usecs)' "$log" || true)
    if [ -z "$linux_us" ]; then
        # Without initcall_debug output: the time between Linux's own messages around the unpack.
        from=$(grep -m1 -oP '^\[\s*\K[0-9.]+(?=\] Trying to unpack rootfs image as initramfs)' "$log" || true)
        to=$(grep -m1 -oP '^\[\s*\K[0-9.]+(?=\] Freeing initrd memory)' "$log" || true)
        [ -n "$from" ] && [ -n "$to" ] && linux_us=$(awk -v a="$from" -v b="$to" 'BEGIN { printf "%d", (b - a) * 1e6 }')
    fi
    if [ -z "$linux_us" ] || ! grep -q "linux-bench: init reached" "$log"; then
        echo "BENCH initramfs_linux_unpack_${mode}_ms unavailable (no populate_rootfs time or no /init; see $log)"
    else
        echo "BENCH initramfs_linux_unpack_${mode}_ms $(awk -v u="$linux_us" 'BEGIN { printf "%.1f", u / 1000 }') ms ($(awk -v u="$linux_us" -v b="$archive_bytes" 'BEGIN { printf "%.0f", b / u }') MB/s: Linux populate_rootfs, zstd decode + cpio into tmpfs)"
    fi

    # Our side, through the harness's Machine (it waits for the line with a deadline and stops QEMU).
    # Twice: the pipeline archive as is, and the same cpio recompressed with its content size, which
    # our decoder can size in one allocation (without it, the output grows and is copied).
    for variant in "$big:no content size" "$sized:content size"; do
        image=${variant%%:*}
        label=${variant#*:}
        result=$(HOMEOS_BENCH_IMAGE="$image" HOMEOS_BENCH_EXTRA="${extra[*]}" HOMEOS_BENCH_MODE="$mode" "${PYTHON:-python3}" - <<'PY'
import os, re, sys
sys.path.insert(0, "tests/qemu")
import harness
if os.environ.get("HOMEOS_KERNEL"):
    harness.KERNEL = os.path.abspath(os.environ["HOMEOS_KERNEL"])
image = os.environ["HOMEOS_BENCH_IMAGE"]
extra = tuple(os.environ["HOMEOS_BENCH_EXTRA"].split())
name = "-".join(["bench", os.environ["HOMEOS_BENCH_MODE"], os.path.basename(image), os.path.basename(harness.KERNEL)]).replace(".", "-")
m = harness.Machine(name, "loglevel=6", extra=extra, initramfs=image)
try:
    found = m.wait_for(r"initramfs: .*\(zstd (\d+) us, cpio (\d+) us\)|initramfs: not usable.*|PANIC.*", 600)
    print(found.group(1) + " " + found.group(2) if found and found.group(1) else "unavailable " + (found.group(0) if found else "timeout"))
finally:
    m.kill()
PY
    )
        case "$result" in
        unavailable*) echo "BENCH initramfs_homeos_unpack_${mode}_ms unavailable ($label: ${result#unavailable })" ;;
        *) awk -v z="${result% *}" -v c="${result#* }" -v b="$archive_bytes" -v l="$label" -v m="$mode" 'BEGIN {
            printf "BENCH initramfs_homeos_unpack_" m "_ms %.1f ms (%.0f MB/s, %s: zstd decode %.1f ms = %.0f MB/s, cpio into RamTree %.1f ms)\n",
                (z + c) / 1000, b / (z + c), l, z / 1000, b / z, c / 1000 }' ;;
        esac
    done
}
run_mode tcg
run_mode icount -icount shift=0

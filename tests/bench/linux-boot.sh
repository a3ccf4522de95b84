#!/usr/bin/env bash
# Boot-time comparison for `make bench`: Debian's Linux kernel (the cloud flavour, fetched as a
# .deb and unpacked into $BUILD, never installed) booted in the same QEMU configuration as Home OS,
# reporting the time from kernel entry to running /init ("Run /init as init process").
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
dir="$BUILD/linux"
mkdir -p "$dir"
if [ ! -f "$dir/vmlinuz" ]; then
    package=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-/{print $2; exit}')
    if [ -z "$package" ]; then
        echo "BENCH linux_boot_to_init_ms unavailable (no linux-image-cloud-amd64 in apt; run apt-get update)"
        exit 0
    fi
    (cd "$dir" && apt-get download "$package" >/dev/null 2>&1) || { echo "BENCH linux_boot_to_init_ms unavailable (download failed)"; exit 0; }
    rm -rf "$dir/deb" && dpkg-deb -x "$dir"/"$package"_*.deb "$dir/deb"
    cp "$dir"/deb/boot/vmlinuz-* "$dir/vmlinuz"
    echo "${package#linux-image-}" > "$dir/version"
    rm -rf "$dir/deb" "$dir"/*.deb
fi
musl-gcc -static -O2 -o "$dir/init" tests/bench/linux_init.c
rm -rf "$dir/root" && mkdir -p "$dir/root" && cp "$dir/init" "$dir/root/init"
(cd "$dir/root" && find . | cpio -o -H newc --quiet > ../initramfs.cpio)
log="$dir/boot.log"
timeout 600 qemu-system-x86_64 -accel tcg -M q35 -m 512M -smp 1 -no-reboot -display none -serial stdio -monitor none \
    -kernel "$dir/vmlinuz" -initrd "$dir/initramfs.cpio" -append "console=ttyS0 loglevel=7 panic=-1" < /dev/null > "$log" 2>&1 || true
run_init=$(grep -m1 -oP '^\[\s*\K[0-9.]+(?=\] Run /init as init process)' "$log" || true)
if [ -z "$run_init" ] || ! grep -q "linux-bench: init reached" "$log"; then
    echo "BENCH linux_boot_to_init_ms unavailable (Linux did not reach /init; see $log)"
    exit 0
fi
echo "BENCH linux_boot_to_init_ms $(awk -v s="$run_init" 'BEGIN { printf "%.3f", s * 1000 }') ms (Debian Linux $(cat "$dir/version" 2>/dev/null || echo cloud), same QEMU, kernel entry to /init)"

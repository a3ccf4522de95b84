#!/usr/bin/env bash
# mkiso.sh KERNEL ISO "CMDLINE" [MODULE...]: a GRUB rescue ISO that boots KERNEL through
# multiboot2 with CMDLINE, without waiting at a menu.
set -euo pipefail
kernel=$1; iso=$2; cmdline=${3:-}
shift 3 || true
staging=$(mktemp -d "${TMPDIR:-/tmp}/homeos-iso.XXXXXX")
trap 'rm -rf "$staging"' EXIT
mkdir -p "$staging/boot/grub"
cp "$kernel" "$staging/boot/homeos.elf"
{
    echo "set timeout=0"
    echo "set default=0"
    echo "serial --unit=0 --speed=115200"
    echo "terminal_input serial console"
    echo "terminal_output serial console"
    echo "menuentry \"Home OS\" {"
    echo "    multiboot2 /boot/homeos.elf $cmdline"
    for module in "$@"; do
        name=$(basename "$module")
        cp "$module" "$staging/boot/$name"
        echo "    module2 /boot/$name $name"
    done
    echo "    boot"
    echo "}"
} > "$staging/boot/grub/grub.cfg"
mkdir -p "$(dirname "$iso")"
grub-mkrescue -o "$iso.tmp" "$staging" >/dev/null 2>&1 || { grub-mkrescue -o "$iso.tmp" "$staging"; exit 1; }
mv "$iso.tmp" "$iso"

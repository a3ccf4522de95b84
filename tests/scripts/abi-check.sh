#!/usr/bin/env bash
# The ABI check: compatible edits pass, incompatible ones fail unless the version is bumped.
set -euo pipefail
cd "$(dirname "$0")/../.."
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

fresh() { rm -rf "$work/abi"; cp -r abi "$work/abi"; }
check() { python3 "$work/abi/abi-crc.py" --check abi/baseline.txt >"$work/out" 2>&1; }
expect_pass() { if ! check; then cat "$work/out"; echo "FAIL: expected pass: $1"; exit 1; fi; echo "ok: $1"; }
expect_fail() {
    if check; then cat "$work/out"; echo "FAIL: expected failure: $1"; exit 1; fi
    grep -q "$2" "$work/out" || { cat "$work/out"; echo "FAIL: message lacks '$2': $1"; exit 1; }
    echo "ok: $1"
}
set_version() { sed -i "s/#define HOMEOS_ABI_MAJOR .*/#define HOMEOS_ABI_MAJOR $1/; s/#define HOMEOS_ABI_MINOR .*/#define HOMEOS_ABI_MINOR $2/" "$work/abi/homeos/abi.h"; }

fresh
expect_pass "the committed abi/ matches its baseline"

fresh
sed -i 's/    uint32_t prefetchable;/    uint32_t prefetchable;\n    uint32_t new_field;/' "$work/abi/homeos/pci.h"
expect_fail "a struct layout change without a major bump" "changed: homeos_pci_register_driver"
set_version 2 0
expect_pass "the same change with a major bump"

fresh
sed -i 's/HOMEOS_API void kfree(void\* pointer);/HOMEOS_API void kfree(void* pointer);\nHOMEOS_API void* krealloc(void* pointer, size_t size);/' "$work/abi/homeos/memory.h"
expect_fail "a new export without a minor bump" "new exports need a minor version bump"
set_version 1 1
expect_pass "a new export with a minor bump"

fresh
sed -i 's/HOMEOS_API void kfree(void\* pointer);//' "$work/abi/homeos/memory.h"
expect_fail "a removed export without a major bump" "removed: kfree"

fresh
sed -i 's/HOMEOS_API void\* kmalloc(size_t size);/HOMEOS_API void* kmalloc(size_t bytes);/' "$work/abi/homeos/memory.h"
expect_pass "renaming a parameter keeps the CRC"

fresh
sed -i 's/HOMEOS_API void\* kmalloc(size_t size);/HOMEOS_API void* kmalloc(uint32_t size);/' "$work/abi/homeos/memory.h"
expect_fail "changing a parameter type without a major bump" "changed: kmalloc"

fresh
set_version 0 9
expect_fail "a version older than the baseline" "older than the baseline"
echo "abi-check: all cases behave"

#!/usr/bin/env bash
# The ABI check: compatible edits pass, incompatible ones fail unless the version is bumped. It
# covers everything a module shares with the kernel: prototypes, every struct they reach (through
# pointers too), and the structs the kernel reads out of module sections (parameters, exports,
# __versions, selftest registration, init/exit), which reach the loader through
# homeos_module_layout. Then the SDK's modversions: a module's exports carry the CRC of their
# declaration, and an importer records the CRC of the declaration it was compiled with.
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
major=$(awk '/#define HOMEOS_ABI_MAJOR/ { print $3 }' abi/homeos/abi.h)
minor=$(awk '/#define HOMEOS_ABI_MINOR/ { print $3 }' abi/homeos/abi.h)
bump_major() { set_version $((major + 1)) 0; }
bump_minor() { set_version "$major" $((minor + 1)); }

fresh
expect_pass "the committed abi/ matches its baseline"

fresh
sed -i 's/    uint32_t prefetchable;/    uint32_t prefetchable;\n    uint32_t new_field;/' "$work/abi/homeos/pci.h"
expect_fail "a struct layout change without a major bump" "changed: homeos_pci_register_driver"
bump_major
expect_pass "the same change with a major bump"

fresh
sed -i 's/HOMEOS_API void kfree(void\* pointer);/HOMEOS_API void kfree(void* pointer);\nHOMEOS_API void* krealloc(void* pointer, size_t size);/' "$work/abi/homeos/memory.h"
expect_fail "a new export without a minor bump" "new exports need a minor version bump"
bump_minor
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

# ---- structs the kernel reads from module sections, and structs reached only by pointer
fresh
sed -i 's/^    uint32_t type;$/    uint64_t type;/' "$work/abi/homeos/module.h"
grep -q "uint64_t type;" "$work/abi/homeos/module.h" || { echo "FAIL: the edit did not apply"; exit 1; }
expect_fail "homeos_module_param.type widened from u32 to u64" "changed: struct homeos_module_param"
grep -q "changed: homeos_module_layout" "$work/out" || { cat "$work/out"; echo "FAIL: homeos_module_layout's CRC missed the change"; exit 1; }
bump_major
expect_pass "the same change with a major bump"

fresh
sed -i 's/^    const void\* address;$/    const void* address;\n    uint32_t flags;/' "$work/abi/homeos/module.h"
grep -q "uint32_t flags;" "$work/abi/homeos/module.h" || { echo "FAIL: the edit did not apply"; exit 1; }
expect_fail "a field added in the middle of struct homeos_export" "changed: struct homeos_export"
grep -q "changed: homeos_module_layout" "$work/out" || { cat "$work/out"; echo "FAIL: homeos_module_layout's CRC missed the change"; exit 1; }

fresh
sed -i 's/void (\*run)(struct homeos_test\* test);/int (*run)(struct homeos_test* test);/' "$work/abi/homeos/module.h"
grep -q "int (\*run)" "$work/abi/homeos/module.h" || { echo "FAIL: the edit did not apply"; exit 1; }
expect_fail "a field type changed in homeos_test_case (reached only through pointers)" "changed: struct homeos_test_case"
grep -q "changed: homeos_module_layout" "$work/out" || { cat "$work/out"; echo "FAIL: homeos_module_layout's CRC missed the change"; exit 1; }

fresh
sed -i 's/    uintptr_t driver_data;/    uint32_t driver_data;/' "$work/abi/homeos/pci.h"
grep -q "uint32_t driver_data;" "$work/abi/homeos/pci.h" || { echo "FAIL: the edit did not apply"; exit 1; }
expect_fail "a field type changed in homeos_pci_device_id (reached by an export only through a pointer)" \
    "changed: homeos_pci_register_driver"

fresh
sed -i 's/    char name\[60\];/    char name[56];/' "$work/abi/homeos/module.h"
grep -q "char name\[56\];" "$work/abi/homeos/module.h" || { echo "FAIL: the edit did not apply"; exit 1; }
expect_fail "a __versions entry layout change" "changed: struct homeos_version_entry"
grep -q "changed: homeos_module_layout" "$work/out" || { cat "$work/out"; echo "FAIL: homeos_module_layout's CRC missed the change"; exit 1; }
# The SDK writes entries of the new size (56 - strlen("kmalloc") = 49 bytes of padding), so it and the loader (sizeof) agree.
python3 "$work/abi/abi-crc.py" --versions kmalloc | grep -q "\.zero 49$" \
    || { echo "FAIL: __versions entries do not follow the header's name size"; exit 1; }
echo "ok: __versions entries follow the header's layout"

fresh
sed -i 's/^struct homeos_version_entry {/struct homeos_new_thing {\n    uint32_t value;\n};\nstruct homeos_version_entry {/' "$work/abi/homeos/module.h"
expect_fail "a new ABI struct without a minor bump" "new exports need a minor version bump.*struct homeos_new_thing"

# The committed baseline records the section structs themselves.
for type in "struct homeos_module_param" "struct homeos_export" "struct homeos_version_entry" "struct homeos_test_suite" \
    "struct homeos_test_case" "typedef homeos_initcall" "homeos_module_layout"; do
    grep -q " $type\$" abi/baseline.txt || { echo "FAIL: abi/baseline.txt lacks '$type'"; exit 1; }
done
echo "ok: the baseline records every struct the kernel reads from module sections"

# ---- modversions between modules, through the SDK
sdk() { make -s -C "$1" -f "$PWD/abi/module.mk" >"$work/sdk.log" 2>&1 || { cat "$work/sdk.log"; echo "FAIL: SDK build of $1"; exit 1; }; }
crc_of() { python3 abi/abi-crc.py --dump-modversions "$2" | awk -v kind="$1" -v name="$3" '$1 == kind && $3 == name { print $2 }'; }
mv="$work/modversions"
mkdir -p "$mv"
cp -r tests/oot/modversions/mv_exporter tests/oot/modversions/mv_importer "$mv/"
sdk "$mv/mv_exporter"
sdk "$mv/mv_importer"
exported=$(crc_of export "$mv/mv_exporter/build/mv_exporter.ko" mv_scale)
imported=$(crc_of version "$mv/mv_importer/build/mv_importer.ko" mv_scale)
[ -n "$exported" ] && [ "$exported" != 0x00000000 ] || { echo "FAIL: mv_exporter's export of mv_scale has no CRC ('$exported')"; exit 1; }
[ "$exported" = "$imported" ] || { echo "FAIL: importer records $imported for mv_scale, exporter exports $exported"; exit 1; }
echo "ok: an exported symbol carries its CRC, and an importer built against the same header records it"
# C++ importers: the C header inside extern "C", and a declaration that names mv_point without
# `struct`, read the same as C's declaration.
cp -r tests/oot/modversions/mv_importer_cpp "$mv/"
sdk "$mv/mv_importer_cpp"
[ "$(crc_of version "$mv/mv_importer_cpp/build/mv_importer_cpp.ko" mv_scale)" = "$exported" ] \
    || { echo "FAIL: the C++ importer records another CRC for mv_scale than the C exporter exports"; exit 1; }
mkdir -p "$mv/mv_importer_bare"
printf '%s\n' '#include <homeos/homeos.h>' 'struct mv_point { int32_t x; int32_t y; };' \
    'extern "C" int32_t mv_scale(const mv_point* p, int32_t f);' \
    'namespace { int init() { mv_point p { 1, 2 }; return mv_scale(&p, 0); } }' 'module_init(init);' >"$mv/mv_importer_bare/bare.cpp"
sdk "$mv/mv_importer_bare"
[ "$(crc_of version "$mv/mv_importer_bare/build/mv_importer_bare.ko" mv_scale)" = "$exported" ] \
    || { echo "FAIL: 'const mv_point*' (C++) and 'const struct mv_point*' (C) give different CRCs"; exit 1; }
echo "ok: C++ importers (extern \"C\" header, struct named without 'struct') record the C exporter's CRC"
layout=$(crc_of version "$mv/mv_importer/build/mv_importer.ko" homeos_module_layout)
[ "$layout" = "$(awk '$2 == "homeos_module_layout" { print $1 }' abi/baseline.txt)" ] \
    || { echo "FAIL: the importer's __versions lacks homeos_module_layout at the baseline's CRC ('$layout')"; exit 1; }
echo "ok: every module imports homeos_module_layout at the kernel's CRC"
# The exporter changes struct mv_point and is rebuilt; the importer is not.
sed -i 's/^    int32_t y;$/    int64_t y;/' "$mv/mv_exporter/mv_exporter.h"
sdk "$mv/mv_exporter"
changed=$(crc_of export "$mv/mv_exporter/build/mv_exporter.ko" mv_scale)
[ "$changed" != "$exported" ] || { echo "FAIL: changing struct mv_point kept mv_scale's CRC $exported"; exit 1; }
[ "$(crc_of version "$mv/mv_importer/build/mv_importer.ko" mv_scale)" = "$imported" ] || { echo "FAIL: the stale importer changed"; exit 1; }
echo "ok: a struct change behind an exported symbol changes its CRC, so a stale importer disagrees ($imported vs $changed)"
sdk "$mv/mv_importer"
[ "$(crc_of version "$mv/mv_importer/build/mv_importer.ko" mv_scale)" = "$changed" ] \
    || { echo "FAIL: the rebuilt importer does not record the new CRC"; exit 1; }
echo "ok: rebuilding the importer against the new header agrees again"

# C and C++ see one declaration the same way: hello (C) exports what hello_user (C++) imports.
cp -r modules/test/hello modules/test/hello_user "$mv/"
sdk "$mv/hello"
sdk "$mv/hello_user"
exported=$(crc_of export "$mv/hello/build/hello.ko" hello_add)
imported=$(crc_of version "$mv/hello_user/build/hello_user.ko" hello_add)
[ -n "$exported" ] && [ "$exported" != 0x00000000 ] && [ "$exported" = "$imported" ] \
    || { echo "FAIL: hello exports hello_add as '$exported', hello_user (C++) imports '$imported'"; exit 1; }
echo "ok: a C++ importer records the CRC a C exporter exports"

# HOMEOS_EXPORT of something the module never declares fails the build with a clear message.
mkdir -p "$mv/bad"
printf '#include <homeos/homeos.h>\nextern int ghost;\nHOMEOS_EXPORT(ghost);\n' >"$mv/bad/bad.c"
sed -i 's/^extern int ghost;$//' "$mv/bad/bad.c"
if make -s -C "$mv/bad" -f "$PWD/abi/module.mk" >"$work/sdk.log" 2>&1; then echo "FAIL: exporting an undeclared symbol built"; exit 1; fi
grep -q "HOMEOS_EXPORT(ghost): no declaration of 'ghost'" "$work/sdk.log" || { cat "$work/sdk.log"; echo "FAIL: no clear message"; exit 1; }
echo "ok: exporting an undeclared symbol is refused with a message"
echo "abi-check: all cases behave"

#!/usr/bin/env bash
# Builds initramfs images from fake modules with mkinitramfs and checks them with the real tools:
# zstd -t, cpio -t, and the text of modules.dep / modules.alias / etc/modules-load. Also checks
# reproducibility, compressed modules, and that a dependency cycle or missing dependency fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TOOL="$BUILD/tools/mkinitramfs"
make -s "$TOOL" >/dev/null
TOOL=$(realpath "$TOOL")

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# A fake module: a relocatable x86-64 object whose .modinfo holds the given NUL-separated strings.
module() { # module FILE 'key=value\0key=value\0'
    local file=$1 info=$2
    cat > "$work/src.c" <<C
__attribute__((section(".modinfo"), used)) static const char info[] = "$info";
int module_init(void) { return 0; }
C
    clang --target=x86_64-pc-linux-gnu -c "$work/src.c" -o "$file"
}

mkdir -p "$work/mods" "$work/root/bin" "$work/root/etc"
module "$work/mods/a.ko" 'name=a\0depends=b\0alias=pci:v0000ABCDd*sv*sd*bc*sc*i*\0alias=acpi:HOME0001:*\0license=GPL\0abi=1.0\0'
module "$work/mods/b.ko" 'name=b\0depends=c\0alias=pci:v00001AF4d00001001sv*sd*bc*sc*i*\0abi=1.0\0'
module "$work/mods/c.ko" 'name=c\0depends=\0abi=1.0\0'
module "$work/mods/d_file.ko" 'license=MIT\0depends=c\0'   # no name=: named after the file
printf '#!/bin/sh\necho hi\n' > "$work/root/bin/init"
chmod 0755 "$work/root/bin/init"
printf 'homeos\n' > "$work/root/etc/hostname"
ln -s bin/init "$work/root/init"

out="$work/initramfs.cpio.zst"
"$TOOL" -o "$out" --level 19 --root "$work/root" --module "$work/mods/a.ko" --module "$work/mods/b.ko" \
    --module "$work/mods/c.ko" --module "$work/mods/d_file.ko" --load c --load a

zstd -q -t "$out" && pass "zstd -t accepts the image" || fail "zstd -t rejects the image"
# Content size and checksum flags: zstd -lv reports both.
info=$(zstd -lv "$out" 2>&1 || true)
grep -q "Check: XXH64" <<<"$info" && pass "frame has a checksum" || fail "no checksum in: $info"
grep -q "Decompressed Size:" <<<"$info" && pass "frame has its content size" || fail "no content size in: $info"

listing=$(zstd -dc "$out" | cpio -t --quiet)
expected_listing='bin
bin/init
etc
etc/hostname
etc/modules-load
init
lib
lib/modules
lib/modules/a.ko
lib/modules/b.ko
lib/modules/c.ko
lib/modules/d_file.ko
lib/modules/modules.alias
lib/modules/modules.dep'
[ "$listing" = "$expected_listing" ] && pass "cpio -t lists every entry, sorted" \
    || fail "cpio -t listing:"$'\n'"$listing"

mkdir "$work/x"
(cd "$work/x" && zstd -dc "$out" | cpio -i -d --quiet --no-absolute-filenames)

expected_dep='lib/modules/a.ko: lib/modules/c.ko lib/modules/b.ko
lib/modules/b.ko: lib/modules/c.ko
lib/modules/c.ko:
lib/modules/d_file.ko: lib/modules/c.ko'
[ "$(cat "$work/x/lib/modules/modules.dep")" = "$expected_dep" ] && pass "modules.dep: transitive, load order" \
    || fail "modules.dep:"$'\n'"$(cat "$work/x/lib/modules/modules.dep")"

expected_alias='# Aliases extracted from modules themselves.
alias pci:v0000ABCDd*sv*sd*bc*sc*i* a
alias acpi:HOME0001:* a
alias pci:v00001AF4d00001001sv*sd*bc*sc*i* b'
[ "$(cat "$work/x/lib/modules/modules.alias")" = "$expected_alias" ] && pass "modules.alias" \
    || fail "modules.alias:"$'\n'"$(cat "$work/x/lib/modules/modules.alias")"

[ "$(cat "$work/x/etc/modules-load")" = $'c\na' ] && pass "etc/modules-load" \
    || fail "etc/modules-load: $(cat "$work/x/etc/modules-load")"

cmp -s "$work/x/lib/modules/a.ko" "$work/mods/a.ko" && pass "a.ko stored unchanged" || fail "a.ko differs"
cmp -s "$work/x/bin/init" "$work/root/bin/init" && pass "--root file content" || fail "bin/init differs"
[ "$(stat -c %a "$work/x/bin/init")" = 755 ] && pass "--root keeps permissions" || fail "bin/init mode $(stat -c %a "$work/x/bin/init")"
[ "$(readlink "$work/x/init")" = bin/init ] && pass "--root keeps symlinks" || fail "init is not a symlink to bin/init"

# Metadata is fixed: owner 0:0 and mtime 0 (1970-01-01 UTC) on every entry.
meta=$(zstd -dc "$out" | TZ=UTC cpio -tv --quiet --numeric-uid-gid 2>/dev/null)
if [ -n "$meta" ] && awk '$3 != 0 || $4 != 0 || $0 !~ / 1970 / { bad = 1 } END { exit bad }' <<<"$meta"; then
    pass "uid/gid 0, mtime 0"
else
    fail "metadata not fixed:"$'\n'"$meta"
fi

# Reproducible: a second run, with the modules in another order and a newer mtime on a --root
# file, is byte-identical.
touch -d "+1 hour" "$work/root/etc/hostname"
"$TOOL" -o "$work/again.cpio.zst" --level 19 --root "$work/root" --module "$work/mods/c.ko" --module "$work/mods/a.ko" \
    --module "$work/mods/d_file.ko" --module "$work/mods/b.ko" --load c --load a
cmp -s "$out" "$work/again.cpio.zst" && pass "reproducible" || fail "two builds differ"

# Compressed modules: given as .ko.zst, and with --compress-modules.
zstd -q -19 "$work/mods/c.ko" -o "$work/c.ko.zst"
mkdir "$work/zmods" && mv "$work/c.ko.zst" "$work/zmods/c.ko.zst"
"$TOOL" -o "$work/z1.cpio.zst" --module "$work/mods/b.ko" --module "$work/zmods/c.ko.zst"
z1=$(zstd -dc "$work/z1.cpio.zst" | cpio -t --quiet)
grep -qx lib/modules/c.ko.zst <<<"$z1" && grep -qx lib/modules/b.ko <<<"$z1" && pass ".ko.zst input kept compressed" \
    || fail ".ko.zst listing: $z1"
"$TOOL" -o "$work/z2.cpio.zst" --compress-modules --module "$work/mods/b.ko" --module "$work/mods/c.ko"
mkdir "$work/z2" && (cd "$work/z2" && zstd -dc "$work/z2.cpio.zst" | cpio -i -d --quiet)
if [ -f "$work/z2/lib/modules/b.ko.zst" ] && zstd -dc "$work/z2/lib/modules/b.ko.zst" | cmp -s - "$work/mods/b.ko" \
    && grep -qx 'lib/modules/b.ko.zst: lib/modules/c.ko.zst' "$work/z2/lib/modules/modules.dep"; then
    pass "--compress-modules"
else
    fail "--compress-modules: $(ls "$work/z2/lib/modules" 2>&1) / $(cat "$work/z2/lib/modules/modules.dep" 2>&1)"
fi

# Errors: a cycle, a missing dependency, an unknown --load, a duplicate name.
module "$work/mods/x.ko" 'name=x\0depends=y\0'
module "$work/mods/y.ko" 'name=y\0depends=z\0'
module "$work/mods/z.ko" 'name=z\0depends=x\0'
expect_failure() { # expect_failure 'description' 'message fragment' args...
    local what=$1 fragment=$2
    shift 2
    local message
    if message=$("$TOOL" -o "$work/bad.cpio.zst" "$@" 2>&1); then
        fail "$what: mkinitramfs succeeded"
    elif grep -qF -- "$fragment" <<<"$message"; then
        pass "$what: $message"
    else
        fail "$what: unexpected message: $message"
    fi
}
expect_failure "dependency cycle" "dependency cycle: x -> y -> z -> x" \
    --module "$work/mods/x.ko" --module "$work/mods/y.ko" --module "$work/mods/z.ko"
expect_failure "missing dependency" "module 'a' depends on 'b', which is not in the initramfs" \
    --module "$work/mods/a.ko" --module "$work/mods/c.ko"
expect_failure "unknown --load" "--load nosuch" --module "$work/mods/c.ko" --load nosuch
expect_failure "duplicate module name" "two modules are named 'c'" --module "$work/mods/c.ko" --module "$work/zmods/c.ko.zst"
expect_failure "bad level" "--level" --level 99 --module "$work/mods/c.ko"
[ ! -e "$work/bad.cpio.zst" ] && pass "no output on failure" || fail "a failed run left output behind"

if [ "$failures" -ne 0 ]; then
    echo "initramfs: $failures check(s) failed"
    exit 1
fi
echo "initramfs: all checks passed"

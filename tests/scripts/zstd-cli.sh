#!/usr/bin/env bash
# The real zstd tool compresses a few files at several levels (including --ultra -22 and
# --long=27, and multi-frame and no-checksum streams); the kernel's decoder, built here into a
# tiny host CLI, must give back every file byte for byte. Exit 0 passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
# The zstd tool is this test's oracle: without it the test fails (ci/install-deps.sh installs it).
if ! command -v zstd > /dev/null; then
    echo "FAIL zstd-cli: the zstd tool (the oracle) is not installed; run ci/install-deps.sh"
    exit 1
fi
mkdir -p "$BUILD/host"
tool="$BUILD/host/zstd-decode"
clang++ -std=c++20 -O2 -Iinclude -Ikernel -DHOMEOS_HOST -o "$tool" \
    tests/tools/zstd-decode-main.cpp kernel/lib/zstd/*.cpp tests/unit/support/HostSupport.cpp

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Inputs: source text, random bytes, a long run, an empty file, and a binary if one is built.
cat kernel/lib/*/*.cpp kernel/lib/*/*.h > "$work/text"
head -c 1500000 /dev/urandom > "$work/random"
head -c 3000000 /dev/zero | tr '\0' 'x' > "$work/run"
: > "$work/empty"
printf 'a' > "$work/one"
# Far repeats that only a long window can reach.
head -c 2000000 /dev/urandom > "$work/chunk"
cat "$work/chunk" "$work/text" "$work/chunk" > "$work/far"
files=(text random run empty one far)
if [ -f "$BUILD/homeos.elf" ]; then
    cp "$BUILD/homeos.elf" "$work/elf"
    files+=(elf)
fi

failed=0
check() { # name, zst file, original
    if ! "$tool" "$2" "$work/out" 2> "$work/err"; then
        echo "FAIL $1: $(cat "$work/err")"
        failed=1
    elif ! cmp -s "$work/out" "$3"; then
        echo "FAIL $1: output differs"
        failed=1
    fi
}

for f in "${files[@]}"; do
    for opts in "-1" "-3" "-9" "-19" "--ultra -22" "--long=27 -3" "--long=27 --ultra -22" "-3 --no-check" "-5 --no-check --no-content-size"; do
        # shellcheck disable=SC2086
        zstd -q -f $opts "$work/$f" -o "$work/$f.zst"
        check "$f zstd $opts" "$work/$f.zst" "$work/$f"
    done
    # Streamed from a pipe: no content size in the header.
    zstd -q -c -7 < "$work/$f" > "$work/$f.zst"
    check "$f zstd -7 (pipe)" "$work/$f.zst" "$work/$f"
done

# Several frames in one file decode to the concatenation.
zstd -q -c -1 "$work/text" > "$work/multi.zst"
zstd -q -c -19 "$work/random" >> "$work/multi.zst"
zstd -q -c --ultra -22 "$work/text" >> "$work/multi.zst"
cat "$work/text" "$work/random" "$work/text" > "$work/multi"
check "concatenated frames" "$work/multi.zst" "$work/multi"

# A corrupted file must fail cleanly, not crash or succeed.
zstd -q -f -3 "$work/text" -o "$work/bad.zst"
printf '\xff\xff\xff\xff' | dd of="$work/bad.zst" bs=1 seek=100 conv=notrunc 2> /dev/null
if "$tool" "$work/bad.zst" "$work/out" 2> /dev/null; then
    echo "FAIL corrupt input was accepted"
    failed=1
fi

if [ "$failed" -eq 0 ]; then
    echo "PASS zstd-cli"
fi
exit "$failed"

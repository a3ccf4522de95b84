#!/usr/bin/env bash
# The arch-neutral layout holds: generic code reaches the architecture only through the interface
# headers in kernel/arch/*.h, the pure libraries never include the kernel's arch code or locks,
# and kernel/lib/ keeps its components in per-subsystem folders.
set -uo pipefail
cd "$(dirname "$0")/../.."
failures=0
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }

# 1. Generic kernel code: no direct include of an architecture folder, no x86:: calls.
generic=$(find kernel -path kernel/arch -prune -o \( -name '*.cpp' -o -name '*.h' -o -name '*.S' \) -print | sort)
offenders=$(grep -lE '#\s*include\s*[<"]arch/(x86_64|aarch64)/' $generic 2>/dev/null || true)
[ -z "$offenders" ] && pass "generic code includes only arch/ interface headers" \
    || fail "generic code includes an architecture folder directly:"$'\n'"$(grep -HnE '#\s*include\s*[<"]arch/(x86_64|aarch64)/' $offenders)"
offenders=$(grep -nE '\bx86::' $generic 2>/dev/null || true)
[ -z "$offenders" ] && pass "generic code makes no x86:: calls" || fail "generic code calls x86:: directly:"$'\n'"$offenders"

# 2. The interface headers in kernel/arch/ select the implementation by HOMEOS_ARCH_*, nothing else.
for header in kernel/arch/*.h; do
    [ "$header" = kernel/arch/Arch.h ] && continue
    bad=$(grep -nE '#\s*include\s*<arch/x86_64/' "$header" | while IFS=: read -r line _; do
        sed -n "1,${line}p" "$header" | grep -qE '#\s*if.*defined\(HOMEOS_ARCH_X86_64\)' || echo "$header:$line"; done)
    [ -z "$bad" ] || fail "$header includes arch/x86_64 outside an #if defined(HOMEOS_ARCH_X86_64) block: $bad"
done
pass "arch interface headers select by HOMEOS_ARCH_*"

# 3. The pure libraries (kernel/lib, kernel/arch/*/lib) build for the host: no kernel-only headers.
libs=$(find kernel/lib kernel/arch/*/lib \( -name '*.cpp' -o -name '*.h' \) 2>/dev/null | sort)
offenders=$(grep -nE '#\s*include\s*<(sync|mm|arch/[A-Za-z]+\.h|module|pci|time|log/Log|console|shell)[/>.]' $libs 2>/dev/null || true)
[ -z "$offenders" ] && pass "pure libraries include no kernel-only header" || fail "a pure library includes kernel-only code:"$'\n'"$offenders"

# 4. kernel/lib/ holds subsystem folders only.
loose=$(find kernel/lib -maxdepth 1 -type f | sort)
[ -z "$loose" ] && pass "kernel/lib/ has only subsystem folders" || fail "files directly in kernel/lib/: $loose"

# 5. The Makefile builds one architecture's folder: an unknown ARCH is refused.
if make -s -n ARCH=sparc64 kernel >/dev/null 2>&1; then fail "make ARCH=sparc64 was accepted"; else pass "make refuses an unknown ARCH"; fi

# 6. PhysAddr and VirtAddr do not mix (a compile error), checked with the host compiler.
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/mix.cpp" <<'CPP'
#include <ktl/Types.h>
PhysAddr f(VirtAddr v) { return v; }
CPP
if clang++ -std=c++20 -fsyntax-only -Iinclude "$tmp/mix.cpp" 2>/dev/null; then
    fail "a VirtAddr converts to a PhysAddr implicitly"
else
    pass "PhysAddr and VirtAddr are distinct types"
fi

[ "$failures" -eq 0 ]

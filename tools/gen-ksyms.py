#!/usr/bin/env python3
"""Turns `llvm-nm -n -S --defined-only` output into the kernel's embedded symbol table (.ksyms).

The layout is documented in kernel/lib/debug/SymbolTable.h. Names are demangled with llvm-cxxfilt when
it is available, so backtraces read `exceptions::handle(TrapFrame&)+0x12`.
"""
import struct
import subprocess
import sys

MAGIC = 0x3142415452534D4B


def emit(entries):
    strings = bytearray(b"\0")
    rows = []
    for address, size, name in entries:
        rows.append((address, min(size, 0xFFFFFFFF), len(strings)))
        strings += name.encode() + b"\0"
    header_size = 32
    strings_offset = header_size + 16 * len(rows)
    blob = struct.pack("<QQQQ", MAGIC, len(rows), strings_offset, len(strings))
    for address, size, name_offset in rows:
        blob += struct.pack("<QII", address, size, name_offset)
    blob += bytes(strings)
    out = ['    .section .ksyms, "a"', "    .balign 8"]
    for i in range(0, len(blob), 32):
        out.append("    .byte " + ",".join(str(b) for b in blob[i:i + 32]))
    return "\n".join(out) + "\n"


def demangle(names):
    try:
        result = subprocess.run(["llvm-cxxfilt"], input="\n".join(names), capture_output=True, text=True, check=True)
        out = result.stdout.splitlines()
        if len(out) == len(names):
            return out
    except (OSError, subprocess.CalledProcessError):
        pass
    return names


def main():
    if "--empty" in sys.argv:
        sys.stdout.write(emit([]))
        return
    raw = []
    for line in sys.stdin:
        parts = line.split()
        if len(parts) == 4:
            address, size, kind, name = parts
        elif len(parts) == 3:
            address, kind, name = parts
            size = "0"
        else:
            continue
        if kind not in "tTwW":
            continue
        raw.append((int(address, 16), int(size, 16), name))
    raw.sort()
    names = demangle([r[2] for r in raw])
    sys.stdout.write(emit([(a, s, n) for (a, s, _), n in zip(raw, names)]))


if __name__ == "__main__":
    main()

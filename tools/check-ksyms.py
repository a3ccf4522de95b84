#!/usr/bin/env python3
"""Checks that no function moved between link pass 1 and pass 2, so the embedded table is exact."""
import subprocess
import sys


def functions(elf):
    out = subprocess.run(["llvm-nm", "-n", "--defined-only", elf], capture_output=True, text=True, check=True).stdout
    return {p[2]: p[0] for p in (line.split() for line in out.splitlines()) if len(p) == 3 and p[1] in "tT"}


a, b = functions(sys.argv[1]), functions(sys.argv[2])
moved = [name for name in a if b.get(name) != a[name]]
if moved:
    sys.exit(f"check-ksyms: {len(moved)} functions moved between link passes, e.g. {moved[:3]}")

#!/usr/bin/env python3
"""The module ABI's symbol versions, in the spirit of Linux genksyms/modversions.

For every function declared HOMEOS_API in abi/homeos/*.h it builds a canonical text of the
declaration: the prototype (parameter names dropped) followed by the full definition of every
struct, enum and typedef it reaches, recursively. The CRC32 of that text is the symbol's version:
changing a prototype or the layout of any struct it passes changes the CRC.

  abi-crc.py --list                   print "0xCRC name" for every exported symbol
  abi-crc.py --header OUT.h           #define HOMEOS_CRC_<name> for the kernel's KEXPORT table
  abi-crc.py --versions NAMES...      assembly for a module's __versions section (its imports)
  abi-crc.py --baseline OUT           write the baseline (version line + CRC lines)
  abi-crc.py --check BASELINE         fail if the ABI changed incompatibly without a version bump
  abi-crc.py --explain NAME           print the canonical text behind one CRC

It needs only clang's preprocessor and this directory, so out-of-tree modules can use it.
"""
import os
import re
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_]\w*|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|\.\.\.|->|[^\s\w]')
KEYWORDS = {"const", "volatile", "unsigned", "signed", "struct", "enum", "union", "void", "char", "short", "int",
            "long", "float", "double", "_Bool", "bool", "restrict", "__restrict", "static", "inline", "extern"}


def preprocess():
    compiler = os.environ.get("CC_FOR_ABI", "clang")
    out = subprocess.run([compiler, "-E", "-P", "-x", "c", "-std=c11", "-ffreestanding", "--target=x86_64-pc-linux-gnu", "-DHOMEOS_ABI_TOOL", "-I", HERE,
                          os.path.join(HERE, "homeos", "homeos.h")], capture_output=True, text=True, check=True)
    return out.stdout


def strip_attributes(tokens):
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] in ("__attribute__", "__attribute", "__asm__", "__asm", "__extension__"):
            i += 1
            if tokens[i - 1] == "__extension__":
                continue
            depth = 0
            while i < len(tokens):
                if tokens[i] == "(":
                    depth += 1
                elif tokens[i] == ")":
                    depth -= 1
                    if depth == 0:
                        i += 1
                        break
                i += 1
            continue
        out.append(tokens[i])
        i += 1
    return out


def split_declarations(tokens):
    decls, current, depth = [], [], 0
    for token in tokens:
        if token == "{":
            depth += 1
        elif token == "}":
            depth -= 1
        if token == ";" and depth == 0:
            if current:
                decls.append(current)
            current = []
        else:
            current.append(token)
    return decls


def drop_parameter_names(tokens, start):
    """Given tokens[start] == '(' of a parameter list, returns (canonical tokens, end index)."""
    out, params, current, depth, i = [], [], [], 0, start
    while i < len(tokens):
        token = tokens[i]
        if token == "(":
            depth += 1
            if depth == 1:
                i += 1
                continue
        elif token == ")":
            depth -= 1
            if depth == 0:
                break
        if token == "," and depth == 1:
            params.append(current)
            current = []
        else:
            current.append(token)
        i += 1
    if current:
        params.append(current)
    canonical = []
    for param in params:
        p = list(param)
        # Function pointer: ( * name ) ( ... )
        for j in range(len(p) - 3):
            if p[j] == "(" and p[j + 1] == "*" and re.match(r"[A-Za-z_]\w*$", p[j + 2]) and p[j + 3] == ")":
                del p[j + 2]
                break
        else:
            if len(p) > 1 and re.match(r"[A-Za-z_]\w*$", p[-1]) and p[-1] not in KEYWORDS and p[-2] not in ("struct", "enum", "union"):
                p = p[:-1]
        canonical.append(" ".join(p))
    return ["(" + ", ".join(canonical) + ")"], i


def parse(text):
    tokens = strip_attributes(TOKEN.findall(text))
    types, exports = {}, {}
    for decl in split_declarations(tokens):
        if decl[0] == "typedef":
            name = None
            for j in range(len(decl) - 2):
                if decl[j] == "(" and decl[j + 1] == "*" and re.match(r"[A-Za-z_]\w*$", decl[j + 2]):
                    name = decl[j + 2]
                    break
            if name is None:
                name = decl[-1]
            types[name] = " ".join(decl)
            # typedef struct X { ... } Y: also define struct X
            if len(decl) > 3 and decl[1] in ("struct", "enum", "union") and decl[3] == "{":
                types[decl[1] + " " + decl[2]] = " ".join(decl[1:-1])
            continue
        if len(decl) > 2 and decl[0] in ("struct", "enum", "union") and decl[2] == "{":
            types[decl[0] + " " + decl[1]] = " ".join(decl)
            continue
        if "__homeos_export" in decl:
            body = [t for t in decl if t != "__homeos_export"]
            paren = body.index("(")
            name = body[paren - 1]
            params, end = drop_parameter_names(body, paren)
            canonical = body[:paren] + params + body[end + 1:]
            exports[name] = " ".join(canonical)
    return types, exports


def referenced(text, types):
    tokens = TOKEN.findall(text)
    refs = []
    for i, token in enumerate(tokens):
        if token in ("struct", "enum", "union") and i + 1 < len(tokens):
            key = token + " " + tokens[i + 1]
            if key in types:
                refs.append(key)
        elif token in types:
            refs.append(token)
    return refs


def canonical_text(name, types, exports):
    text = exports[name]
    seen, queue, parts = set(), referenced(text, types), [text]
    while queue:
        key = queue.pop(0)
        if key in seen:
            continue
        seen.add(key)
        parts.append(types[key])
        queue.extend(referenced(types[key], types))
    return " ; ".join(parts)


def version():
    header = open(os.path.join(HERE, "homeos", "abi.h")).read()
    major = int(re.search(r"#define HOMEOS_ABI_MAJOR (\d+)", header).group(1))
    minor = int(re.search(r"#define HOMEOS_ABI_MINOR (\d+)", header).group(1))
    return major, minor


def crcs():
    types, exports = parse(preprocess())
    return {name: zlib.crc32(canonical_text(name, types, exports).encode()) for name in sorted(exports)}, types, exports


def main(argv):
    table, types, exports = crcs()
    if not argv or argv[0] == "--list":
        for name, crc in table.items():
            print(f"0x{crc:08x} {name}")
    elif argv[0] == "--header":
        major, minor = version()
        lines = ["/* Generated by abi/abi-crc.py: CRCs of the module ABI's declarations. */", "#pragma once",
                 f"#define HOMEOS_ABI_KERNEL_MAJOR {major}", f"#define HOMEOS_ABI_KERNEL_MINOR {minor}"]
        lines += [f"#define HOMEOS_CRC_{name} 0x{crc:08x}u" for name, crc in table.items()]
        new = "\n".join(lines) + "\n"
        if not os.path.exists(argv[1]) or open(argv[1]).read() != new:
            with open(argv[1], "w") as f:
                f.write(new)
    elif argv[0] == "--versions":
        names = [n for n in argv[1:] if n in table]
        print('    .section __versions, "a"')
        print("    .balign 8")
        for name in names:
            if len(name) >= 60:
                sys.exit(f"abi-crc: symbol name too long for __versions: {name}")
            print(f"    .long 0x{table[name]:08x}")
            print(f'    .ascii "{name}"')
            print(f"    .zero {60 - len(name)}")
    elif argv[0] == "--baseline":
        major, minor = version()
        with open(argv[1], "w") as f:
            f.write(f"# Home OS module ABI baseline, written by abi/abi-crc.py --baseline.\nversion {major}.{minor}\n")
            for name, crc in table.items():
                f.write(f"0x{crc:08x} {name}\n")
    elif argv[0] == "--check":
        return check(argv[1], table)
    elif argv[0] == "--explain":
        print(canonical_text(argv[1], types, exports))
    else:
        print(__doc__)
        return 2
    return 0


def check(baseline_path, table):
    major, minor = version()
    base_major = base_minor = None
    base = {}
    for line in open(baseline_path):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("version "):
            base_major, base_minor = (int(x) for x in line.split()[1].split("."))
            continue
        crc, name = line.split()
        base[name] = int(crc, 16)
    changed = sorted(n for n in base if n in table and table[n] != base[n])
    removed = sorted(n for n in base if n not in table)
    added = sorted(n for n in table if n not in base)
    problems = []
    if (changed or removed) and major <= base_major:
        problems.append(f"incompatible ABI change without a major version bump (still {major}.{minor}):")
        problems += [f"  changed: {n}" for n in changed] + [f"  removed: {n}" for n in removed]
    if added and major == base_major and minor <= base_minor:
        problems.append(f"new exports need a minor version bump (still {major}.{minor}): " + ", ".join(added))
    if (major, minor) < (base_major, base_minor):
        problems.append(f"ABI version {major}.{minor} is older than the baseline {base_major}.{base_minor}")
    for p in problems:
        print("abi-check: " + p, file=sys.stderr)
    if problems:
        print("abi-check: after a deliberate bump, refresh the baseline with: python3 abi/abi-crc.py --baseline abi/baseline.txt",
              file=sys.stderr)
        return 1
    print(f"abi-check: ABI {major}.{minor} compatible with baseline {base_major}.{base_minor} "
          f"({len(table)} symbols, {len(added)} added)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

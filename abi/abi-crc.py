#!/usr/bin/env python3
"""The module ABI's symbol versions, in the spirit of Linux genksyms/modversions.

For every function declared HOMEOS_API in abi/homeos/*.h it builds a canonical text of the
declaration: the prototype (parameter names dropped) followed by the full definition of every
struct, enum and typedef it reaches, recursively (through pointers too, as genksyms does). The
CRC32 of that text is the symbol's version: changing a prototype or the layout of any struct it
passes changes the CRC.

Every named type the headers define (`struct homeos_module_param`, `typedef homeos_initcall`, ...)
has its own CRC line in the baseline too, so the check names the struct that changed. The structs
the kernel reads out of module sections reach the loader through `homeos_module_layout`, an export
every module imports (abi/runtime), like Linux's module_layout: a module built against another
layout of them is refused by the ordinary CRC check.

Symbols a module exports to other modules (HOMEOS_EXPORT) are versioned the same way, from the
declaration the exporting module was compiled with; an importing module records the CRC of the
declaration it was compiled with, so the two disagree exactly when their views differ.

  abi-crc.py --list                   print "0xCRC name" for every exported symbol and ABI type
  abi-crc.py --header OUT.h           #define HOMEOS_CRC_<name> for the kernel's KEXPORT table
  abi-crc.py --versions NAMES... [--sources FILE.i...]
                                      assembly for a module's __versions section (its imports:
                                      kernel symbols, and symbols of other modules declared in
                                      the module's preprocessed sources)
  abi-crc.py --module-exports OUT.h FILE.i...
                                      #define HOMEOS_EXPORT_CRC_<name> for a module's exports
  abi-crc.py --dump-modversions X.ko  print a module's __versions entries and export CRCs
  abi-crc.py --baseline OUT           write the baseline (version line + CRC lines)
  abi-crc.py --check BASELINE         fail if the ABI changed incompatibly without a version bump
  abi-crc.py --explain NAME           print the canonical text behind one CRC

It needs only clang's preprocessor and this directory, so out-of-tree modules can use it.
ABI_TARGET (default x86_64-pc-linux-gnu) sets the target the headers are preprocessed for.
"""
import os
import re
import struct
import subprocess
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
TOKEN = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|[A-Za-z_]\w*|0[xX][0-9a-fA-F]+[uUlL]*|\d+[uUlL]*|\.\.\.|->|::|[^\s\w]')
KEYWORDS = {"const", "volatile", "unsigned", "signed", "struct", "enum", "union", "void", "char", "short", "int",
            "long", "float", "double", "_Bool", "bool", "restrict", "__restrict", "static", "inline", "extern"}
IDENT = re.compile(r"[A-Za-z_]\w*$")
# Storage and linkage words: they do not change what a declaration means to its caller.
STORAGE = {"static", "extern", "inline", "__inline", "__inline__", "_Noreturn", '"C"', "constexpr", "[[", "]]"}
TYPE_KINDS = ("struct", "enum", "union")


def preprocess():
    compiler = os.environ.get("CC_FOR_ABI", "clang")
    target = os.environ.get("ABI_TARGET", "x86_64-pc-linux-gnu")  # the CRCs follow the target's type sizes
    out = subprocess.run([compiler, "-E", "-P", "-x", "c", "-std=c11", "-ffreestanding", f"--target={target}", "-DHOMEOS_ABI_TOOL", "-I", HERE,
                          os.path.join(HERE, "homeos", "homeos.h")], capture_output=True, text=True, check=True)
    return out.stdout


def strip_attributes(tokens):
    out, i = [], 0
    while i < len(tokens):
        if tokens[i] in ("__attribute__", "__attribute", "__asm__", "__asm", "asm", "__extension__", "alignas", "_Alignas"):
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
        if tokens[i] == "[" and i + 1 < len(tokens) and tokens[i + 1] == "[":  # C++ [[attributes]]
            depth, i = 0, i
            while i < len(tokens):
                depth += tokens[i] == "["
                depth -= tokens[i] == "]"
                i += 1
                if depth == 0:
                    break
            continue
        out.append(tokens[i])
        i += 1
    return out


def flatten_scopes(tokens):
    """Drops `extern "C" {` / `namespace N {` wrappers (keeping what is inside), so declarations
    in C++ sources sit at depth 0 like those of C sources."""
    out, stack = [], []
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t == "{":
            if out[-2:] == ["extern", '"C"']:
                del out[-2:]
                stack.append(True)
            elif out and out[-1] == "namespace":
                out.pop()
                stack.append(True)
            elif len(out) > 1 and out[-2] == "namespace" and IDENT.match(out[-1]):
                del out[-2:]
                stack.append(True)
            else:
                stack.append(False)
                out.append(t)
        elif t == "}":
            if stack and stack.pop():
                pass
            else:
                out.append(t)
        else:
            out.append(t)
        i += 1
    return out


def split_declarations(tokens):
    """Top-level declarations, split at `;`. A function definition ends at its closing brace and is
    kept without its body."""
    decls, current, depth, body_start = [], [], 0, None
    for token in tokens:
        if token == "{":
            if depth == 0 and current and current[-1] == ")":
                body_start = len(current)
            depth += 1
        elif token == "}":
            depth -= 1
            if depth == 0 and body_start is not None:
                decls.append(current[:body_start])
                current, body_start = [], None
                continue
        if body_start is not None:
            continue
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
            if p[j] == "(" and p[j + 1] == "*" and IDENT.match(p[j + 2]) and p[j + 3] == ")":
                del p[j + 2]
                break
        else:
            if len(p) > 1 and IDENT.match(p[-1]) and p[-1] not in KEYWORDS and p[-2] not in TYPE_KINDS:
                p = p[:-1]
        canonical.append(" ".join(p))
    if canonical == ["void"]:  # C's (void) is C++'s ()
        canonical = []
    return ["(" + ", ".join(canonical) + ")"], i


def normalize(tokens):
    """C and C++ spell a few things differently; a declaration means the same in both."""
    return ["bool" if t == "_Bool" else t for t in tokens if t not in STORAGE]


def tokenize(text):
    return flatten_scopes(strip_attributes(TOKEN.findall(text)))


def parse(text):
    types, exports = {}, {}
    for decl in split_declarations(tokenize(text)):
        decl = normalize(decl)
        if not decl:
            continue
        if decl[0] == "typedef":
            name = None
            for j in range(len(decl) - 2):
                if decl[j] == "(" and decl[j + 1] == "*" and IDENT.match(decl[j + 2]):
                    name = decl[j + 2]
                    break
            if name is None:
                name = decl[-1]
            types[name] = " ".join(decl)
            # typedef struct X { ... } Y: also define struct X
            if len(decl) > 3 and decl[1] in TYPE_KINDS and decl[3] == "{":
                types[decl[1] + " " + decl[2]] = " ".join(decl[1:-1])
            continue
        if len(decl) > 2 and decl[0] in TYPE_KINDS and decl[2] == "{":
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
        if token in TYPE_KINDS and i + 1 < len(tokens):
            key = token + " " + tokens[i + 1]
            if key in types:
                refs.append(key)
        elif token in types:
            refs.append(token)
    return refs


def expand(text, types):
    """The text followed by the definition of every type it reaches, recursively."""
    seen, queue, parts = set(), referenced(text, types), [text]
    while queue:
        key = queue.pop(0)
        if key in seen:
            continue
        seen.add(key)
        parts.append(types[key])
        queue.extend(referenced(types[key], types))
    return " ; ".join(parts)


def type_entry_name(key):
    return key if key.split()[0] in TYPE_KINDS else "typedef " + key


def abi_types(types):
    """The ABI's own named types (not the compiler's stdint.h and stddef.h ones)."""
    return {type_entry_name(key): key for key in types if key.split()[-1].startswith("homeos_")}


def version():
    header = open(os.path.join(HERE, "homeos", "abi.h")).read()
    major = int(re.search(r"#define HOMEOS_ABI_MAJOR (\d+)", header).group(1))
    minor = int(re.search(r"#define HOMEOS_ABI_MINOR (\d+)", header).group(1))
    return major, minor


def crcs():
    """CRCs of the kernel's exports and of the ABI's named types, and the texts behind them."""
    types, exports = parse(preprocess())
    texts = {name: expand(text, types) for name, text in exports.items()}
    for entry, key in abi_types(types).items():
        texts[entry] = expand(types[key], types)
    table = {name: zlib.crc32(texts[name].encode()) for name in sorted(texts)}
    return table, texts, types


# ---- symbols modules export to each other

def module_declaration(decl, name):
    """The canonical text of `decl` if it declares (or defines) `name`, else None."""
    decl = normalize(decl)
    if not decl or decl[0] in ("typedef", "using", "template", "__homeos_module_export") or (len(decl) > 2 and decl[0] in TYPE_KINDS and decl[2] == "{"):
        return None
    head = decl[:decl.index("=")] if "=" in decl else decl
    for j in range(1, len(head)):
        if head[j] != name or head[j - 1] in (".", "->", "::", "&"):
            continue
        if j + 1 < len(head) and head[j + 1] == "(":
            params, end = drop_parameter_names(head, j + 1)
            return " ".join(head[:j + 1] + params)
        if j + 1 == len(head) or head[j + 1] in ("[", ","):
            rest = head[j + 1:]
            dims = []
            while len(rest) >= 3 and rest[0] == "[":
                close = rest.index("]")
                dims += rest[:close + 1]
                rest = rest[close + 1:]
            return " ".join(head[:j + 1] + dims)
    return None


def spell_tags(text, types):
    """C++ may name a struct without `struct` (`const mv_point*`); spell it as C does, so a C++
    declaration and a C one of the same thing read the same."""
    tokens = TOKEN.findall(text)
    out = []
    for i, token in enumerate(tokens):
        before = tokens[i - 1] if i else ""
        after = tokens[i + 1] if i + 1 < len(tokens) else ""
        # A type name is followed by a declarator (`*`, `&`, a name, `const`) or ends a parameter.
        if IDENT.match(token) and token not in types and before not in TYPE_KINDS + (".", "->", "::") \
                and (after in ("*", "&", "&&", ")", ",") or IDENT.match(after)):
            for kind in TYPE_KINDS:
                if f"{kind} {token}" in types:
                    out.append(kind)
                    break
        out.append(token)
    return " ".join(out)


class ModuleSources:
    """A module's preprocessed sources (compiled with -DHOMEOS_ABI_TOOL): its exports and the
    declarations it was compiled against."""

    def __init__(self, paths):
        self.decls, self.types, self.exports = [], {}, []
        for path in paths:
            text = open(path).read()
            tokens = tokenize(text)
            for i in range(len(tokens) - 2):
                if tokens[i] == "__homeos_module_export" and tokens[i + 1] == "(":
                    self.exports.append(tokens[i + 2])
            self.decls += split_declarations(tokens)
            types, _ = parse(text)
            self.types.update(types)
        self.types = {key: spell_tags(value, self.types) for key, value in self.types.items()}

    def text(self, name):
        for decl in self.decls:
            canonical = module_declaration(decl, name)
            if canonical is not None:
                return expand("module-export " + spell_tags(canonical, self.types), self.types)
        return None

    def crc(self, name):
        text = self.text(name)
        return None if text is None else zlib.crc32(text.encode())


# ---- reading a built module

def elf_sections(data):
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit("abi-crc: not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    raw = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = raw[shstrndx]
    sections = []
    for s in raw:
        start = names[4] + s[0]
        sections.append({"name": data[start:data.index(b"\0", start)].decode(), "type": s[1], "offset": s[4], "size": s[5],
                         "link": s[6], "info": s[7], "entsize": s[9]})
    return sections


def dump_modversions(path):
    data = open(path, "rb").read()
    sections = elf_sections(data)
    by_name = {s["name"]: (i, s) for i, s in enumerate(sections)}
    lines = []
    if "__versions" in by_name:
        s = by_name["__versions"][1]
        size = version_entry_size()
        blob = data[s["offset"]:s["offset"] + s["size"]]
        for off in range(0, len(blob) - size + 1, size):
            crc, = struct.unpack_from("<I", blob, off)
            name = blob[off + 4:off + size].split(b"\0")[0].decode()
            lines.append(f"version 0x{crc:08x} {name}")
    if ".homeos.exports" in by_name:
        index, s = by_name[".homeos.exports"]
        blob = data[s["offset"]:s["offset"] + s["size"]]
        rela = next((r for r in sections if r["type"] == 4 and r["info"] == index), None)
        names = {}
        if rela:
            symtab = sections[rela["link"]]
            for off in range(rela["offset"], rela["offset"] + rela["size"], 24):
                r_offset, r_info, r_addend = struct.unpack_from("<QQq", data, off)
                if r_offset % 24 != 0:  # the name pointer starts each entry
                    continue
                sym = struct.unpack_from("<IBBHQQ", data, symtab["offset"] + (r_info >> 32) * 24)
                target = sections[sym[3]]
                start = target["offset"] + sym[4] + r_addend
                names[r_offset] = data[start:data.index(b"\0", start)].decode()
        for off in range(0, len(blob) - 23, 24):
            crc, = struct.unpack_from("<I", blob, off + 16)
            lines.append(f"export 0x{crc:08x} {names.get(off, '?')}")
    return lines


def version_entry_size():
    """sizeof(struct homeos_version_entry), from the header, so the SDK and the loader agree."""
    _, _, types = crcs()
    return 4 + version_name_size(types)


def version_name_size(types):
    match = re.search(r"char name \[ (\d+) \]", types["struct homeos_version_entry"])
    if not match:
        sys.exit("abi-crc: struct homeos_version_entry has no char name[N]")
    return int(match.group(1))


def main(argv):
    table, texts, types = crcs()
    if not argv or argv[0] == "--list":
        for name, crc in table.items():
            print(f"0x{crc:08x} {name}")
    elif argv[0] == "--header":
        major, minor = version()
        lines = ["/* Generated by abi/abi-crc.py: CRCs of the module ABI's declarations. */", "#pragma once",
                 f"#define HOMEOS_ABI_KERNEL_MAJOR {major}", f"#define HOMEOS_ABI_KERNEL_MINOR {minor}"]
        lines += [f"#define HOMEOS_CRC_{name} 0x{crc:08x}u" for name, crc in table.items() if IDENT.match(name)]
        new = "\n".join(lines) + "\n"
        if not os.path.exists(argv[1]) or open(argv[1]).read() != new:
            with open(argv[1], "w") as f:
                f.write(new)
    elif argv[0] == "--versions":
        names, sources = argv[1:], []
        if "--sources" in names:
            at = names.index("--sources")
            names, sources = names[:at], names[at + 1:]
        module = ModuleSources(sources)
        name_size = version_name_size(types)
        print('    .section __versions, "a"')
        print("    .balign 8")
        for name in names:
            crc = table.get(name) if IDENT.match(name) else None
            if crc is None:
                crc = module.crc(name)
            if crc is None:
                # Not the kernel's and declared nowhere in the module: the loader refuses it (ENOENT).
                print(f"abi-crc: warning: no declaration of imported symbol '{name}'", file=sys.stderr)
                continue
            if len(name) >= name_size:
                sys.exit(f"abi-crc: symbol name too long for __versions: {name}")
            print(f"    .long 0x{crc:08x}")
            print(f'    .ascii "{name}"')
            print(f"    .zero {name_size - len(name)}")
    elif argv[0] == "--module-exports":
        module = ModuleSources(argv[2:])
        lines = ["/* Generated by abi/abi-crc.py --module-exports: CRCs of this module's HOMEOS_EXPORTs. */", "#pragma once"]
        for name in sorted(set(module.exports)):
            crc = module.crc(name)
            if crc is None:
                sys.exit(f"abi-crc: HOMEOS_EXPORT({name}): no declaration of '{name}' in the module's sources")
            if name in table:
                sys.exit(f"abi-crc: HOMEOS_EXPORT({name}): the kernel already exports '{name}'")
            lines.append(f"#define HOMEOS_EXPORT_CRC_{name} 0x{crc:08x}u")
        with open(argv[1], "w") as f:
            f.write("\n".join(lines) + "\n")
    elif argv[0] == "--dump-modversions":
        for line in dump_modversions(argv[1]):
            print(line)
    elif argv[0] == "--baseline":
        major, minor = version()
        with open(argv[1], "w") as f:
            f.write(f"# Home OS module ABI baseline, written by abi/abi-crc.py --baseline.\nversion {major}.{minor}\n")
            for name, crc in table.items():
                f.write(f"0x{crc:08x} {name}\n")
    elif argv[0] == "--check":
        return check(argv[1], table)
    elif argv[0] == "--explain":
        name = " ".join(argv[1:])
        if name not in texts:
            print(f"abi-crc: no export or ABI type named '{name}'", file=sys.stderr)
            return 1
        print(texts[name])
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
        crc, name = line.split(None, 1)
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
          f"({len(table)} symbols and types, {len(added)} added)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

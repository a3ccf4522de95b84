#!/usr/bin/env python3
"""Writes a module package manifest: name, version, ABI version, dependencies, aliases, and the
sha256 of the compressed module. The initramfs tool checks it before installing the module.

    package.py MODULE.ko MODULE.ko.zst > MODULE.manifest
"""
import hashlib
import os
import struct
import sys


def modinfo(path):
    data = open(path, "rb").read()
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        sys.exit(f"package: {path} is not a 64-bit little-endian ELF file")
    shoff, = struct.unpack_from("<Q", data, 0x28)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)
    sections = [struct.unpack_from("<IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    names = sections[shstrndx]
    for s in sections:
        start = names[4] + s[0]
        name = data[start:data.index(b"\0", start)].decode()
        if name == ".modinfo":
            blob = data[s[4]:s[4] + s[5]]
            return [item.decode() for item in blob.split(b"\0") if item]
    sys.exit(f"package: {path} has no .modinfo section")


def main():
    ko, compressed = sys.argv[1], sys.argv[2]
    entries = modinfo(ko)
    fields = {}
    aliases = []
    for entry in entries:
        key, _, value = entry.partition("=")
        if key == "alias":
            aliases.append(value)
        else:
            fields.setdefault(key, value)
    if "name" not in fields:
        sys.exit(f"package: {ko} has no name= in .modinfo")
    digest = hashlib.sha256(open(compressed, "rb").read()).hexdigest()
    print("format=homeos-module-package-1")
    print(f"name={fields['name']}")
    print(f"version={fields.get('version', '0')}")
    print(f"abi={fields.get('abi', '')}")
    print(f"depends={fields.get('depends', '')}")
    for alias in aliases:
        print(f"alias={alias}")
    print(f"file={os.path.basename(compressed)}")
    print(f"size={os.path.getsize(compressed)}")
    print(f"sha256={digest}")


if __name__ == "__main__":
    main()

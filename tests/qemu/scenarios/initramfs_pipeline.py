"""An initramfs made the ordinary way boots and its modules load.

The tree is what the build puts in an initramfs (mkinitramfs: lib/modules/*.ko, modules.dep,
modules.alias, etc/modules-load), but it is packed the way every Linux pipeline packs one:
`find . | cpio -o -H newc | zstd -19`, whose frame has no content size. Two of the modules are
.ko.zst files made by the zstd tool without a content size: hello.ko.zst streamed from a pipe,
and hello_user.ko.zst made with --no-content-size behind a skippable frame, which must still be
recognised as zstd rather than read as a raw ELF. A truncated broken.ko.zst must be refused with
the decoder's own reason.
"""
import glob
import os
import re
import shutil
import struct
import subprocess
import tempfile

import harness

ZSTD_MAGIC = 0xFD2FB528


def frame_declares_size(data):
    """Whether the first zstd frame in data (after skippable frames) declares its content size."""
    position = 0
    while position + 8 <= len(data):
        magic = struct.unpack_from("<I", data, position)[0]
        if magic & 0xFFFFFFF0 == 0x184D2A50:
            position += 8 + struct.unpack_from("<I", data, position + 4)[0]
            continue
        if magic != ZSTD_MAGIC:
            raise ValueError("not a zstd frame")
        descriptor = data[position + 4]
        return (descriptor >> 6) != 0 or (descriptor >> 5) & 1 == 1
    raise ValueError("no zstd frame")


def build_image(work, result):
    """Returns the path of the packed initramfs, or None after recording why."""
    tool = os.path.join(harness.BUILD, "tools", "mkinitramfs")
    modules = sorted(glob.glob(os.path.join(harness.BUILD, "modules", "*.ko")))
    if not result.check(os.path.exists(tool) and bool(modules), "pipeline: mkinitramfs and the modules are built"):
        return None
    reference = os.path.join(work, "reference.cpio.zst")
    args = [tool, "-o", reference, "--load", "hello_user", "--load", "bench_small"]
    for module in modules:
        args += ["--module", module]
    made = subprocess.run(args, capture_output=True, text=True)
    if not result.check(made.returncode == 0, "pipeline: mkinitramfs makes the reference tree"):
        result.log = made.stderr
        return None
    # Unpack the build's tree, then re-pack it by hand.
    root = os.path.join(work, "root")
    os.makedirs(root)
    subprocess.run(f"zstd -dc '{reference}' | cpio -idm --quiet", shell=True, cwd=root, check=True)
    mods = os.path.join(root, "lib", "modules")
    subprocess.run(f"zstd -q -19 < hello.ko > hello.ko.zst && rm hello.ko", shell=True, cwd=mods, check=True)
    subprocess.run(["zstd", "-q", "-19", "--no-content-size", "hello_user.ko", "-o", "plain.zst"], cwd=mods, check=True)
    with open(os.path.join(mods, "hello_user.ko.zst"), "wb") as out:
        payload = b"homeos skippable frame"
        out.write(struct.pack("<II", 0x184D2A5E, len(payload)) + payload)
        out.write(open(os.path.join(mods, "plain.zst"), "rb").read())
    os.remove(os.path.join(mods, "plain.zst"))
    os.remove(os.path.join(mods, "hello_user.ko"))
    # A truncated copy: refusing it must give the decoder's own reason.
    whole = open(os.path.join(mods, "hello.ko.zst"), "rb").read()
    open(os.path.join(mods, "broken.ko.zst"), "wb").write(whole[:len(whole) // 2])
    image = os.path.join(work, "pipeline.cpio.zst")
    subprocess.run(f"find . | cpio -o -H newc --quiet | zstd -q -19 > '{image}'", shell=True, cwd=root, check=True)
    # The same tree in a frame that does declare its size, so the .ko.zst checks stand alone.
    sized = os.path.join(work, "sized.cpio")
    subprocess.run(f"find . | cpio -o -H newc --quiet > '{sized}' && zstd -q -19 --rm '{sized}'", shell=True, cwd=root, check=True)
    if not result.check(frame_declares_size(open(sized + ".zst", "rb").read()), "pipeline: the sized variant declares its size"):
        return None

    # The point of the scenario: none of these frames declares its size.
    for path, what in ((image, "the archive"), (os.path.join(mods, "hello.ko.zst"), "hello.ko.zst"),
                       (os.path.join(mods, "hello_user.ko.zst"), "hello_user.ko.zst")):
        if not result.check(not frame_declares_size(open(path, "rb").read()), f"pipeline: {what} has no content size"):
            return None
    result.check(open(os.path.join(mods, "hello_user.ko.zst"), "rb").read(4) == struct.pack("<I", 0x184D2A5E),
                 "pipeline: hello_user.ko.zst starts with a skippable frame")
    return image, sized + ".zst"


def boot(result, name, image, label):
    m = harness.Machine(name, "panic=exit", initramfs=image)
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, f"{label}: boots to the prompt"):
            return
        text = m.output
        result.check(re.search(r"initramfs: \d+ KiB compressed -> \d+ KiB, \d+ files in \d+ directories \(zstd \d+ us, cpio \d+ us\)",
                               text) is not None, f"{label}: the archive unpacks")
        result.check(re.search(r"\[hello\] hello from a module", text) is not None,
                     f"{label}: hello.ko.zst (no content size, from a pipe) loads at boot as a dependency")
        result.check(re.search(r"module: loaded hello_user", text) is not None,
                     f"{label}: hello_user.ko.zst (skippable frame first) loads from etc/modules-load")
        result.check(re.search(r"module: loaded bench_small", text) is not None, f"{label}: a plain .ko loads too")
        harness.drive(m, result, "lsmod", r"(?=[\s\S]*hello\s+\d+\s+1\s+hello_user)(?=[\s\S]*bench_small)",
                      f"{label}: lsmod lists the modules, hello used by hello_user")
        harness.drive(m, result, "ls /lib/modules", r"(?=[\s\S]*hello\.ko\.zst)(?=[\s\S]*modules\.dep)",
                      f"{label}: ls shows the packed tree")
        harness.drive(m, result, "insmod broken", r"compressed module: zstd: block is truncated",
                      f"{label}: a truncated .ko.zst is refused with the decoder's reason")
        m.send("poweroff\r")
        m.wait_exit(60)
    finally:
        m.kill()
        result.log += m.output


def scenario_initramfs_pipeline(result):
    work = tempfile.mkdtemp(prefix="homeos-pipeline-")
    try:
        images = build_image(work, result)
        if images is None:
            return
        boot(result, "initramfs-pipeline", images[0], "pipeline (find | cpio | zstd -19)")
        boot(result, "initramfs-pipeline-sized", images[1], "pipeline (sized archive, unsized .ko.zst)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def register(add, args):
    if not args.bench:
        add("initramfs-pipeline", scenario_initramfs_pipeline)

"""Modversions end to end, with modules built by the SDK.

Between modules: mv_exporter exports mv_scale(const struct mv_point*, int32_t). mv_importer is
built against mv_exporter.h, then struct mv_point changes and mv_exporter is rebuilt, with
mv_importer_ok built against the new header. The kernel must refuse the stale importer (its
__versions CRC for mv_scale differs from the one in mv_exporter's export table: EBADMSG) and load
the fresh one.

Against the kernel: greeter_wide is greeter built with an SDK whose homeos_module_param.type is
64 bits wide. No kernel function takes that struct, only the loader reads it, so only
homeos_module_layout's CRC can catch it: the module must be refused with EBADMSG.
"""
import glob
import os
import re
import shutil
import subprocess
import tempfile

import harness


def sdk(result, directory, what):
    build = subprocess.run(["make", "-s", "-C", directory, "-f", os.path.join(harness.ROOT, "abi", "module.mk")],
                           capture_output=True, text=True)
    if not result.check(build.returncode == 0, f"modversions: the SDK builds {what}"):
        result.log = build.stdout + build.stderr
        return None
    name = os.path.basename(directory)
    conf = os.path.join(directory, "module.conf")
    if os.path.exists(conf):
        name = re.search(r"^MODULE\s*=\s*(\S+)", open(conf).read(), re.M).group(1)
    return os.path.join(directory, "build", name + ".ko")


def scenario_modversions(result):
    work = tempfile.mkdtemp(prefix="homeos-modversions-")
    try:
        source = os.path.join(harness.ROOT, "tests", "oot", "modversions")
        for name in ("mv_exporter", "mv_importer"):
            shutil.copytree(os.path.join(source, name), os.path.join(work, name))
        stale = sdk(result, os.path.join(work, "mv_importer"), "the importer against the old header")
        header = os.path.join(work, "mv_exporter", "mv_exporter.h")
        text = open(header).read()
        if not result.check("    int32_t y;\n" in text, "modversions: the exporter's header has the field to change"):
            return
        with open(header, "w") as f:
            f.write(text.replace("    int32_t y;\n", "    int64_t y;\n"))
        exporter = sdk(result, os.path.join(work, "mv_exporter"), "the exporter with the new struct mv_point")
        fresh_dir = os.path.join(work, "mv_importer_ok")
        shutil.copytree(os.path.join(source, "mv_importer"), fresh_dir)
        with open(os.path.join(fresh_dir, "module.conf"), "w") as f:
            f.write("MODULE = mv_importer_ok\n")
        fresh = sdk(result, fresh_dir, "the importer against the new header")
        # An SDK whose module parameter struct has another layout than the kernel's.
        wide_abi = os.path.join(work, "abi")
        shutil.copytree(os.path.join(harness.ROOT, "abi"), wide_abi)
        module_h = os.path.join(wide_abi, "homeos", "module.h")
        text = open(module_h).read()
        if not result.check("    uint32_t type;\n" in text, "modversions: homeos_module_param has a 32-bit type field to widen"):
            return
        with open(module_h, "w") as f:
            f.write(text.replace("    uint32_t type;\n", "    uint64_t type;\n"))
        wide_dir = os.path.join(work, "greeter_wide")
        shutil.copytree(os.path.join(harness.ROOT, "tests", "oot", "greeter"), wide_dir)
        with open(os.path.join(wide_dir, "module.conf"), "w") as f:
            f.write("MODULE = greeter_wide\n")
        build = subprocess.run(["make", "-s", "-C", wide_dir, "-f", os.path.join(wide_abi, "module.mk")], capture_output=True, text=True)
        wide = os.path.join(wide_dir, "build", "greeter_wide.ko") if result.check(
            build.returncode == 0, "modversions: greeter builds against the widened homeos_module_param") else None
        if not (stale and exporter and fresh and wide):
            return
        image = os.path.join(harness.BUILD, "test-iso", "modversions-initramfs.cpio.zst")
        os.makedirs(os.path.dirname(image), exist_ok=True)
        args = [os.path.join(harness.BUILD, "tools", "mkinitramfs"), "-o", image]
        for module in sorted(glob.glob(os.path.join(harness.BUILD, "modules", "*.ko"))) + [exporter, stale, fresh, wide]:
            args += ["--module", module]
        made = subprocess.run(args, capture_output=True, text=True)
        if not result.check(made.returncode == 0, "modversions: mkinitramfs takes the four modules"):
            result.log = made.stdout + made.stderr
            return
        m = harness.Machine("modversions", "panic=exit", initramfs=image)
        try:
            if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "modversions: boots to the prompt"):
                return
            harness.drive(m, result, "insmod mv_importer", r"mv_scale[\s\S]*insmod: mv_importer: EBADMSG",
                          "modversions: an importer built against another mv_point is refused with EBADMSG, naming mv_scale")
            harness.drive(m, result, "lsmod", r"^(?![\s\S]*mv_importer\s)", "modversions: the refused importer is not loaded")
            harness.drive(m, result, "insmod mv_importer_ok", r"mv_scale\(20 \+ 1, 2\) = 42[\s\S]*insmod: mv_importer_ok loaded",
                          "modversions: an importer built against the exporter's header loads and calls it")
            harness.drive(m, result, "insmod greeter_wide", r"homeos_module_layout[\s\S]*insmod: greeter_wide: EBADMSG",
                          "modversions: a module built against another homeos_module_param layout is refused (homeos_module_layout)")
            harness.drive(m, result, "lsmod", r"^(?![\s\S]*greeter_wide)", "modversions: the refused module is not loaded")
            m.send("poweroff\r")
            m.wait_exit(60)
        finally:
            m.kill()
            result.log = m.output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def register(add, args):
    if not args.bench:
        add("modversions", scenario_modversions)

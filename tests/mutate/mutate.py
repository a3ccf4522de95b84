#!/usr/bin/env python3
"""make mutate: breaks the code on purpose, one mutation at a time, and checks a test notices.

Each mutation is a literal text edit of one file (it fails loudly when its anchor text is not
found exactly as often as expected), the build targets it needs, and the narrowest test that
should kill it. Everything happens in a scratch copy of the working tree (tracked and untracked
source files, no build directories, never /work/main itself), so uncommitted work is mutated
too and the tree is never touched.

For each mutation, the test first runs on the unmutated copy and must pass there: a test that
fails anyway proves nothing, and is reported as "invalid". Then the mutation is applied, the
targets are rebuilt (incrementally), the test runs, and the original file is put back.

  killed      the test failed on the mutant
  survived    the test passed on the mutant: the tests miss this defect
  invalid     the test fails without the mutation, or the anchor is gone, or the mutant does not
              build: fix the mutation or the test

It prints a table and exits non-zero unless every mutation was killed.

  python3 tests/mutate/mutate.py [--list] [--keep] [NAME ...]
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = "build-mutate"  # Inside the scratch copy.
JOBS = os.environ.get("JOBS", "2")


def gtest_suites(path):
    """A --gtest_filter for every suite in one test file: the tests that cover that library."""
    text = open(os.path.join(ROOT, path)).read()
    suites = sorted(set(re.findall(r"^\s*TEST(?:_F|_P)?\(\s*(\w+)\s*,", text, re.M)))
    if not suites:
        raise RuntimeError(f"{path} defines no GoogleTest suite")
    return "--gtest_filter=" + ":".join(f"{s}.*:*/{s}.*" for s in suites)


def unit(path):
    return ([f"{BUILD}/host/unit-tests"], ["unit"], [gtest_suites(path)])


def ktap(scenario, suite):
    # --jobs 1: the harness runs one scenario anyway; the second core builds or boots elsewhere.
    return (["python3", "tests/qemu/harness.py", "--jobs", "1", "--only", scenario, "--suite", suite], ["iso"], [])


def script(name):
    return (["bash", f"tests/scripts/{name}.sh"], [], [])


class Mutation:
    def __init__(self, name, path, old, new, test, count=1, why=""):
        self.name, self.path, self.old, self.new, self.count, self.why = name, path, old, new, count, why
        command, self.targets, args = test
        self.command = command + args


MUTATIONS = [
    Mutation("relocator-abs32-overflow", "kernel/lib/elf/Relocator.cpp",
             "fits = value <= 0xffffffffull;", "fits = true;", unit("tests/unit/ElfTest.cpp"),
             why="R_X86_64_32 values above 4 GiB are written truncated instead of refused"),
    Mutation("zstd-offset-from-buffer", "kernel/lib/zstd/ZstdDecoder.cpp",
             "u8* const frame_begin = out_begin + frame_start;", "u8* const frame_begin = out_begin;",
             unit("tests/unit/ZstdTest.cpp"),
             why="a match may reach back into an earlier frame's output"),
    Mutation("abi-param-type-u64", "abi/homeos/module.h",
             "    uint32_t type;\n    uint32_t string_capacity;", "    uint64_t type;\n    uint32_t string_capacity;",
             (["python3", "abi/abi-crc.py", "--check", "abi/baseline.txt"], [], []),
             why="homeos_module_param changes layout without an ABI bump"),
    Mutation("vmalloc-no-guard-page", "kernel/mm/Vmalloc.cpp",
             "(pages + 1) * PAGE_SIZE", "pages * PAGE_SIZE", ktap("ktap", "vmalloc"), count=None,
             why="vmalloc areas are packed back to back, with no unmapped page after each"),
    Mutation("run-all-one-failed", "tests/run-all.sh",
             "failed = len(failed_names)", "failed = min(len(failed_names), 1)", script("summary-honesty"),
             why="any number of failed GoogleTest cases is summarised as 1 failed"),
    Mutation("run-all-fixtures-from-build", "tests/run-all.sh",
             'HOMEOS_ELF_FIXTURES="$build/fixtures/elf" "$binary"', '"$binary"', script("summary-honesty"),
             why="with BUILD=build-NAME the ELF unit tests read build/'s fixtures"),
    Mutation("harness-unreported-cases-pass", "tests/qemu/harness.py",
             "for number in range(ran + 1, count + 1):", "for number in range(0):", script("summary-ktap"),
             why="cases that never reported (a panic mid-run) are not counted"),
    Mutation("harness-bare-skip-passes", "tests/qemu/harness.py",
             '                verdict, detail = "fail", "skipped without a reason"',
             '                verdict, detail = "skip", "(none)"', script("summary-ktap"),
             why="a KTAP # SKIP without a reason is taken as a skip"),
    Mutation("zstd-cli-skips-without-oracle", "tests/scripts/zstd-cli.sh",
             'not installed; run ci/install-deps.sh"\n    exit 1', 'not installed; run ci/install-deps.sh"\n    exit 0',
             script("summary-oracles"),
             why="the zstd CLI test passes when its oracle is missing"),
    Mutation("direct-map-no-1g-pages", "kernel/mm/MemoryManager.cpp",
             "PageSize largest = arch::has_1g_pages() ? PageSize::Size1G : PageSize::Size2M;",
             "PageSize largest = PageSize::Size2M;", ktap("ktap-5G-max", "page_tables"),
             why="the direct map never uses 1 GiB pages, even where the CPU has them"),
    Mutation("ktap-skip-reason-dropped", "kernel/lib/test/Ktap.cpp",
             'skip_reason.is_empty() ? "" : " ", (int)skip_reason.length(), skip_reason.characters());',
             '"", 0, "");', unit("tests/unit/KtapTest.cpp"),
             why="the KTAP writer drops the reason of a skipped case"),
    Mutation("ktest-no-plan-lines", "kernel/test/KTest.cpp",
             "        writer.diagnostic(plan);\n", "", ktap("selftest-panic", "all"),
             why="without the up-front plans, cases after a panic are not counted"),
    Mutation("loader-entry-points-unchecked", "kernel/module/ModuleLoader.cpp",
             "ErrorOr<void> check_entry_points(LoadInfo& load)\n{\n",
             "ErrorOr<void> check_entry_points(LoadInfo& load)\n{\n    if (load.image.size())\n        return {};\n",
             ktap("ktap", "modules"),
             why="init/exit and .init_array/.fini_array entries are called wherever they point"),
    Mutation("loader-duplicate-exports", "kernel/module/ModuleLoader.cpp",
             "ErrorOr<void> check_exports(LoadInfo& load) REQUIRES(g_module_mutex)\n{\n",
             "ErrorOr<void> check_exports(LoadInfo& load) REQUIRES(g_module_mutex)\n{\n    if (load.image.size())\n        return {};\n",
             ktap("ktap", "modules"),
             why="a second module may export a symbol that is already exported"),
    Mutation("loader-no-modstruct-version", "kernel/module/ModuleLoader.cpp",
             "ErrorOr<void> check_modstruct_version(LoadInfo& load)\n{\n",
             "ErrorOr<void> check_modstruct_version(LoadInfo& load)\n{\n    if (load.image.size())\n        return {};\n",
             ktap("ktap", "modules"),
             why="a module without homeos_module_layout in __versions skips the section-struct check"),
    Mutation("loader-no-destructors-on-init-failure", "kernel/module/ModuleLoader.cpp",
             "    load.constructed = true;\n", "", ktap("ktap", "modules"),
             why="C++ destructors never run when module_init fails"),
    Mutation("timers-callback-under-lock", "kernel/lib/time/TimerQueue.h",
             "            lock.unlock();\n            callback(*timer, context);\n            lock.lock();\n",
             "            callback(*timer, context);\n", ktap("ktap", "timers"),
             why="timer callbacks run under the timer lock, so one that re-arms itself deadlocks or panics"),
]


def copy_tree(scratch):
    """The working tree's tracked and untracked (not ignored) files: others' uncommitted work too."""
    listed = subprocess.run(["git", "-C", ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            check=True, capture_output=True).stdout.decode().split("\0")
    copied = 0
    for path in sorted(set(p for p in listed if p)):
        source = os.path.join(ROOT, path)
        if not os.path.isfile(source) or path.split("/")[0].startswith("build"):
            continue  # Deleted in the working tree, or a build product.
        target = os.path.join(scratch, path)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        shutil.copy2(source, target, follow_symlinks=False)
        copied += 1
    return copied


def run(command, cwd, log, timeout):
    started = time.monotonic()
    with open(log, "w") as out:
        try:
            # A fresh make: not the jobserver or command-line variables of the make that ran us.
            env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES")}
            code = subprocess.run(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                                  env=dict(env, BUILD=BUILD, HOMEOS_ELF_FIXTURES=f"{BUILD}/fixtures/elf")).returncode
        except subprocess.TimeoutExpired:
            out.write(f"\nmutate: timed out after {timeout} s\n")
            code = -1
    return code, time.monotonic() - started


def build(scratch, targets, log):
    if not targets:
        return 0, 0.0
    return run(["make", f"BUILD={BUILD}", f"-j{JOBS}", *targets], scratch, log, 1800)


def tail(path, lines=15):
    try:
        return "".join(open(path, errors="replace").readlines()[-lines:])
    except OSError:
        return ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help="run only these mutations")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--keep", action="store_true", help="keep the scratch copy")
    parser.add_argument("--scratch", default=os.environ.get("MUTATE_DIR", f"/tmp/homeos-mutate-{os.getuid()}"))
    args = parser.parse_args()

    if args.list:
        for m in MUTATIONS:
            print(f"{m.name:32} {m.path}: {m.why}")
        return 0
    unknown = set(args.names) - {m.name for m in MUTATIONS}
    if unknown:
        print(f"mutate: no such mutation: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    chosen = [m for m in MUTATIONS if not args.names or m.name in args.names]

    scratch = os.path.abspath(args.scratch)
    if scratch == ROOT or scratch.startswith(ROOT + os.sep):
        print("mutate: the scratch copy must be outside the tree", file=sys.stderr)
        return 2
    shutil.rmtree(scratch, ignore_errors=True)
    os.makedirs(scratch)
    logs = os.path.join(scratch, "mutate-logs")
    os.makedirs(logs)
    print(f"mutate: copied {copy_tree(scratch)} files to {scratch}")

    verdicts = {}
    # Anchors first: a mutation whose text moved is reported at once, not after a long build.
    for m in chosen:
        text = open(os.path.join(scratch, m.path)).read()
        found = text.count(m.old)
        if found == 0 or (m.count is not None and found != m.count):
            verdicts[m.name] = ("invalid", f"anchor found {found} times in {m.path} (expected {m.count or 'some'}): {m.old!r}")

    targets = sorted({t for m in chosen if m.name not in verdicts for t in m.targets})
    if targets:
        print(f"mutate: building {' '.join(targets)} once (later builds are incremental)")
        code, seconds = build(scratch, targets, os.path.join(logs, "build.log"))
        if code != 0:
            print(f"mutate: the unmutated copy does not build (status {code}):\n{tail(os.path.join(logs, 'build.log'), 30)}")
            return 1
        print(f"mutate: built in {seconds:.0f} s")

    timings = {}
    for m in chosen:
        if m.name in verdicts:
            continue
        print(f"mutate: {m.name}: baseline: {' '.join(m.command)}", flush=True)
        code, seconds = run(m.command, scratch, os.path.join(logs, m.name + ".baseline.log"), 1200)
        if code != 0:
            verdicts[m.name] = ("invalid", f"the test fails without the mutation (status {code}); see {logs}/{m.name}.baseline.log")

    for m in chosen:
        if m.name in verdicts:
            continue
        path = os.path.join(scratch, m.path)
        original = open(path).read()
        try:
            with open(path, "w") as f:
                f.write(original.replace(m.old, m.new))
            code, build_seconds = build(scratch, m.targets, os.path.join(logs, m.name + ".build.log"))
            if code != 0:
                verdicts[m.name] = ("invalid", f"the mutant does not build; see {logs}/{m.name}.build.log")
                continue
            code, seconds = run(m.command, scratch, os.path.join(logs, m.name + ".log"), 1200)
            timings[m.name] = build_seconds + seconds
            if code != 0:
                verdicts[m.name] = ("killed", f"{' '.join(m.command)} failed (status {code})")
            else:
                verdicts[m.name] = ("survived", f"{' '.join(m.command)} still passes")
        finally:
            with open(path, "w") as f:
                f.write(original)
        print(f"mutate: {m.name}: {verdicts[m.name][0]}", flush=True)

    print()
    print(f"{'mutation':32} {'result':9} {'time':>6}  detail")
    for m in chosen:
        verdict, detail = verdicts[m.name]
        spent = f"{timings[m.name]:.0f}s" if m.name in timings else "-"
        print(f"{m.name:32} {verdict:9} {spent:>6}  {m.why}: {detail}")
    killed = sum(1 for v, _ in verdicts.values() if v == "killed")
    print(f"mutate: {killed} of {len(chosen)} killed, "
          f"{sum(1 for v, _ in verdicts.values() if v == 'survived')} survived, "
          f"{sum(1 for v, _ in verdicts.values() if v == 'invalid')} invalid")
    if not args.keep:
        shutil.rmtree(os.path.join(scratch, BUILD), ignore_errors=True)
        print(f"mutate: logs kept in {logs}")
    return 0 if killed == len(chosen) else 1


if __name__ == "__main__":
    sys.exit(main())

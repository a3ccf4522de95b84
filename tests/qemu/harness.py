#!/usr/bin/env python3
"""QEMU test harness for Home OS.

Boots the kernel headless under TCG, one scenario per boot, and judges it only by what appears
on the serial port and by QEMU's exit status (isa-debug-exit): never by sleeping.

  * ktap-MEM-CPU: boots with selftest=all on small and large machines (64 MiB, 5 GiB) and two CPU
            models (qemu64, max); parses the KTAP and counts every planned case: `ok` passes,
            `ok ... # SKIP reason` is skipped (a skip without a reason fails), and `not ok`, a case
            that never reported (panic, hang, timeout), a missing plan, a panic or a triple fault
            fail. `--only ktap` is the same on a 512 MiB qemu64 machine.
  * prompt: boots to the kernel prompt and drives it over the serial port.
  * bad-input scenarios: corrupt boot data through inject=..., expect a clear panic message.

Each scenario prints PASS/FAIL lines; on failure the tail of the serial log follows. The last line
is "qemu: N passed, N failed, N skipped" and a JSON summary lands in $BUILD/results/qemu.json.
"""
import argparse
import concurrent.futures
import glob
import json
import os
import re
import select
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.path.join(ROOT, os.environ.get("BUILD", "build"))
KERNEL = os.path.join(BUILD, "homeos.elf")
INITRAMFS = os.path.join(BUILD, "initramfs.cpio.zst")
QEMU = os.environ.get("QEMU", "qemu-system-x86_64")

EXIT_SELFTEST_PASS = (0x10 << 1) | 1
EXIT_SELFTEST_FAIL = (0x11 << 1) | 1
EXIT_PANIC = (0x12 << 1) | 1
TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\] ")


class Result:
    def __init__(self, name):
        self.name = name
        self.passed = []
        self.failed = []
        self.skipped = []
        self.log = ""

    def check(self, ok, what):
        (self.passed if ok else self.failed).append(what)
        return ok

    def skip(self, what, reason):
        """A test that did not run. It must say why: a skip without a reason is a failure."""
        if reason.strip():
            self.skipped.append(f"{what} # SKIP {reason.strip()}")
        else:
            self.failed.append(f"{what}: skipped without a reason")


def make_iso(name, cmdline, initramfs=None):
    iso_dir = os.path.join(BUILD, "test-iso")
    os.makedirs(iso_dir, exist_ok=True)
    iso = os.path.join(iso_dir, name + ".iso")
    stamp = iso + ".cmdline"
    initramfs = initramfs or INITRAMFS
    inputs = [KERNEL] + ([initramfs] if os.path.exists(initramfs) else [])
    fresh = (os.path.exists(iso) and os.path.exists(stamp) and open(stamp).read() == cmdline
             and all(os.path.getmtime(iso) >= os.path.getmtime(path) for path in inputs))
    if not fresh:
        subprocess.run(["bash", os.path.join(ROOT, "tools/mkiso.sh"), KERNEL, iso, cmdline] + inputs[1:], check=True)
        with open(stamp, "w") as f:
            f.write(cmdline)
    return iso


class Machine:
    """One QEMU boot with the serial port on a pipe."""

    def __init__(self, name, cmdline, memory="512M", extra=(), initramfs=None):
        self.name = name
        iso = make_iso(name, cmdline, initramfs)
        self.qemu_log = os.path.join(BUILD, "test-iso", name + ".qemu.log")
        args = [QEMU, "-accel", "tcg", "-M", "q35", "-m", memory, "-smp", "1", "-no-reboot",
                "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04", "-display", "none",
                "-cdrom", iso, "-serial", "stdio", "-monitor", "none",
                "-d", "cpu_reset,guest_errors", "-D", self.qemu_log, *extra]
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.output = ""
        self.closed = False

    def _pump(self, timeout):
        if self.closed:
            time.sleep(min(timeout, 0.05))
            return
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if ready:
            chunk = os.read(self.proc.stdout.fileno(), 65536)
            if not chunk:
                self.closed = True
                return
            self.output += chunk.decode("utf-8", "replace").replace("\r", "")

    def wait_for(self, pattern, timeout):
        """Waits until pattern (a regex) appears in the output after the current position."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.M)
        while time.monotonic() < deadline:
            match = regex.search(self.output)
            if match:
                return match
            if self.closed and self.proc.poll() is not None:
                return regex.search(self.output)
            self._pump(min(0.5, max(0.0, deadline - time.monotonic())))
        return regex.search(self.output)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_exit(self, timeout):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                while not self.closed:
                    self._pump(0.1)
                return self.proc.returncode
            self._pump(0.5)
        self.kill()
        return None

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def triple_faulted(self):
        try:
            return "Triple fault" in open(self.qemu_log, errors="replace").read()
        except OSError:
            return False


GRUB_FONT = "/usr/share/grub/ascii.h"
FB_WIDTH, FB_HEIGHT = 1024, 768
CELL_W, CELL_H = 8, 16
CONSOLE_FG = (0xaa, 0xaa, 0xaa)
CONSOLE_BG = (0, 0, 0)


def load_grub_font(path=GRUB_FONT):
    """GRUB's ascii.h: 128 glyphs of 16 row bytes, most significant bit leftmost (the kernel's font)."""
    text = open(path).read()
    data = [int(x, 16) for x in re.findall(r"0x([0-9a-fA-F]{2})", text[text.index("{"):])]
    if len(data) != 128 * CELL_H:
        raise ValueError(f"{path}: expected {128 * CELL_H} bytes, found {len(data)}")
    # Bitmap -> character, for printable ASCII only: the log never draws control characters.
    glyphs = {}
    for code in range(32, 127):
        glyphs.setdefault(bytes(data[code * CELL_H:(code + 1) * CELL_H]), chr(code))
    return glyphs


def read_ppm(path):
    """Returns (width, height, rgb bytes) of a binary (P6, maxval 255) PPM."""
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos) + 1
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    pos += 1  # Exactly one whitespace byte separates the header from the pixels.
    if fields[0] != b"P6" or int(fields[3]) != 255:
        raise ValueError(f"{path}: not an 8-bit P6 PPM ({fields[0]!r}, maxval {fields[3]!r})")
    width, height = int(fields[1]), int(fields[2])
    pixels = data[pos:pos + width * height * 3]
    if len(pixels) != width * height * 3:
        raise ValueError(f"{path}: truncated: {len(pixels)} of {width * height * 3} pixel bytes")
    return width, height, pixels


def decode_text_screen(width, height, pixels, glyphs, fg=CONSOLE_FG):
    """Reads an 8x16-cell text screen back into characters.

    Returns (rows of text, stats): a cell whose foreground pixels match a glyph exactly becomes
    that character; any other cell with ink becomes U+FFFD and counts as unmatched.
    """
    fg_pixel = bytes(fg)
    stride = width * 3
    rows, ink_cells, matched_cells = [], 0, 0
    for cell_row in range(height // CELL_H):
        line = []
        for cell_col in range(width // CELL_W):
            bitmap = bytearray(CELL_H)
            for y in range(CELL_H):
                base = (cell_row * CELL_H + y) * stride + cell_col * CELL_W * 3
                bits = 0
                for x in range(CELL_W):
                    if pixels[base + x * 3:base + x * 3 + 3] == fg_pixel:
                        bits |= 0x80 >> x
                bitmap[y] = bits
            if not any(bitmap):
                line.append(" ")
                continue
            ink_cells += 1
            character = glyphs.get(bytes(bitmap))
            if character is not None:
                matched_cells += 1
                line.append(character)
            else:
                line.append("\ufffd")
        rows.append("".join(line))
    return rows, {"ink_cells": ink_cells, "matched_cells": matched_cells}


class Qmp:
    """A minimal QMP client over a UNIX socket."""

    def __init__(self, path, timeout):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self.buffer = b""
        greeting = self._read()
        if "QMP" not in greeting:
            raise RuntimeError(f"unexpected QMP greeting {greeting!r}")
        self.execute("qmp_capabilities")

    def _read(self):
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise RuntimeError("QMP socket closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def execute(self, command, **arguments):
        request = {"execute": command}
        if arguments:
            request["arguments"] = arguments
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            reply = self._read()
            if "return" in reply:
                return reply["return"]
            if "error" in reply:
                raise RuntimeError(f"QMP {command}: {reply['error'].get('desc', reply['error'])}")
            # Anything else is an asynchronous event: skip it.

    def close(self):
        self.sock.close()


def parse_ktap(text):
    """Returns (plan_seen, cases[(suite, name, ok, skip)], suites[(name, ok)], errors)."""
    lines = [TIMESTAMP.sub("", line) for line in text.splitlines()]
    cases, suites, errors = [], [], []
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == "KTAP version 1" and not line.startswith(" "))
    except StopIteration:
        return False, cases, suites, ["no top-level 'KTAP version 1' line"]
    plan = re.match(r"^1\.\.(\d+)$", lines[start + 1].strip()) if start + 1 < len(lines) else None
    if not plan:
        errors.append("missing top-level plan line")
    suite, suite_plan, suite_cases = None, None, 0
    for line in lines[start + 2:]:
        m = re.match(r"^    # Subtest: (\S+)", line)
        if m:
            suite, suite_plan, suite_cases = m.group(1), None, 0
            continue
        m = re.match(r"^    1\.\.(\d+)$", line)
        if m:
            suite_plan = int(m.group(1))
            continue
        m = re.match(r"^    (ok|not ok) (\d+) (\S+)(.*)$", line)
        if m:
            suite_cases += 1
            cases.append((suite, m.group(3), m.group(1) == "ok", "# SKIP" in m.group(4)))
            continue
        m = re.match(r"^(ok|not ok) (\d+) (\S+)", line)
        if m:
            if suite_plan is None and "# SKIP" not in line:
                errors.append(f"suite {m.group(3)} has no plan line")
            elif suite_plan is not None and suite_plan != suite_cases:
                errors.append(f"suite {m.group(3)} planned {suite_plan} cases, ran {suite_cases}")
            suites.append((m.group(3), m.group(1) == "ok"))
            suite = None
    if plan and int(plan.group(1)) != len(suites):
        errors.append(f"planned {plan.group(1)} suites, saw {len(suites)}")
    return bool(plan), cases, suites, errors


KTAP_CASE = re.compile(r"^    (ok|not ok) (\d+) (\S+)(.*)$")
KTAP_SUITE_END = re.compile(r"^(ok|not ok) (\d+) (\S+)(.*)$")
KTAP_SKIP = re.compile(r"#\s*SKIP\b(.*)$", re.I)


def ktap_verdicts(text):
    """Accounts for every planned case of every top-level KTAP document in `text`.

    Returns (cases[(suite, name, verdict, detail)], errors) where verdict is "pass", "fail" or
    "skip". `ok N name # SKIP reason` is a skip; a skip without a reason, and `not ok`, fail. The
    kernel prints each suite's case count up front ("# plan: SUITE N", before any case runs), so
    when the run ends early (a panic, a hang, a truncated log) every planned case that never
    reported counts as one failure. A suite the top-level plan promised but no "# plan:" line
    named has an unknown case count and counts as one failure.
    """
    lines = [TIMESTAMP.sub("", line) for line in text.splitlines()]
    starts = [i for i, line in enumerate(lines) if line.strip() == "KTAP version 1" and not line.startswith(" ")]
    if not starts:
        return [], ["no top-level 'KTAP version 1' line"]
    cases, errors = [], []
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(lines)
        _account_document(lines[start + 1:end], cases, errors)
    return cases, errors


def _account_document(lines, cases, errors):
    top = re.match(r"^1\.\.(\d+)$", lines[0].strip()) if lines else None
    if not top:
        errors.append("missing top-level plan line")
    planned = {}     # suite -> case count, from "# plan:" or the suite's own "1..N"
    order = []       # suites in the order they were planned or seen
    reported = {}    # suite -> [(name, verdict, detail)]
    whole_skip = {}  # suite -> reason, for "ok N suite # SKIP reason" without a subtest
    ended = set()
    suite = None

    def know(name):
        if name not in order:
            order.append(name)
            reported[name] = []

    for line in lines[1:]:
        m = re.match(r"^# plan: (\S+) (\d+)$", line)
        if m:
            know(m.group(1))
            planned[m.group(1)] = int(m.group(2))
            continue
        m = re.match(r"^    # Subtest: (\S+)", line)
        if m:
            suite = m.group(1)
            know(suite)
            continue
        m = re.match(r"^    1\.\.(\d+)$", line)
        if m and suite is not None:
            count = int(m.group(1))
            if planned.setdefault(suite, count) != count:
                errors.append(f"suite {suite}: planned {planned[suite]} cases up front, {count} at its start")
            continue
        m = KTAP_CASE.match(line)
        if m and suite is not None:
            skip = KTAP_SKIP.search(m.group(4))
            if m.group(1) == "not ok":
                verdict, detail = "fail", ""
            elif skip and skip.group(1).strip():
                verdict, detail = "skip", skip.group(1).strip()
            elif skip:
                verdict, detail = "fail", "skipped without a reason"
            else:
                verdict, detail = "pass", ""
            reported[suite].append((m.group(3), verdict, detail))
            continue
        m = KTAP_SUITE_END.match(line)
        if m:
            name = m.group(3)
            know(name)
            ended.add(name)
            skip = KTAP_SKIP.search(m.group(4))
            if name != suite and skip:
                whole_skip[name] = skip.group(1).strip()
            elif name != suite:
                errors.append(f"suite {name} ended without starting")
            suite = None

    for name in order:
        count = planned.get(name)
        if name in whole_skip:
            reason = whole_skip[name]
            for number in range(1, (count or 1) + 1):
                case = f"case {number} of {count}" if count else "(case count unknown)"
                if reason:
                    cases.append((name, case, "skip", reason))
                else:
                    cases.append((name, case, "fail", "suite skipped without a reason"))
            continue
        for case, verdict, detail in reported[name]:
            cases.append((name, case, verdict, detail))
        ran = len(reported[name])
        if count is None:
            errors.append(f"suite {name} has no plan line")
            if ran == 0:
                cases.append((name, "(no cases reported)", "fail", "the suite has no plan and reported nothing"))
            continue
        if ran > count:
            errors.append(f"suite {name} planned {count} cases, ran {ran}")
        elif ran < count and name in ended:
            errors.append(f"suite {name} planned {count} cases, ran {ran}")
        for number in range(ran + 1, count + 1):
            cases.append((name, f"case {number} of {count}", "fail", "never reported (the run ended before it)"))
    if top:
        promised = int(top.group(1))
        if len(order) > promised:
            errors.append(f"planned {promised} suites, saw {len(order)}")
        for number in range(len(order) + 1, promised + 1):
            cases.append(("?", f"suite {number} of {promised}", "fail", "never started and no '# plan:' line gave its case count"))
        if len(ended) != promised:
            errors.append(f"planned {promised} suites, {len(ended)} finished")


def record_ktap(result, text, prefix="ktap"):
    """Records each case of the KTAP in `text` as a check or a skip; returns (cases, errors)."""
    cases, errors = ktap_verdicts(text)
    for suite, name, verdict, detail in cases:
        what = f"{prefix} {suite}.{name}"
        if verdict == "skip":
            result.skip(what, detail)
        else:
            result.check(verdict == "pass", what + (f": {detail}" if detail else ""))
    return cases, errors


def scenario_ktap(result, filter_="all", timeout=900, memory="512M", cpu=None, label="ktap"):
    """selftest=FILTER on one machine: every planned case is a test (see ktap_verdicts)."""
    extra = ("-cpu", cpu) if cpu else ()
    m = Machine(label + "-" + filter_.replace(",", "_"), f"selftest={filter_} panic=exit", memory=memory, extra=extra)
    code = m.wait_exit(timeout)
    result.log = m.output
    cases, errors = record_ktap(result, m.output, label)
    result.check(code is not None, f"{label}: finished before the timeout ({timeout} s)")
    result.check("KERNEL PANIC" not in m.output, f"{label}: no kernel panic")
    result.check(not m.triple_faulted(), f"{label}: no triple fault")
    result.check(not errors, f"{label}: well-formed KTAP" + (": " + "; ".join(errors) if errors else ""))
    result.check(len(cases) > 0, f"{label}: at least one case ran")
    result.check(code == EXIT_SELFTEST_PASS, f"{label}: exit status says pass (got {code})")
    return m


# The memory/CPU matrix of `make test`: memory-size and CPU-feature bugs cannot hide behind one
# machine. 64 MiB is about the least the kernel and its initramfs boot in; 5 GiB puts RAM above
# 4 GiB (q35 splits it at 2 GiB and resumes at 4 GiB). qemu64 has no 1 GiB pages, SMEP or SMAP;
# max has all three, so the direct map uses 1 GiB pages.
KTAP_MATRIX = [("64M", "qemu64"), ("64M", "max"), ("5G", "qemu64"), ("5G", "max")]


def scenario_ktap_matrix(result, memory, cpu, filter_="all"):
    label = f"ktap-{memory}-{cpu}"
    m = scenario_ktap(result, filter_, timeout=900, memory=memory, cpu=cpu, label=label)
    direct = re.search(r"(\d+) MiB direct-mapped", m.output)
    megabytes = {"64M": 64, "5G": 5120}[memory]
    # A little RAM is firmware's (and the PCI hole's), so the kernel maps a bit less than -m.
    result.check(direct is not None and megabytes * 0.9 <= int(direct.group(1)) <= megabytes,
                 f"{label}: about {megabytes} MiB of RAM is direct-mapped (got {direct.group(1) if direct else 'no report'})")
    protections = "SMEP on, SMAP on" if cpu == "max" else "SMEP unsupported, SMAP unsupported"
    result.check(f"cpu: protections: NX on, WP on, {protections}" in m.output, f"{label}: {protections}")


def scenario_selftest_panic(result):
    """The harness's own check on a real boot: a panic in the middle of the selftests
    (inject_panic's second case) must count every planned case that never reported as failed,
    including whole suites planned after it, from the kernel's up-front "# plan:" lines."""
    m = Machine("selftest-panic", "selftest=bump,inject_panic,timers,boot panic=exit")
    code = m.wait_exit(300)
    result.log = m.output
    result.check(code == EXIT_PANIC and "KERNEL PANIC: selftest: injected panic" in m.output,
                 f"selftest panic: the injected panic ends the run (status {code})")
    plans = {name: int(n) for name, n in re.findall(r"^(?:\[\s*\d+\.\d+\] )?# plan: (\S+) (\d+)$", m.output, re.M)}
    result.check(sorted(plans) == ["boot", "bump", "inject_panic", "timers"] and all(plans.values()),
                 f"selftest panic: the kernel plans every selected suite up front ({plans})")
    cases, _ = ktap_verdicts(m.output)
    tally = {}
    for suite, _, verdict, _ in cases:
        tally.setdefault(suite, {"pass": 0, "fail": 0, "skip": 0})[verdict] += 1
    expected = {"bump": {"pass": plans.get("bump", -1), "fail": 0, "skip": 0},
                "inject_panic": {"pass": 1, "fail": 2, "skip": 0},
                "timers": {"pass": 0, "fail": plans.get("timers", -1), "skip": 0},
                "boot": {"pass": 0, "fail": plans.get("boot", -1), "skip": 0}}
    result.check(tally == expected, f"selftest panic: unreported cases count as failed (got {tally}, expected {expected})")


def scenario_prompt(result):
    m = Machine("prompt", "panic=exit loglevel=6")
    try:
        ok = result.check(m.wait_for(r"^homeos> ", 300) is not None, "prompt: boots to the kernel prompt")
        text = m.output
        result.check(re.search(r"mem \[0x[0-9a-f]+-0x[0-9a-f]+\] available", text) is not None, "boot: prints the memory map")
        result.check(re.search(r"cpu: .*family", text) is not None and "cpu: features:" in text, "boot: prints CPU features")
        result.check('boot: command line "panic=exit loglevel=6"' in text, "boot: prints the command line")
        result.check(re.search(r"boot: init complete \d+\.\d+ ms after the bootloader hand-off", text) is not None,
                     "boot: prints the boot time")
        result.check(re.search(r"clock: TSC \d+\.\d+ MHz \(calibrated against (hpet|pit)", text) is not None,
                     "boot: calibrates the TSC")
        result.check(re.search(r"timer: LAPIC timer \d+ ticks/ms", text) is not None, "boot: calibrates the LAPIC timer")
        result.check("acpi: MADT:" in text and "ioapic: id" in text, "boot: parses ACPI and sets up the IOAPIC")
        result.check(re.search(r"fbcon: \d+x\d+ text console", text) is not None, "boot: framebuffer console")
        if not ok:
            return
        for command, expect, what in [
            ("help", r"selftest <suite>", "prompt: help lists commands"),
            ("mem", r"kmalloc: \d+ bytes in use", "prompt: mem shows allocator statistics"),
            ("dmesg", r"\[\s*0\.\d+\] Home OS 0\.1 \(x86_64\) booting", "prompt: dmesg replays the log ring"),
            ("uptime", r"up \d+\.\d+ s, \d+ timer ticks", "prompt: uptime advances with timer ticks"),
            ("suites", r"exceptions\s+\d+ cases", "prompt: suites lists selftests"),
            ("selftest timers", r"# Subtest: timers[\s\S]*?ok 1 timers", "prompt: selftest runs a suite from the prompt"),
            ("callers", r"allocations\s+\d+ bytes", "prompt: callers shows kmalloc by caller"),
            ("nonsense", r"unknown command 'nonsense'", "prompt: unknown commands are refused"),
        ]:
            start = len(m.output)
            m.send(command + "\r")
            found = m.wait_for(r"(?s).{%d}.*?%s" % (start, expect), 120) is not None and m.wait_for(r"(?s).{%d}.*homeos> $" % start, 120)
            result.check(bool(found), what)
        m.send("poweroff\r")
        result.check(m.wait_exit(60) is not None, "prompt: poweroff ends the machine")
    finally:
        m.kill()
        result.log = m.output


def scenario_fbcon(result):
    """Boots to the prompt, screenshots the framebuffer through QMP and reads the text back."""
    qmp_dir = tempfile.mkdtemp(prefix="homeos-qmp-")  # Short path: UNIX socket names are limited.
    qmp_path = os.path.join(qmp_dir, "qmp.sock")
    ppm = os.path.join(BUILD, "test-iso", "fbcon.ppm")
    m = Machine("fbcon", "panic=exit", extra=["-qmp", f"unix:{qmp_path},server=on,wait=off"])
    qmp = None
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "fbcon: boots to the kernel prompt"):
            return
        glyphs = load_grub_font()
        qmp = Qmp(qmp_path, 60)
        # The prompt reaches the serial port just before the framebuffer (same lock, serial first),
        # so a screenshot taken at once may miss it: take another until it shows, a bounded number.
        for attempt in range(20):
            if os.path.exists(ppm):
                os.unlink(ppm)
            qmp.execute("screendump", filename=ppm)  # Replies once the file is written.
            width, height, pixels = read_ppm(ppm)
            if (width, height) != (FB_WIDTH, FB_HEIGHT):
                break
            rows, stats = decode_text_screen(width, height, pixels, glyphs)
            used = [i for i, row in enumerate(rows) if row.strip()]
            if used and rows[used[-1]].rstrip() == "homeos>":
                break
        result.check(os.path.getsize(ppm) > 0, "fbcon: QMP screendump writes a screenshot")
        if not result.check((width, height) == (FB_WIDTH, FB_HEIGHT),
                            f"fbcon: screenshot is {FB_WIDTH}x{FB_HEIGHT} (got {width}x{height})"):
            return
        fg, bg = bytes(CONSOLE_FG), bytes(CONSOLE_BG)
        colours = {}
        for i in range(0, len(pixels), 3):
            colour = pixels[i:i + 3]
            colours[colour] = colours.get(colour, 0) + 1
        result.check(colours.get(fg, 0) > 1000, f"fbcon: screenshot has console-foreground pixels ({colours.get(fg, 0)})")
        others = {c.hex(): n for c, n in colours.items() if c not in (fg, bg)}
        result.check(not others, "fbcon: screenshot holds only the console's two colours"
                     + (f" (also {sorted(others.items(), key=lambda kv: -kv[1])[:4]})" if others else ""))
        result.check(stats["ink_cells"] > 0 and stats["matched_cells"] == stats["ink_cells"],
                     f"fbcon: every inked 8x16 cell is a font glyph ({stats['matched_cells']} of {stats['ink_cells']})")
        top = min(40, used[-1] + 1 if used else 0)
        inked = sum(1 for row in rows[:top] if row.strip())
        result.check(used and used[0] == 0 and top >= 10 and inked * 4 >= top * 3,
                     f"fbcon: the top text rows carry text ({inked} of the first {top} rows)")
        scrolled = bool(used) and used[-1] == len(rows) - 1  # Once it scrolls, the prompt sits on the last row.
        first_ok = re.match(r"\[\s*\d+\.\d+\] (Home OS 0\.1 \(x86_64\) booting|fbcon: \d+x\d+ text console)",
                            rows[0]) is not None
        result.check(scrolled or first_ok, f"fbcon: the first text row is the start of the log ({rows[0].rstrip()!r})")
        strays = [row.rstrip() for row in rows if row.strip() and row.rstrip() not in m.output]
        result.check(not strays, "fbcon: every text row on screen is serial log text"
                     + (f" (not in the log: {strays[:3]!r})" if strays else ""))
        result.check(bool(used) and rows[used[-1]].rstrip() == "homeos>",
                     f"fbcon: screenshot shows the kernel prompt (last row {rows[used[-1]].rstrip() if used else ''!r})")
    finally:
        if qmp:
            qmp.close()
        m.kill()
        result.log = m.output
        try:
            os.unlink(qmp_path)
        except OSError:
            pass
        os.rmdir(qmp_dir)


BAD_INPUT = [
    ("mb2-corrupt-tag", r"KERNEL PANIC: multiboot2: .*(size|past|exceeds|beyond|overflow)", "a corrupt multiboot2 tag"),
    ("mb2-missing-mmap", r"KERNEL PANIC: multiboot2: no memory map tag", "a missing multiboot2 memory map tag"),
    ("mmap-empty", r"KERNEL PANIC: .*memory map (is empty|has no available RAM)", "an empty memory map"),
    ("mmap-overlap", r"KERNEL PANIC: .*memory map entries \d+ and \d+ overlap", "an overlapping memory map"),
    ("acpi-checksum", r"KERNEL PANIC: ACPI: .*APIC.*checksum|KERNEL PANIC: ACPI: MADT checksum", "a broken ACPI checksum"),
    ("stack-overflow", r"KERNEL PANIC: kernel stack overflow: #DF on the guard page of the boot stack", "a kernel stack overflow"),
    ("irq-nesting", r"KERNEL PANIC: interrupt nesting guard: trap depth 9 exceeds 8", "runaway interrupt nesting"),
]


def drive(m, result, command, expect, what, timeout=120):
    """Sends one prompt command and checks that `expect` (a regex) appears before the next prompt."""
    start = len(m.output)
    m.send(command + "\r")
    done = m.wait_for(r"(?s).{%d}.*homeos> $" % start, timeout)
    found = done is not None and re.search(expect, m.output[start:]) is not None
    result.check(found, what)
    return m.output[start:]


def scenario_virtio_rng(result):
    """A QEMU virtio-rng device: autoload by modalias, module selftests, rmmod/insmod rebinding."""
    m = Machine("virtio-rng", "panic=exit virtio_rng.selftest=1", extra=("-device", "virtio-rng-pci"))
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "virtio-rng: boots to the prompt"):
            return
        text = m.output
        result.check(re.search(r"module: autoloading virtio_rng for 00:\w\w\.\d \(pci:v00001AF4d00001005", text) is not None,
                     "autoload: the device's modalias loads virtio_rng from modules.alias")
        result.check(re.search(r"\[virtio_rng\] virtio-rng: 1af4:1005 queue size \d+, read 64 bytes of entropy: [0-9a-f]{16}", text)
                     is not None, "virtio-rng: the driver reads entropy from the device")
        result.check(re.search(r"pci: 00:\w\w\.\d bound to virtio_rng", text) is not None, "pci: the device is bound to the driver")
        cases, errors = record_ktap(result, text, "module ktap")
        result.check(any(suite == "virtio_rng" for suite, _, _, _ in cases) and not errors,
                     "module selftests: selftest=1 prints KTAP" + (": " + "; ".join(errors) if errors else ""))
        drive(m, result, "lsmod", r"virtio_rng\s+\d+\s+0", "lsmod: lists virtio_rng")
        drive(m, result, "suites", r"virtio_rng\s+2 cases", "suites: module suites appear in the kernel's list")
        drive(m, result, "kallsyms", r"t virtio_rng_probe\s+\[virtio_rng\]", "kallsyms: lists module symbols")
        drive(m, result, "rmmod virtio_rng", r"removed after \d+ bytes[\s\S]*unbound from virtio_rng[\s\S]*rmmod: virtio_rng unloaded",
              "rmmod: the driver unbinds and the module unloads")
        drive(m, result, "lsmod", r"^(?![\s\S]*virtio_rng)", "lsmod: virtio_rng is gone")
        drive(m, result, "insmod virtio_rng", r"bound to virtio_rng[\s\S]*insmod: virtio_rng loaded", "insmod: the driver binds again")
        m.send("poweroff\r")
        m.wait_exit(60)
    finally:
        m.kill()
        result.log = m.output


def scenario_module_prompt(result):
    """insmod/rmmod/lsmod/modinfo at the prompt: dependencies, use counts, refusals."""
    m = Machine("module-prompt", "panic=exit")
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "modules: boots to the prompt"):
            return
        result.check(re.search(r"initramfs: \d+ KiB compressed -> \d+ KiB, \d+ files", m.output) is not None,
                     "initramfs: unpacked at boot")
        drive(m, result, "ls /lib/modules", r"hello\.ko[\s\S]*modules\.dep", "ls: the initramfs root holds the modules")
        drive(m, result, "modinfo hello", r"(?=[\s\S]*license:\s+MIT)(?=[\s\S]*abi:\s+2\.0)(?=[\s\S]*parm:\s+count:)", "modinfo: shows .modinfo")
        drive(m, result, "insmod hello_user", r"\[hello\] hello from a module[\s\S]*hello_add\(40, 2\) = 42[\s\S]*insmod: hello_user loaded",
              "insmod: loads hello first (modules.dep), then hello_user")
        drive(m, result, "lsmod", r"hello\s+\d+\s+1\s+hello_user", "lsmod: hello is used by hello_user")
        drive(m, result, "rmmod hello", r"rmmod: hello: EBUSY", "rmmod: a module in use is refused with EBUSY")
        drive(m, result, "rmmod hello_user", r"destructor ran[\s\S]*rmmod: hello_user unloaded", "rmmod: C++ destructors run at unload")
        drive(m, result, "rmmod hello", r"\[hello\] goodbye[\s\S]*rmmod: hello unloaded", "rmmod: module_exit runs")
        drive(m, result, "insmod hello count=500", r"parameter 'count': outside[\s\S]*insmod: hello: EINVAL", "insmod: parameters are range-checked")
        drive(m, result, "insmod hello count=7 greeting=hi", r"\[hello\] hi from a module: count=7", "insmod: parameters reach the module")
        drive(m, result, "insmod nosuch", r"insmod: nosuch: ENOENT", "insmod: a missing module is ENOENT")
        m.send("poweroff\r")
        m.wait_exit(60)
    finally:
        m.kill()
        result.log = m.output


def scenario_out_of_tree(result):
    """A third party builds a module outside the tree with abi/ alone, packages it, installs the
    package into an initramfs with mkinitramfs, and the kernel loads it at boot."""
    import glob
    import shutil
    import tempfile
    work = tempfile.mkdtemp(prefix="homeos-oot-")
    try:
        source = os.path.join(work, "greeter")
        shutil.copytree(os.path.join(ROOT, "tests", "oot", "greeter"), source)
        build = subprocess.run(["make", "-s", "-C", source, "-f", os.path.join(ROOT, "abi", "module.mk"), "package"],
                               capture_output=True, text=True)
        ok = result.check(build.returncode == 0, "out-of-tree: make -C <dir> -f abi/module.mk package builds the module")
        if not ok:
            result.log = build.stdout + build.stderr
            return
        manifest = os.path.join(source, "build", "greeter.manifest")
        text = open(manifest).read()
        result.check(all(f in text for f in ("name=greeter", "version=2.1", "abi=2.0", "file=greeter.ko.zst", "sha256=")),
                     "out-of-tree: the package manifest names the module, version, ABI and sha256")
        tool = os.path.join(BUILD, "tools", "mkinitramfs")
        modules = sorted(glob.glob(os.path.join(BUILD, "modules", "*.ko")))
        image = os.path.join(BUILD, "test-iso", "oot-initramfs.cpio.zst")
        args = [tool, "-o", image, "--kernel-abi", "2.0", "--package", manifest, "--load", "greeter"]
        for module in modules:
            args += ["--module", module]
        made = subprocess.run(args, capture_output=True, text=True)
        if not result.check(made.returncode == 0, "out-of-tree: mkinitramfs --package installs it"):
            result.log = made.stderr
            return
        # A tampered package is refused.
        with open(os.path.join(source, "build", "greeter.ko.zst"), "r+b") as f:
            f.seek(20)
            byte = f.read(1)
            f.seek(20)
            f.write(bytes([byte[0] ^ 0xFF]))
        tampered = subprocess.run(args[:1] + ["-o", image + ".bad"] + args[3:], capture_output=True, text=True)
        result.check(tampered.returncode != 0 and "sha256" in tampered.stderr, "out-of-tree: a tampered package is refused (sha256)")
        newer = subprocess.run([tool, "-o", image + ".bad", "--kernel-abi", "2.0", "--package", manifest.replace("greeter.manifest", "x")],
                               capture_output=True, text=True)
        result.check(newer.returncode != 0, "out-of-tree: a missing manifest is refused")

        m = Machine("out-of-tree", "panic=exit", initramfs=image)
        try:
            if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "out-of-tree: boots to the prompt"):
                return
            result.check(re.search(r"\[greeter\] greetings, world, from out of tree \(ABI 2\.0\)", m.output) is not None,
                         "out-of-tree: the packaged module loads at boot and runs")
            drive(m, result, "ls /lib/modules", r"greeter\.ko\.zst", "out-of-tree: installed compressed as greeter.ko.zst")
            drive(m, result, "lsmod", r"greeter\s+\d+\s+0", "out-of-tree: lsmod lists greeter")
            drive(m, result, "rmmod greeter", r"\[greeter\] greeter leaving", "out-of-tree: the module unloads")
            m.send("poweroff\r")
            m.wait_exit(60)
        finally:
            m.kill()
            result.log = m.output
    finally:
        shutil.rmtree(work, ignore_errors=True)


def scenario_no_hpet(result):
    """Without an HPET the TSC and LAPIC timer calibrate against the PIT, and timers still work."""
    m = Machine("no-hpet", "panic=exit selftest=timers", extra=("-machine", "hpet=off"))
    code = m.wait_exit(300)
    result.log = m.output
    result.check(re.search(r"clock: TSC \d+\.\d+ MHz \(calibrated against pit", m.output) is not None,
                 "no HPET: the clock calibrates against the PIT")
    cases, errors = record_ktap(result, m.output, "no HPET")
    result.check(len(cases) > 0 and not errors and code == EXIT_SELFTEST_PASS,
                 f"no HPET: the timer selftests ran and passed ({len(cases)} cases{': ' + '; '.join(errors) if errors else ''})")


def scenario_triple_fault_detected(result):
    """The harness's own check: a triple fault is recognised as such, not taken for a pass."""
    m = Machine("inject-triple-fault", "inject=triple-fault panic=exit")
    code = m.wait_exit(300)
    result.log = m.output
    result.check(m.triple_faulted(), "harness: detects a triple fault (QEMU's reset log)")
    result.check(code not in (EXIT_SELFTEST_PASS, EXIT_PANIC), f"harness: a triple fault is not a pass or a panic (status {code})")


def scenario_loglevel(result):
    """loglevel=4 keeps info messages off the console but not out of the ring."""
    m = Machine("loglevel", "panic=exit loglevel=4")
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "loglevel: boots to the prompt"):
            return
        result.check("clock: TSC" not in m.output, "loglevel: loglevel=4 hides info messages on the console")
        start = len(m.output)
        m.send("dmesg\r")
        found = m.wait_for(r"(?s).{%d}.*clock: TSC.*homeos> $" % start, 120)
        result.check(found is not None, "loglevel: dmesg still has the info messages")
        m.send("poweroff\r")
        m.wait_exit(60)
    finally:
        m.kill()
        result.log = m.output


def scenario_bad_input(result, inject, pattern, what):
    m = Machine("inject-" + inject, f"inject={inject} panic=exit")
    code = m.wait_exit(300)
    result.log = m.output
    result.check(re.search(pattern, m.output) is not None, f"bad input: {what} ends in a clear panic")
    result.check(code == EXIT_PANIC, f"bad input: {what} exits with the panic status (got {code})")
    result.check(not m.triple_faulted(), f"bad input: {what} causes no triple fault")


def scenario_bench(result):
    m = Machine("bench", "panic=exit loglevel=5 bench=1")
    try:
        found = m.wait_for(r"boot: init complete (\d+\.\d+) ms", 300)
        if result.check(found is not None, "bench: boot completes"):
            print(f"BENCH boot_to_init_ms {found.group(1)} ms (TCG, GRUB hand-off to end of init, TSC)")
        if result.check(m.wait_for(r"^BENCH end", 600) is not None, "bench: in-kernel benchmarks finish"):
            for line in m.output.splitlines():
                if line.startswith("BENCH ") and "begin" not in line and "end" not in line:
                    print(line)
    finally:
        m.kill()
        result.log = m.output


def load_scenario_plugins(add, args):
    """Scenario files in tests/qemu/scenarios/*.py each define register(add, args), where
    add(name, function, extra_args) queues a scenario exactly as the built-in ones are. They import
    this module as `harness` for Machine, Result, record_ktap (every planned KTAP case as a check or
    a skip; prefer it to the older parse_ktap, which neither counts unreported cases nor judges
    skips) and the exit codes."""
    import importlib.util
    sys.modules.setdefault("harness", sys.modules[__name__])
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "scenarios")
    for path in sorted(glob.glob(os.path.join(folder, "*.py"))):
        spec = importlib.util.spec_from_file_location("scenario_" + os.path.basename(path)[:-3], path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.register(add, args)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", help="run one scenario (ktap, ktap-64M-qemu64, ..., prompt, fbcon, inject-NAME)")
    parser.add_argument("--suite", default="all", help="selftest filter for the ktap scenario")
    parser.add_argument("--bench", action="store_true")
    parser.add_argument("--jobs", type=int, default=2)
    args = parser.parse_args()
    # Only this run's result may be read: a stale summary goes before anything can fail.
    summary = os.path.join(BUILD, "results", "qemu.json")
    os.makedirs(os.path.dirname(summary), exist_ok=True)
    if os.path.exists(summary):
        os.unlink(summary)

    scenarios = []
    if args.bench:
        scenarios.append(("bench", scenario_bench, ()))
    else:
        # The matrix replaces a single selftest=all boot; `--only ktap` is still the quick 512 MiB one.
        if args.only == "ktap":
            scenarios.append(("ktap", scenario_ktap, (args.suite,)))
        for memory, cpu in KTAP_MATRIX:
            scenarios.append((f"ktap-{memory}-{cpu}", scenario_ktap_matrix, (memory, cpu, args.suite)))
        scenarios.append(("prompt", scenario_prompt, ()))
        scenarios.append(("selftest-panic", scenario_selftest_panic, ()))
        scenarios.append(("loglevel", scenario_loglevel, ()))
        scenarios.append(("no-hpet", scenario_no_hpet, ()))
        scenarios.append(("triple-fault", scenario_triple_fault_detected, ()))
        scenarios.append(("virtio-rng", scenario_virtio_rng, ()))
        scenarios.append(("module-prompt", scenario_module_prompt, ()))
        scenarios.append(("out-of-tree", scenario_out_of_tree, ()))
        scenarios.append(("fbcon", scenario_fbcon, ()))
        for inject, pattern, what in BAD_INPUT:
            scenarios.append(("inject-" + inject, scenario_bad_input, (inject, pattern, what)))
    load_scenario_plugins(lambda name, function, extra=(): scenarios.append((name, function, tuple(extra))), args)
    if args.only:
        scenarios = [s for s in scenarios if s[0] == args.only]

    # ISOs first, serially: grub-mkrescue is not safe to run twice at once in one staging dir.
    def run(entry):
        name, function, extra = entry
        result = Result(name)
        try:
            function(result, *extra)
        except Exception as error:  # A harness bug is a failure, not a crash of the whole run.
            result.check(False, f"{name}: harness error {error!r}")
        if not (result.passed or result.failed or result.skipped):
            result.check(False, f"{name}: the scenario recorded no result")
        return result

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        results = list(pool.map(run, scenarios))

    passed = failed = skipped = 0
    for result in results:
        for what in result.passed:
            print(f"PASS {what}")
        for what in result.skipped:
            print(f"SKIP {what}")
        for what in result.failed:
            print(f"FAIL {what}")
        if result.failed:
            print(f"---- serial log tail for {result.name} ----")
            print("\n".join(result.log.splitlines()[-60:]))
            print("---- end ----")
        passed += len(result.passed)
        failed += len(result.failed)
        skipped += len(result.skipped)
    if not results:
        print(f"FAIL no scenario matches --only {args.only}")
        failed += 1
    with open(summary, "w") as f:
        json.dump({"passed": passed, "failed": failed, "skipped": skipped}, f)
    print(f"qemu: {passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

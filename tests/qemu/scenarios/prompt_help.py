"""`help` at the prompt prints its whole list: every command from `help` through `poweroff`,
with nothing cut (it is longer than any one print buffer) and no truncation mark."""
import re

import harness

# Every command `help` must list, in order, each at the start of its line.
COMMANDS = ["help", "mem", "callers", "dmesg", "cpu", "uptime", "suites", "selftest", "lsmod", "insmod",
            "rmmod", "modinfo", "kallsyms", "ls", "poweroff"]


def scenario_prompt_help(result):
    m = harness.Machine("prompt-help", "panic=exit")
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "prompt-help: boots to the prompt"):
            return
        start = len(m.output)
        m.send("help\n")
        # The list ends with "poweroff, reboot" and then the next prompt.
        found = m.wait_for(r"(?s).{%d}.*commands:\n.*\n  poweroff, reboot\n.*homeos> " % start, 60)
        if not result.check(found is not None, "prompt-help: help prints through its last line (poweroff, reboot)"):
            return
        text = m.output[start:]
        listing = text[text.index("commands:"):text.index("poweroff, reboot")]
        names = [match.group(1) for match in re.finditer(r"^  ([a-z]+)", listing + "poweroff", re.M)]
        result.check(names == COMMANDS, f"prompt-help: help lists every command in order (got {names})")
        insmod = re.search(r"^  insmod <name> \[k=v\.\.\.\]\s+load /lib/modules/<name>\.ko and its dependencies$", text, re.M)
        result.check(insmod is not None, "prompt-help: the insmod line is whole")
        result.check("[truncated]" not in text, "prompt-help: nothing is marked truncated")
    finally:
        m.kill()
        result.log = m.output


def register(add, args):
    if not args.bench:
        add("prompt-help", scenario_prompt_help)

"""At the prompt, each refusal prints its own reason: the reason travels in the returned Error, so
a command never shows an earlier command's reason, and a parameter error says which check failed.

  insmod hello count=500  ->  insmod: hello: EINVAL (outside the parameter's allowed range)
  rmmod hello (in use)    ->  rmmod: hello: EBUSY (in use by other modules)
  insmod nosuch           ->  insmod: nosuch: ENOENT (not found in /lib/modules), not the EBUSY reason
  rmmod nosuch            ->  rmmod: nosuch: ENOENT (not loaded)
"""
import re

import harness


def scenario_module_errors(result):
    m = harness.Machine("module-errors", "panic=exit")
    try:
        if not result.check(m.wait_for(r"^homeos> ", 300) is not None, "module-errors: boots to the prompt"):
            return
        out = harness.drive(m, result, "insmod hello count=500",
                            r"insmod: hello: EINVAL \(outside the parameter's allowed range\)\r?\n",
                            "insmod: a parameter error prints the parameter check that failed")
        result.check("EINVAL ()" not in out, "insmod: a parameter error never prints an empty reason")
        # A refusal with a reason (EBUSY), then one from another layer (module_service): the second
        # must not show the first's reason, as it did when the reason sat in a global.
        harness.drive(m, result, "insmod hello_user", r"insmod: hello_user loaded", "insmod: hello_user loads with hello")
        harness.drive(m, result, "rmmod hello", r"rmmod: hello: EBUSY \(in use by other modules\)\r?\n",
                      "rmmod: a module in use prints why")
        out = harness.drive(m, result, "insmod nosuch", r"insmod: nosuch: ENOENT \(not found in /lib/modules\)\r?\n",
                            "insmod: a missing module prints its own reason")
        result.check("in use" not in out and "parameter" not in out, "insmod: an earlier command's reason is not repeated")
        harness.drive(m, result, "rmmod hello_user", r"rmmod: hello_user unloaded", "rmmod: hello_user unloads")
        harness.drive(m, result, "rmmod hello", r"rmmod: hello unloaded", "rmmod: hello unloads")
        harness.drive(m, result, "rmmod nosuch", r"rmmod: nosuch: ENOENT \(not loaded\)\r?\n", "rmmod: an unknown module says so")
        out = harness.drive(m, result, "insmod hello", r"insmod: hello loaded", "insmod: a good load still works after refusals")
        result.check(re.search(r"insmod: hello: E", out) is None, "insmod: a success prints no stale reason")
        m.send("poweroff\r")
        m.wait_exit(60)
    finally:
        m.kill()
        result.log = m.output


def register(add, args):
    if not args.bench:
        add("module-errors", scenario_module_errors)

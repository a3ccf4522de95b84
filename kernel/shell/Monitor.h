#pragma once
// The kernel prompt on the serial console: a small monitor for inspecting a running kernel until
// userland's shell arrives. Commands: help, mem, callers, dmesg, cpu, uptime, suites,
// selftest <suite|all>, poweroff, reboot.
namespace monitor {
[[noreturn]] void run();
// Runs one command line; returns false for an unknown command. Exposed for the self-tests.
bool execute(const char* line);
}

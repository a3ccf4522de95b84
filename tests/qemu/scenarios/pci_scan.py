"""The PCI scan finds what the machine has: a device behind a PCIe root port (a bridge to bus 1),
both functions of a multi-function device, and nothing twice. The scan follows bridges and
probes functions 1-7 only on multi-function devices, so these are the cases it could miss."""
import re

import harness

TOPOLOGY = ("-device", "pcie-root-port,id=rp1,bus=pcie.0,chassis=1,addr=0x6",
            "-device", "virtio-rng-pci,bus=rp1,addr=0x0",
            "-device", "virtio-rng-pci,multifunction=on,addr=0x5.0",
            "-device", "virtio-rng-pci,addr=0x5.1")


def scenario_pci_scan(result):
    m = harness.Machine("pci-scan", "panic=exit", extra=TOPOLOGY)
    try:
        done = m.wait_for(r"boot: init complete", 300)
        if not result.check(done is not None, "pci-scan: boots"):
            return
        found = re.findall(r"^\[[\s\d.]+\]\s+pci ([0-9a-f]{2}:[0-9a-f]{2}\.\d) ([0-9a-f]{4}):([0-9a-f]{4})", m.output, re.M)
        addresses = [a for a, _, _ in found]
        if not result.check(len(found) >= 8, f"pci-scan: the device list is printed ({len(found)} functions)"):
            return
        result.check(len(addresses) == len(set(addresses)), f"pci-scan: no function listed twice ({addresses})")
        virtio = {a for a, vendor, _ in found if vendor == "1af4"}
        result.check("01:00.0" in virtio, "pci-scan: the device behind the root port (bus 1) is found")
        result.check({"00:05.0", "00:05.1"} <= virtio, "pci-scan: both functions of the multi-function device are found")
        result.check(any(a == "00:06.0" for a in addresses), "pci-scan: the root port itself is found")
        count = re.search(r"pci: (\d+) functions found", m.output)
        result.check(count is not None and int(count.group(1)) == len(found),
                     "pci-scan: the count matches the listed functions")
        # Single-function devices report no phantom functions 1-7.
        result.check(not any(re.match(r"00:0[1-4]\.[1-7]", a) for a in addresses), "pci-scan: no phantom functions")
    finally:
        m.kill()
        result.log = m.output


def register(add, args):
    if not args.bench:
        add("pci-scan", scenario_pci_scan)

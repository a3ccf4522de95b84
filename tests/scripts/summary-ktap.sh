#!/usr/bin/env bash
# The QEMU harness's accounting on canned KTAP: a panic mid-suite fails every planned case that
# never reported, `# SKIP reason` is a skip and a bare `# SKIP` a failure. Exit 0 passes.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tests/qemu/harness_selftest.py -v

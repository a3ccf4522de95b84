# Home OS top-level build. `make run` boots the kernel in QEMU; `make test` runs every test.
# Sources are found by wildcard: drop a .cpp into a folder and it is built.

BUILD      ?= build
Q          ?= @
KCXX       := clang++
HOSTCXX    ?= clang++
LD         := ld.lld
NM         := llvm-nm
PYTHON     ?= python3
QEMU       ?= qemu-system-x86_64
JOBS       ?= 2
# The target architecture. Only kernel/arch/$(ARCH)/ is built; generic code reaches it through
# the interface headers in kernel/arch/*.h, which select the implementation by HOMEOS_ARCH_*.
ARCH       ?= x86_64
ifeq ($(ARCH),x86_64)
ARCH_TARGET := x86_64-pc-linux-gnu
ARCH_CFLAGS := -mno-red-zone -mgeneral-regs-only -mcmodel=kernel -DHOMEOS_ARCH_X86_64
else
$(error ARCH=$(ARCH) is not supported yet; the only architecture is x86_64)
endif
ARCH_DIR   := kernel/arch/$(ARCH)

export BUILD PYTHON QEMU

# ---------------------------------------------------------------------------
# Kernel
# ---------------------------------------------------------------------------
KERNEL_WARNINGS := -Wall -Wextra -Werror -Wthread-safety -Wno-unused-parameter -Wno-invalid-offsetof \
                   -Wno-gnu-statement-expression -Wno-c99-designator
KCXXFLAGS := --target=$(ARCH_TARGET) -std=c++20 -ffreestanding -fno-exceptions -fno-rtti \
             $(ARCH_CFLAGS) -fno-pic -fno-pie -fno-stack-protector \
             -fno-threadsafe-statics -fno-use-cxa-atexit -fno-omit-frame-pointer -fno-asynchronous-unwind-tables \
             -nostdlib -O2 -g $(KERNEL_WARNINGS) -Iinclude -Ikernel -Iabi -I$(BUILD)/abi -DHOMEOS_KERNEL -MMD -MP
KASFLAGS  := --target=$(ARCH_TARGET) -ffreestanding $(ARCH_CFLAGS) -fno-pic -Iinclude -Ikernel -DHOMEOS_KERNEL -MMD -MP -D__ASSEMBLY__

# Generic sources, plus the selected architecture's folder only.
KERNEL_CPP := $(shell find kernel -path kernel/arch -prune -o -name '*.cpp' -print | sort) \
              $(shell find $(ARCH_DIR) -name '*.cpp' | sort)
KERNEL_ASM := $(shell find kernel -path kernel/arch -prune -o -name '*.S' -print | sort) \
              $(shell find $(ARCH_DIR) -name '*.S' | sort)
KERNEL_OBJS := $(KERNEL_CPP:%.cpp=$(BUILD)/%.o) $(KERNEL_ASM:%.S=$(BUILD)/%.o)
LINKER_SCRIPT := $(ARCH_DIR)/linker.ld

KERNEL_ELF := $(BUILD)/homeos.elf
ABI_CRCS   := $(BUILD)/abi/crcs.h

# The CRC header is regenerated whenever abi/ changes; only files that include it rebuild. The
# build fails here if abi/ changed incompatibly against the committed baseline without a bump.
$(ABI_CRCS): $(wildcard abi/homeos/*.h) abi/abi-crc.py abi/baseline.txt
	@mkdir -p $(dir $@)
	$(Q)$(PYTHON) abi/abi-crc.py --check abi/baseline.txt
	$(Q)$(PYTHON) abi/abi-crc.py --header $@
$(KERNEL_OBJS): | $(ABI_CRCS)
ISO        := $(BUILD)/homeos.iso

.PHONY: all kernel iso run test deps unit bench fuzz clean modules initramfs mutate
all: iso

deps:
	$(Q)bash ci/install-deps.sh

$(BUILD)/kernel/%.o: kernel/%.cpp
	@mkdir -p $(dir $@)
	@echo "  KCXX   $<"
	$(Q)$(KCXX) $(KCXXFLAGS) -c $< -o $@

$(BUILD)/kernel/%.o: kernel/%.S
	@mkdir -p $(dir $@)
	@echo "  KAS    $<"
	$(Q)$(KCXX) $(KASFLAGS) -c $< -o $@

# The kernel embeds its own symbol table. Pass 1 links with an empty table; its function
# symbols feed the real table for pass 2. .ksyms sits after .text, so no function moves.
$(BUILD)/ksyms-empty.o: tools/gen-ksyms.py
	@mkdir -p $(BUILD)
	$(Q)$(PYTHON) tools/gen-ksyms.py --empty > $(BUILD)/ksyms-empty.S
	$(Q)$(KCXX) $(KASFLAGS) -c $(BUILD)/ksyms-empty.S -o $@

$(BUILD)/homeos.pass1.elf: $(KERNEL_OBJS) $(BUILD)/ksyms-empty.o $(LINKER_SCRIPT)
	@echo "  LD     $@"
	$(Q)$(LD) -T $(LINKER_SCRIPT) -nostdlib -z max-page-size=4096 -o $@ $(KERNEL_OBJS) $(BUILD)/ksyms-empty.o

$(BUILD)/ksyms.o: $(BUILD)/homeos.pass1.elf tools/gen-ksyms.py
	$(Q)$(NM) -n --defined-only $< | $(PYTHON) tools/gen-ksyms.py > $(BUILD)/ksyms.S
	$(Q)$(KCXX) $(KASFLAGS) -c $(BUILD)/ksyms.S -o $@

$(KERNEL_ELF): $(BUILD)/ksyms.o $(BUILD)/homeos.pass1.elf
	@echo "  LD     $@"
	$(Q)$(LD) -T $(LINKER_SCRIPT) -nostdlib -z max-page-size=4096 -o $@ $(KERNEL_OBJS) $(BUILD)/ksyms.o
	$(Q)$(PYTHON) tools/check-ksyms.py $(BUILD)/homeos.pass1.elf $@

kernel: $(KERNEL_ELF)

# ---------------------------------------------------------------------------
# Modules: every modules/<class>/<name>/ is built with the same SDK third parties use.
# ---------------------------------------------------------------------------
MODULE_DIRS := $(sort $(patsubst %/,%,$(dir $(wildcard modules/*/*/*.c modules/*/*/*.cpp))))
MODULE_NAMES := $(notdir $(MODULE_DIRS))
MODULE_KOS := $(MODULE_NAMES:%=$(BUILD)/modules/%.ko)
ABI_FILES := $(wildcard abi/*.mk abi/*.py abi/homeos/*.h abi/runtime/*.c)

define module_rule
$(BUILD)/modules/$(notdir $(1)).ko: $(wildcard $(1)/*.c $(1)/*.cpp $(1)/*.h $(1)/module.conf) $(ABI_FILES)
	@echo "  MODULE $(notdir $(1))"
	$(Q)$(MAKE) -s --no-print-directory -C $(1) -f $(abspath abi/module.mk) OUT=$(abspath $(BUILD)/modules/obj/$(notdir $(1))) >/dev/null
	$(Q)cp $(BUILD)/modules/obj/$(notdir $(1))/$(notdir $(1)).ko $$@
endef
$(foreach dir,$(MODULE_DIRS),$(eval $(call module_rule,$(dir))))

modules: $(MODULE_KOS)

# The initramfs: the in-tree modules, modules.dep/modules.alias, and etc/modules-load.
INITRAMFS := $(BUILD)/initramfs.cpio.zst
BOOT_MODULES := $(shell grep -v '^\s*\#' initramfs/modules-load 2>/dev/null)
$(INITRAMFS): $(MODULE_KOS) $(BUILD)/tools/mkinitramfs initramfs/modules-load
	@echo "  INITRAMFS $@"
	$(Q)$(BUILD)/tools/mkinitramfs -o $@ $(MODULE_KOS:%=--module %) $(BOOT_MODULES:%=--load %)

initramfs: $(INITRAMFS)

$(ISO): $(KERNEL_ELF) $(INITRAMFS) tools/mkiso.sh
	@echo "  ISO    $@"
	$(Q)bash tools/mkiso.sh $(KERNEL_ELF) $@ "" $(INITRAMFS)

iso: $(ISO)

QEMU_FLAGS := -accel tcg -M q35 -m 512M -smp 1 -no-reboot \
              -device isa-debug-exit,iobase=0xf4,iosize=0x04

run: deps
	$(Q)$(MAKE) -j$(JOBS) iso
	@# poweroff leaves through isa-debug-exit with status 1: that is a clean exit, not a failure.
	$(QEMU) $(QEMU_FLAGS) -cdrom $(ISO) -serial mon:stdio -display none -device virtio-rng-pci $(QEMU_EXTRA) || [ $$? -eq 1 ]

# ---------------------------------------------------------------------------
# Host: unit tests (GoogleTest), benchmarks, fuzzers. Same kernel/lib sources.
# ---------------------------------------------------------------------------
HOST_WARNINGS := -Wall -Wextra -Wno-unused-parameter -Wno-invalid-offsetof -Wno-gnu-statement-expression
HOSTCXXFLAGS := -std=c++20 -O1 -g -Iinclude -Ikernel -Itests/unit -DHOMEOS_HOST $(HOST_WARNINGS) -MMD -MP
SANITIZE := -fsanitize=address,undefined -fno-sanitize-recover=undefined

# The pure libraries: kernel/lib/ and the architecture's own host-testable part, $(ARCH_DIR)/lib/.
LIB_CPP  := $(sort $(shell find kernel/lib $(ARCH_DIR)/lib -name '*.cpp'))
UNIT_CPP := $(sort $(wildcard tests/unit/*.cpp tests/unit/support/*.cpp))
LIB_HOST_OBJS  := $(LIB_CPP:%.cpp=$(BUILD)/host/%.o)
UNIT_OBJS      := $(UNIT_CPP:%.cpp=$(BUILD)/host/%.o)
UNIT_BIN := $(BUILD)/host/unit-tests

$(BUILD)/host/%.o: %.cpp
	@mkdir -p $(dir $@)
	@echo "  HOSTCXX $<"
	$(Q)$(HOSTCXX) $(HOSTCXXFLAGS) $(SANITIZE) -c $< -o $@

# Host tools and test fixtures come from fragments beside their sources; each may add to
# HOST_TOOLS (built before tests run) and UNIT_FIXTURES (objects the unit tests load).
-include initramfs/initramfs.mk
-include $(wildcard tests/*/fixtures.mk)

$(UNIT_BIN): $(LIB_HOST_OBJS) $(UNIT_OBJS) $(UNIT_FIXTURES)
	@echo "  LINK   $@"
	$(Q)$(HOSTCXX) $(SANITIZE) -o $@ $(LIB_HOST_OBJS) $(UNIT_OBJS) -lgtest -lgtest_main -lzstd -lpthread

unit: $(UNIT_BIN)

BENCH_CPP := $(sort $(wildcard tests/bench/*.cpp)) tests/unit/support/HostSupport.cpp tests/unit/support/HostPageProvider.cpp
BENCH_BIN := $(BUILD)/bench/host-bench
$(BUILD)/bench/%.o: %.cpp
	@mkdir -p $(dir $@)
	$(Q)$(HOSTCXX) -std=c++20 -O2 -g -Iinclude -Ikernel -Itests/unit -DHOMEOS_HOST -MMD -MP -c $< -o $@
$(BENCH_BIN): $(LIB_CPP:%.cpp=$(BUILD)/bench/%.o) $(BENCH_CPP:%.cpp=$(BUILD)/bench/%.o)
	$(Q)$(HOSTCXX) -o $@ $^ -lbenchmark -lzstd -lpthread

bench: deps
	$(Q)$(MAKE) -j$(JOBS) $(BENCH_BIN) iso
	$(Q)$(BENCH_BIN) --benchmark_min_time=0.2
	$(Q)$(PYTHON) tests/qemu/harness.py --bench
	$(Q)bash tests/bench/linux-boot.sh

FUZZ_CPP := $(sort $(wildcard tests/fuzz/*.cpp))
FUZZ_BINS := $(FUZZ_CPP:tests/fuzz/%.cpp=$(BUILD)/fuzz/%)
$(BUILD)/fuzz/%: tests/fuzz/%.cpp $(LIB_CPP) tests/unit/support/HostSupport.cpp
	@mkdir -p $(dir $@)
	$(Q)clang++ -std=c++20 -O1 -g -Iinclude -Ikernel -Itests/unit -DHOMEOS_HOST -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	    -o $@ $< $(LIB_CPP) tests/unit/support/HostSupport.cpp -lzstd
FUZZ_SECONDS ?= 60
fuzz: deps
	$(Q)$(MAKE) -j$(JOBS) $(FUZZ_BINS)
	@# New inputs go to $(BUILD)/fuzz/corpus-NAME; the committed seeds in tests/fuzz/corpus/ are read only.
	$(Q)for f in $(FUZZ_BINS); do name=$$(basename $$f); echo "== $$name"; mkdir -p $(BUILD)/fuzz/corpus-$$name; \
	    seeds=tests/fuzz/corpus/$${name#fuzz_}; [ -d $$seeds ] || seeds=; \
	    $$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 $(BUILD)/fuzz/corpus-$$name $$seeds || exit 1; done

# ---------------------------------------------------------------------------
# make test: everything, ending in "N passed, N failed".
# ---------------------------------------------------------------------------
test: deps
	$(Q)$(MAKE) -j$(JOBS) iso unit $(FUZZ_BINS) $(HOST_TOOLS)
	$(Q)bash tests/run-all.sh

# make mutate: break the code on purpose in a scratch copy (never this tree) and check that a
# test notices each mutation; prints killed/survived and fails if any survived. Not in make test.
mutate: deps
	$(Q)$(PYTHON) tests/mutate/mutate.py $(MUTATIONS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

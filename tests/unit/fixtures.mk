# ELF relocatable fixtures for tests/unit/ElfTest.cpp. The tests read them from
# $(BUILD)/fixtures/elf (override with HOMEOS_ELF_FIXTURES).
#   run_*  small code model: relocated into MAP_32BIT host memory and executed.
#   kmod   kernel code model, like a real module: relocated into a buffer, arithmetic checked.
#   kmod_debug  the same with -g, for .rela.debug_* sections that must be skipped.
#   common built with -fcommon to produce a COMMON symbol the loader must refuse.
#   abs32  data fields with R_X86_64_32 and R_X86_64_32S relocations (no C code model emits them).
ELF_FIXTURE_SRC  := tests/unit/fixtures/elf
ELF_FIXTURE_OUT  := $(BUILD)/fixtures/elf
ELF_FIXTURE_BASE := --target=x86_64-pc-linux-gnu -ffreestanding -fno-stack-protector -fno-common -O2 -c
ELF_FIXTURE_KERNEL := -fno-pic -mcmodel=kernel -mno-red-zone -mgeneral-regs-only -fno-asynchronous-unwind-tables
ELF_FIXTURE_RUN    := -fno-pic -mcmodel=small

ELF_FIXTURE_FLAGS_run_calls := $(ELF_FIXTURE_RUN)
ELF_FIXTURE_FLAGS_run_got   := -fPIC -fno-plt -mcmodel=small
ELF_FIXTURE_FLAGS_run_ctor  := $(ELF_FIXTURE_RUN) -std=c++20 -fno-exceptions -fno-rtti -fno-use-cxa-atexit -fno-threadsafe-statics
ELF_FIXTURE_FLAGS_kmod      := $(ELF_FIXTURE_KERNEL)
ELF_FIXTURE_FLAGS_common    := $(ELF_FIXTURE_KERNEL) -fcommon
ELF_FIXTURE_FLAGS_kmod_debug := $(ELF_FIXTURE_KERNEL) -g
ELF_FIXTURE_FLAGS_abs32     := $(ELF_FIXTURE_KERNEL)

ELF_FIXTURES := run_calls run_got run_ctor kmod kmod_debug common abs32

$(ELF_FIXTURE_OUT)/%.o: $(ELF_FIXTURE_SRC)/%.c tests/unit/fixtures.mk
	@mkdir -p $(dir $@)
	@echo "  FIXTURE $@"
	$(Q)clang $(ELF_FIXTURE_BASE) $(ELF_FIXTURE_FLAGS_$*) $< -o $@

$(ELF_FIXTURE_OUT)/%.o: $(ELF_FIXTURE_SRC)/%.cpp tests/unit/fixtures.mk
	@mkdir -p $(dir $@)
	@echo "  FIXTURE $@"
	$(Q)clang++ $(ELF_FIXTURE_BASE) $(ELF_FIXTURE_FLAGS_$*) $< -o $@

UNIT_FIXTURES += $(ELF_FIXTURES:%=$(ELF_FIXTURE_OUT)/%.o)

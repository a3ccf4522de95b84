# Home OS module SDK: build a module out of tree against abi/ alone.
#
#   make -C mymod -f /path/to/homeos/abi/module.mk            # builds mymod/build/<name>.ko
#   make -C mymod -f /path/to/homeos/abi/module.mk package    # adds <name>.ko.zst and <name>.manifest
#
# The module's directory may define, in a file named `module.conf` (make syntax):
# (the package's version comes from the module's MODULE_VERSION, in .modinfo)
#   MODULE  = name            (default: the directory's name)
#   SOURCES = a.c b.cpp       (default: every .c and .cpp in the directory)
# Output goes to $(OUT) (default: ./build).

ABI_DIR := $(patsubst %/,%,$(dir $(abspath $(lastword $(MAKEFILE_LIST)))))
-include module.conf
MODULE  ?= $(notdir $(CURDIR))
SOURCES ?= $(sort $(wildcard *.c *.cpp))
OUT     ?= build
CLANG   ?= clang
LLD     ?= ld.lld
NM      ?= llvm-nm
PYTHON  ?= python3
ZSTD    ?= zstd

# What every module is compiled with: the kernel's code model and register rules, and no headers
# but abi/ and the compiler's freestanding ones. Only the code-generation flags depend on ARCH.
ARCH ?= x86_64
ifeq ($(ARCH),x86_64)
TARGET := x86_64-pc-linux-gnu
ARCH_CFLAGS := -mcmodel=kernel -mno-red-zone -mgeneral-regs-only
else
$(error abi/module.mk: unsupported ARCH=$(ARCH) (x86_64))
endif
MODULE_CFLAGS := --target=$(TARGET) -ffreestanding -nostdlibinc -fno-pic -fno-pie $(ARCH_CFLAGS) \
                 -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables \
                 -fno-omit-frame-pointer -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
                 -I$(ABI_DIR) -DHOMEOS_MODULE_NAME=$(MODULE)
MODULE_CXXFLAGS := $(MODULE_CFLAGS) -std=c++20 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
MODULE_CFLAGS += -std=c11

OBJECTS := $(patsubst %.c,$(OUT)/%.o,$(patsubst %.cpp,$(OUT)/%.o,$(SOURCES))) $(OUT)/homeos-module-runtime.o
# Each source preprocessed as the ABI tool sees it: what the module exports and the declarations
# it was compiled against, for the CRCs of symbols shared between modules.
PREPROCESSED := $(patsubst %.c,$(OUT)/%.i,$(patsubst %.cpp,$(OUT)/%.ii,$(SOURCES)))
EXPORT_CRCS := $(OUT)/$(MODULE).export-crcs.h
KO := $(OUT)/$(MODULE).ko
ABI_HEADERS := $(wildcard $(ABI_DIR)/homeos/*.h)

.PHONY: all package clean
all: $(KO)

$(OUT)/%.i: %.c $(ABI_HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CFLAGS) -DHOMEOS_ABI_TOOL -E -P -MMD -MP -MF $@.d $< -o $@

$(OUT)/%.ii: %.cpp $(ABI_HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CXXFLAGS) -DHOMEOS_ABI_TOOL -E -P -MMD -MP -MF $@.d $< -o $@

# HOMEOS_EXPORT(sym) puts HOMEOS_EXPORT_CRC_<sym> in the export table (struct homeos_export.crc).
$(EXPORT_CRCS): $(PREPROCESSED) $(ABI_DIR)/abi-crc.py
	$(PYTHON) $(ABI_DIR)/abi-crc.py --module-exports $@ $(PREPROCESSED)

$(OUT)/%.o: %.c $(ABI_HEADERS) $(EXPORT_CRCS)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CFLAGS) -include $(EXPORT_CRCS) -MMD -MP -c $< -o $@

$(OUT)/homeos-module-runtime.o: $(ABI_DIR)/runtime/module_runtime.c $(ABI_HEADERS)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CFLAGS) -c $< -o $@

$(OUT)/%.o: %.cpp $(ABI_HEADERS) $(EXPORT_CRCS)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CXXFLAGS) -include $(EXPORT_CRCS) -MMD -MP -c $< -o $@

# Like Linux's modpost: record in __versions the CRC of every symbol the module imports, kernel
# symbols from abi/ and other modules' symbols from the declarations this module was compiled with.
$(KO): $(OBJECTS) $(PREPROCESSED) $(ABI_DIR)/abi-crc.py $(ABI_HEADERS)
	$(LLD) -r -o $(OUT)/$(MODULE).combined.o $(OBJECTS)
	$(NM) -u $(OUT)/$(MODULE).combined.o | awk '{print $$NF}' > $(OUT)/$(MODULE).imports
	$(PYTHON) $(ABI_DIR)/abi-crc.py --versions $$(cat $(OUT)/$(MODULE).imports) --sources $(PREPROCESSED) > $(OUT)/$(MODULE).versions.S
	$(CLANG) --target=$(TARGET) -c $(OUT)/$(MODULE).versions.S -o $(OUT)/$(MODULE).versions.o
	$(LLD) -r -o $@ $(OUT)/$(MODULE).combined.o $(OUT)/$(MODULE).versions.o

# The module's own headers (e.g. another module's interface it imports from) are dependencies too.
-include $(wildcard $(OUT)/*.d)

package: $(KO)
	$(ZSTD) -q -19 -f --check $(KO) -o $(KO).zst
	$(PYTHON) $(ABI_DIR)/package.py $(KO) $(KO).zst > $(OUT)/$(MODULE).manifest

clean:
	rm -rf $(OUT)

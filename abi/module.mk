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
# but abi/ and the compiler's freestanding ones.
MODULE_CFLAGS := --target=x86_64-pc-linux-gnu -ffreestanding -nostdlibinc -fno-pic -fno-pie -mcmodel=kernel \
                 -mno-red-zone -mgeneral-regs-only -fno-common -fno-stack-protector -fno-asynchronous-unwind-tables \
                 -fno-omit-frame-pointer -O2 -g -Wall -Wextra -Werror -Wno-unused-parameter \
                 -I$(ABI_DIR) -DHOMEOS_MODULE_NAME=$(MODULE)
MODULE_CXXFLAGS := $(MODULE_CFLAGS) -std=c++20 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit
MODULE_CFLAGS += -std=c11

OBJECTS := $(patsubst %.c,$(OUT)/%.o,$(patsubst %.cpp,$(OUT)/%.o,$(SOURCES))) $(OUT)/homeos-module-runtime.o
KO := $(OUT)/$(MODULE).ko

.PHONY: all package clean
all: $(KO)

$(OUT)/%.o: %.c $(wildcard $(ABI_DIR)/homeos/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CFLAGS) -c $< -o $@

$(OUT)/homeos-module-runtime.o: $(ABI_DIR)/runtime/module_runtime.c $(ABI_DIR)/homeos/abi.h
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CFLAGS) -c $< -o $@

$(OUT)/%.o: %.cpp $(wildcard $(ABI_DIR)/homeos/*.h)
	@mkdir -p $(dir $@)
	$(CLANG) $(MODULE_CXXFLAGS) -c $< -o $@

# Like Linux's modpost: record the CRC of every kernel symbol the module imports (__versions).
$(KO): $(OBJECTS) $(ABI_DIR)/abi-crc.py $(wildcard $(ABI_DIR)/homeos/*.h)
	$(LLD) -r -o $(OUT)/$(MODULE).combined.o $(OBJECTS)
	$(NM) -u $(OUT)/$(MODULE).combined.o | awk '{print $$NF}' > $(OUT)/$(MODULE).imports
	$(PYTHON) $(ABI_DIR)/abi-crc.py --versions $$(cat $(OUT)/$(MODULE).imports) > $(OUT)/$(MODULE).versions.S
	$(CLANG) --target=x86_64-pc-linux-gnu -c $(OUT)/$(MODULE).versions.S -o $(OUT)/$(MODULE).versions.o
	$(LLD) -r -o $@ $(OUT)/$(MODULE).combined.o $(OUT)/$(MODULE).versions.o

package: $(KO)
	$(ZSTD) -q -19 -f --check $(KO) -o $(KO).zst
	$(PYTHON) $(ABI_DIR)/package.py $(KO) $(KO).zst > $(OUT)/$(MODULE).manifest

clean:
	rm -rf $(OUT)

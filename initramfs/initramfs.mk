# The host tool that builds the initramfs (a zstd-compressed cpio newc archive). Included by the
# top Makefile; it shares kernel/lib/ModInfo.cpp (and the formatter it uses) with the kernel.
MKINITRAMFS := $(BUILD)/tools/mkinitramfs
MKINITRAMFS_SRCS := initramfs/mkinitramfs.cpp kernel/lib/ModInfo.cpp kernel/lib/Format.cpp \
                    tests/unit/support/HostSupport.cpp

$(MKINITRAMFS): $(MKINITRAMFS_SRCS) kernel/lib/ModInfo.h kernel/lib/Format.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCXX $@"
	$(Q)$(HOSTCXX) -std=c++20 -O2 -Wall -Wextra -Iinclude -Ikernel -DHOMEOS_HOST -o $@ $(MKINITRAMFS_SRCS) -lzstd

HOST_TOOLS += $(MKINITRAMFS)

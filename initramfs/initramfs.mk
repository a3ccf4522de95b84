# The host tool that builds the initramfs (a zstd-compressed cpio newc archive). Included by the
# top Makefile; it shares kernel/lib/module/ModInfo.cpp (and the formatter it uses) with the kernel.
MKINITRAMFS := $(BUILD)/tools/mkinitramfs
MKINITRAMFS_SRCS := initramfs/mkinitramfs.cpp kernel/lib/module/ModInfo.cpp kernel/lib/text/Format.cpp \
                    tests/unit/support/HostSupport.cpp

$(MKINITRAMFS): $(MKINITRAMFS_SRCS) kernel/lib/module/ModInfo.h kernel/lib/text/Format.h
	@mkdir -p $(dir $@)
	@echo "  HOSTCXX $@"
	$(Q)$(HOSTCXX) -std=c++20 -O2 -Wall -Wextra -Iinclude -Ikernel -DHOMEOS_HOST -o $@ $(MKINITRAMFS_SRCS) -lzstd

HOST_TOOLS += $(MKINITRAMFS)

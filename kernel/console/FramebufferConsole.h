#pragma once
// The framebuffer text console, when GRUB set a linear RGB mode. It mirrors the serial console.
struct FramebufferInfo;

namespace fbcon {
void init(const FramebufferInfo&);
bool is_active();
}

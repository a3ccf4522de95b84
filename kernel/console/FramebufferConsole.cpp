#include <console/FramebufferConsole.h>
#include <lib/text/BitmapFont.h>
#include <lib/boot/Multiboot2.h>
#include <lib/text/TextConsole.h>
#include <log/Log.h>
#include <mm/MemoryManager.h>
#include <new>

namespace fbcon {

namespace {
alignas(TextConsole) u8 g_storage[sizeof(TextConsole)];
TextConsole* g_console = nullptr;

void write(const char* text, usize length)
{
    if (g_console)
        g_console->write(StringView(text, length));
}
}

void init(const FramebufferInfo& fb)
{
    if (fb.type != Multiboot2::FramebufferRgb || (fb.bpp != 32 && fb.bpp != 24 && fb.bpp != 16)) {
        log_info("fbcon: framebuffer type %u at %u bpp is not supported; serial only", fb.type, fb.bpp);
        return;
    }
    u64 size = (u64)fb.pitch * fb.height;
    auto pixels = mm::map_framebuffer(PhysAddr(fb.address), size);
    if (pixels.is_error()) {
        log_warn("fbcon: cannot map the framebuffer: %s", pixels.error().name());
        return;
    }
    FramebufferSurface surface;
    surface.pixels = (u8*)pixels.value();
    surface.pitch_bytes = fb.pitch;
    surface.width = fb.width;
    surface.height = fb.height;
    surface.bpp = fb.bpp;
    surface.red_shift = fb.red_position;
    surface.green_shift = fb.green_position;
    surface.blue_shift = fb.blue_position;
    surface.red_size = fb.red_size;
    surface.green_size = fb.green_size;
    surface.blue_size = fb.blue_size;
    g_console = new (g_storage) TextConsole(surface, default_font());
    g_console->clear();
    klog::replay_ring(write);
    klog::register_console(write);
    log_info("fbcon: %ux%u text console on a %ux%u framebuffer", g_console->columns(), g_console->rows(), fb.width, fb.height);
}

bool is_active() { return g_console != nullptr; }

} // namespace fbcon

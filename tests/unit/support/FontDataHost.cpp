// The host unit tests' copy of the kernel font (kernel/console/FontData.cpp is kernel-only).
#include <lib/text/BitmapFont.h>

namespace {
#include "/usr/share/grub/ascii.h"
}

static_assert(sizeof(ascii_bitmaps) == 128 * BitmapFont::bytes_per_glyph, "GRUB ascii.h is 128 glyphs of 16 bytes");

const u8* const g_font_8x16 = ascii_bitmaps;
const usize g_font_8x16_glyphs = sizeof(ascii_bitmaps) / BitmapFont::bytes_per_glyph;

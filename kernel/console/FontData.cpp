// The kernel console font: GRUB's 8x16 ASCII bitmaps, compiled in so the console works before any
// file system does. Layout is described in lib/text/BitmapFont.h.
#include <lib/text/BitmapFont.h>

namespace {
#include "/usr/share/grub/ascii.h"
}

static_assert(sizeof(ascii_bitmaps) == 128 * BitmapFont::bytes_per_glyph, "GRUB ascii.h is 128 glyphs of 16 bytes");

const u8* const g_font_8x16 = ascii_bitmaps;
const usize g_font_8x16_glyphs = sizeof(ascii_bitmaps) / BitmapFont::bytes_per_glyph;

#pragma once
// An 8x16 bitmap font: 16 bytes per glyph, one byte per pixel row, most significant bit leftmost.
//
// The kernel's font is GRUB's ascii.h (128 glyphs, ASCII order), compiled in by
// kernel/console/FontData.cpp. Host tests link tests/unit/support/FontDataHost.cpp instead.
// TextConsole takes the font as a parameter, so kernel/lib never needs these symbols itself.
#include <ktl/Types.h>

struct BitmapFont {
    static constexpr u32 glyph_width = 8;
    static constexpr u32 glyph_height = 16;
    static constexpr usize bytes_per_glyph = 16;

    const u8* glyphs { nullptr };
    usize glyph_count { 0 };

    // The 16 row bytes of glyph `index`; the caller checks index < glyph_count.
    const u8* glyph(usize index) const { return glyphs + index * bytes_per_glyph; }
};

extern const u8* const g_font_8x16;
extern const usize g_font_8x16_glyphs;

inline BitmapFont default_font() { return BitmapFont { g_font_8x16, g_font_8x16_glyphs }; }

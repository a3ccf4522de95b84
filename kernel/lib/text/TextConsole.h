#pragma once
// A text console drawn into a linear framebuffer with an 8x16 bitmap font.
//
// Interface:
//   TextConsole console(framebuffer_info, default_font());
//   console.write("booting\n");      // \n (new line), \r, \t (8 columns), \b (back, no erase)
//   console.set_colors(0xaaaaaa, 0x000000);
//   console.clear();
//
// Lines wrap at the right edge and the screen scrolls up by one text row (a memmove of pixel
// rows) at the bottom. Wrapping is deferred, like a VT: writing the last column leaves the
// cursor past it, so a full-width line followed by '\n' does not leave an empty line.
//
// The console only touches the pixels it is given: no lock, no hardware. Its owner serialises it.
// NOTE: scrolling reads the framebuffer back, which is slow on write-combined video memory; a
// shadow buffer can be handed in as `pixels` and copied out by the owner if that ever matters.
#include <ktl/StringView.h>
#include <ktl/Types.h>
#include <lib/text/BitmapFont.h>

struct FramebufferSurface {
    u8* pixels { nullptr };
    u32 pitch_bytes { 0 };
    u32 width { 0 };
    u32 height { 0 };
    u32 bpp { 32 }; // 32, 24 or 16.
    // Position and width in bits of each channel inside a pixel, as the bootloader reports them.
    u8 red_shift { 16 };
    u8 green_shift { 8 };
    u8 blue_shift { 0 };
    u8 red_size { 8 };
    u8 green_size { 8 };
    u8 blue_size { 8 };
};

class TextConsole {
public:
    TextConsole(const FramebufferSurface& framebuffer, const BitmapFont& font);

    u32 columns() const { return m_columns; }
    u32 rows() const { return m_rows; }
    u32 cursor_column() const { return m_column; }
    u32 cursor_row() const { return m_row; }

    // Colours are 0xRRGGBB; they apply to characters written afterwards (and to clear()).
    void set_colors(u32 foreground_rgb, u32 background_rgb);
    void put_char(char c);
    void write(StringView text);
    // Fills the whole framebuffer with the background colour and homes the cursor.
    void clear();
    void set_cursor(u32 column, u32 row);

    // The native pixel value for 0xRRGGBB in this framebuffer's format.
    u32 native_color(u32 rgb) const;

private:
    void draw_glyph(u32 column, u32 row, u8 character);
    void new_line();
    void scroll_up();
    void fill_pixels(u32 x, u32 y, u32 width, u32 height, u32 native);
    void store_pixel(u8* where, u32 native) const;

    FramebufferSurface m_framebuffer;
    BitmapFont m_font;
    u32 m_bytes_per_pixel { 4 };
    u32 m_columns { 0 };
    u32 m_rows { 0 };
    u32 m_column { 0 }; // May equal m_columns: a wrap is pending.
    u32 m_row { 0 };
    u32 m_foreground { 0 };
    u32 m_background { 0 };
};

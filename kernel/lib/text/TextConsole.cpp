// Framebuffer text console; see TextConsole.h.
#include <ktl/Assertions.h>
#include <lib/text/TextConsole.h>

namespace {
constexpr u32 tab_width = 8;
}

TextConsole::TextConsole(const FramebufferSurface& framebuffer, const BitmapFont& font)
    : m_framebuffer(framebuffer)
    , m_font(font)
{
    VERIFY(framebuffer.bpp == 32 || framebuffer.bpp == 24 || framebuffer.bpp == 16);
    VERIFY(framebuffer.pixels && font.glyphs && font.glyph_count > 0);
    m_bytes_per_pixel = framebuffer.bpp / 8;
    VERIFY((u64)framebuffer.width * m_bytes_per_pixel <= framebuffer.pitch_bytes);
    m_columns = framebuffer.width / BitmapFont::glyph_width;
    m_rows = framebuffer.height / BitmapFont::glyph_height;
    VERIFY(m_columns > 0 && m_rows > 0);
    set_colors(0xaaaaaa, 0x000000);
}

u32 TextConsole::native_color(u32 rgb) const
{
    auto channel = [](u32 value8, u8 size, u8 shift) -> u32 {
        if (size == 0)
            return 0;
        u32 value = size >= 8 ? value8 << (size - 8) : value8 >> (8 - size);
        return value << shift;
    };
    return channel((rgb >> 16) & 0xff, m_framebuffer.red_size, m_framebuffer.red_shift)
        | channel((rgb >> 8) & 0xff, m_framebuffer.green_size, m_framebuffer.green_shift)
        | channel(rgb & 0xff, m_framebuffer.blue_size, m_framebuffer.blue_shift);
}

void TextConsole::set_colors(u32 foreground_rgb, u32 background_rgb)
{
    m_foreground = native_color(foreground_rgb);
    m_background = native_color(background_rgb);
}

void TextConsole::store_pixel(u8* where, u32 native) const
{
    // Byte copies: a 24-bit pixel is not aligned, and the compiler turns the rest into one store.
    switch (m_bytes_per_pixel) {
    case 4: __builtin_memcpy(where, &native, 4); break;
    case 3:
        where[0] = (u8)native;
        where[1] = (u8)(native >> 8);
        where[2] = (u8)(native >> 16);
        break;
    default: {
        u16 value = (u16)native;
        __builtin_memcpy(where, &value, 2);
        break;
    }
    }
}

void TextConsole::fill_pixels(u32 x, u32 y, u32 width, u32 height, u32 native)
{
    u8* const pixels = m_framebuffer.pixels;
    const usize pitch = m_framebuffer.pitch_bytes;
    const u32 bytes_per_pixel = m_bytes_per_pixel;
    if (bytes_per_pixel == 4) {
        // The common case, and the hot one (clear and scroll): whole 32-bit pixels, two per 64-bit
        // store where the line is aligned. Locals, so the u8 stores cannot force reloads.
        const u64 pair = (u64)native << 32 | native;
        for (u32 row = 0; row < height; ++row) {
            u8* line = pixels + (usize)(y + row) * pitch + (usize)x * 4;
            u32 column = 0;
            if (((uptr)line & 7) != 0 && column < width) {
                __builtin_memcpy(line, &native, 4);
                ++column;
            }
            for (; column + 2 <= width; column += 2)
                __builtin_memcpy(line + (usize)column * 4, &pair, 8);
            if (column < width)
                __builtin_memcpy(line + (usize)column * 4, &native, 4);
        }
        return;
    }
    for (u32 row = 0; row < height; ++row) {
        u8* line = pixels + (usize)(y + row) * pitch + (usize)x * bytes_per_pixel;
        for (u32 column = 0; column < width; ++column)
            store_pixel(line + (usize)column * bytes_per_pixel, native);
    }
}

void TextConsole::draw_glyph(u32 column, u32 row, u8 character)
{
    // Outside the font (non-ASCII bytes): draw '?' rather than read past the table.
    usize index = character < m_font.glyph_count ? character : (usize)'?';
    if (index >= m_font.glyph_count)
        index = 0;
    const u8* glyph = m_font.glyph(index);
    u32 x = column * BitmapFont::glyph_width;
    u32 y = row * BitmapFont::glyph_height;
    if (m_bytes_per_pixel == 4) {
        const u32 foreground = m_foreground, background = m_background;
        u8* const pixels = m_framebuffer.pixels;
        const usize pitch = m_framebuffer.pitch_bytes;
        for (u32 glyph_row = 0; glyph_row < BitmapFont::glyph_height; ++glyph_row) {
            u8 bits = glyph[glyph_row];
            u8* line = pixels + (usize)(y + glyph_row) * pitch + (usize)x * 4;
            for (u32 bit = 0; bit < BitmapFont::glyph_width; ++bit) {
                u32 value = (bits & (0x80 >> bit)) ? foreground : background;
                __builtin_memcpy(line + (usize)bit * 4, &value, 4);
            }
        }
        return;
    }
    for (u32 glyph_row = 0; glyph_row < BitmapFont::glyph_height; ++glyph_row) {
        u8 bits = glyph[glyph_row];
        u8* line = m_framebuffer.pixels + (usize)(y + glyph_row) * m_framebuffer.pitch_bytes + (usize)x * m_bytes_per_pixel;
        for (u32 bit = 0; bit < BitmapFont::glyph_width; ++bit) {
            bool set = bits & (0x80 >> bit); // The most significant bit is the leftmost pixel.
            store_pixel(line + (usize)bit * m_bytes_per_pixel, set ? m_foreground : m_background);
        }
    }
}

void TextConsole::scroll_up()
{
    usize row_bytes = (usize)BitmapFont::glyph_height * m_framebuffer.pitch_bytes;
    __builtin_memmove(m_framebuffer.pixels, m_framebuffer.pixels + row_bytes, (usize)(m_rows - 1) * row_bytes);
    fill_pixels(0, (m_rows - 1) * BitmapFont::glyph_height, m_columns * BitmapFont::glyph_width,
        BitmapFont::glyph_height, m_background);
}

void TextConsole::new_line()
{
    m_column = 0;
    if (m_row + 1 < m_rows)
        ++m_row;
    else
        scroll_up();
}

void TextConsole::put_char(char c)
{
    switch (c) {
    case '\n':
        new_line();
        return;
    case '\r':
        m_column = 0;
        return;
    case '\b':
        if (m_column >= m_columns)
            m_column = m_columns - 1;
        if (m_column > 0)
            --m_column;
        return;
    case '\t': {
        if (m_column >= m_columns)
            new_line();
        u32 next = (m_column / tab_width + 1) * tab_width;
        // A tab stops at the last column rather than wrapping, as on a VT.
        m_column = next < m_columns ? next : m_columns - 1;
        return;
    }
    default:
        break;
    }
    if (m_column >= m_columns)
        new_line();
    draw_glyph(m_column, m_row, (u8)c);
    ++m_column;
}

void TextConsole::write(StringView text)
{
    for (usize i = 0; i < text.length(); ++i)
        put_char(text[i]);
}

void TextConsole::clear()
{
    fill_pixels(0, 0, m_framebuffer.width, m_framebuffer.height, m_background);
    m_column = 0;
    m_row = 0;
}

void TextConsole::set_cursor(u32 column, u32 row)
{
    m_column = column < m_columns ? column : m_columns - 1;
    m_row = row < m_rows ? row : m_rows - 1;
}

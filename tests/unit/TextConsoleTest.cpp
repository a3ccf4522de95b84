// Host tests for TextConsole: glyph bits, wrap, scroll and pixel formats, rendered into memory.
#include <lib/text/BitmapFont.h>
#include <lib/text/TextConsole.h>

#include <gtest/gtest.h>
#include <string>
#include <vector>

namespace {

constexpr u32 white = 0xffffff;
constexpr u32 black = 0x000000;

// A framebuffer in host memory, with a pitch wider than the visible width like real hardware.
struct MemoryFramebuffer {
    std::vector<u8> bytes;
    FramebufferSurface info;

    MemoryFramebuffer(u32 width, u32 height, u32 bpp, u32 padding_bytes = 12)
    {
        info.width = width;
        info.height = height;
        info.bpp = bpp;
        info.pitch_bytes = width * (bpp / 8) + padding_bytes;
        if (bpp == 16) {
            // RGB565.
            info.red_shift = 11, info.green_shift = 5, info.blue_shift = 0;
            info.red_size = 5, info.green_size = 6, info.blue_size = 5;
        }
        bytes.assign((usize)info.pitch_bytes * height, 0x5a);
        info.pixels = bytes.data();
    }

    u32 pixel(u32 x, u32 y) const
    {
        const u8* p = bytes.data() + (usize)y * info.pitch_bytes + (usize)x * (info.bpp / 8);
        u32 value = 0;
        for (u32 i = 0; i < info.bpp / 8; ++i)
            value |= (u32)p[i] << (8 * i);
        return value;
    }

    // The character cell at (column, row) as '#' (foreground) and '.' rows.
    std::vector<std::string> cell(u32 column, u32 row, u32 foreground) const
    {
        std::vector<std::string> lines;
        for (u32 y = 0; y < 16; ++y) {
            std::string line;
            for (u32 x = 0; x < 8; ++x)
                line += pixel(column * 8 + x, row * 16 + y) == foreground ? '#' : '.';
            lines.push_back(line);
        }
        return lines;
    }

    bool cell_is_blank(u32 column, u32 row, u32 background) const
    {
        for (u32 y = 0; y < 16; ++y)
            for (u32 x = 0; x < 8; ++x)
                if (pixel(column * 8 + x, row * 16 + y) != background)
                    return false;
        return true;
    }
};

// A tiny synthetic font, so tests can tell glyphs apart by their row bytes.
struct TestFont {
    u8 bytes[128 * 16] {};
    TestFont()
    {
        for (int c = 0; c < 128; ++c)
            for (int row = 0; row < 16; ++row)
                bytes[c * 16 + row] = c == ' ' ? 0 : (u8)(c ^ (row * 17));
    }
    BitmapFont font() const { return BitmapFont { bytes, 128 }; }
};

bool cell_matches_glyph(const MemoryFramebuffer& fb, const TestFont& font, u32 column, u32 row, char c, u32 fg,
    u32 bg)
{
    for (u32 y = 0; y < 16; ++y) {
        u8 bits = font.bytes[(u8)c * 16 + y];
        for (u32 x = 0; x < 8; ++x) {
            u32 expected = (bits & (0x80 >> x)) ? fg : bg;
            if (fb.pixel(column * 8 + x, row * 16 + y) != expected)
                return false;
        }
    }
    return true;
}

}

TEST(TextConsoleTest, GrubFontLayoutRendersA)
{
    ASSERT_EQ(g_font_8x16_glyphs, 128u);
    MemoryFramebuffer fb(80, 32, 32);
    TextConsole console(fb.info, default_font());
    console.set_colors(white, black);
    console.clear();
    console.put_char('A');
    std::vector<std::string> expected {
        "........", "........", "...##...", "..#..#..", "..#..#..", ".#....#.", ".#....#.", ".######.",
        ".#....#.", ".#....#.", ".#....#.", ".#....#.", "........", "........", "........", "........",
    };
    EXPECT_EQ(fb.cell(0, 0, 0xffffff), expected);
    EXPECT_TRUE(fb.cell_is_blank(1, 0, 0));
}

TEST(TextConsoleTest, GeometryFromFramebuffer)
{
    TestFont font;
    MemoryFramebuffer fb(643, 487, 32);
    TextConsole console(fb.info, font.font());
    EXPECT_EQ(console.columns(), 80u);
    EXPECT_EQ(console.rows(), 30u);
}

TEST(TextConsoleTest, ClearFillsEveryVisiblePixelButNotThePadding)
{
    TestFont font;
    MemoryFramebuffer fb(21, 35, 32); // Not a whole number of cells.
    TextConsole console(fb.info, font.font());
    console.set_colors(white, 0x123456);
    console.clear();
    for (u32 y = 0; y < 35; ++y)
        for (u32 x = 0; x < 21; ++x)
            ASSERT_EQ(fb.pixel(x, y), 0x123456u) << x << "," << y;
    EXPECT_EQ(fb.bytes[21 * 4], 0x5a) << "pitch padding is not the console's";
}

TEST(TextConsoleTest, GlyphBitsMsbIsLeftmost)
{
    TestFont font;
    MemoryFramebuffer fb(64, 64, 32);
    TextConsole console(fb.info, font.font());
    console.set_colors(0xff0000, 0x0000ff);
    console.clear();
    console.write("Hi!");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, 'H', 0xff0000, 0x0000ff));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 1, 0, 'i', 0xff0000, 0x0000ff));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 2, 0, '!', 0xff0000, 0x0000ff));
    EXPECT_EQ(console.cursor_column(), 3u);
}

TEST(TextConsoleTest, NewlineAndCarriageReturn)
{
    TestFont font;
    MemoryFramebuffer fb(64, 64, 32);
    TextConsole console(fb.info, font.font());
    console.clear();
    console.write("ab\ncd");
    EXPECT_EQ(console.cursor_row(), 1u);
    EXPECT_EQ(console.cursor_column(), 2u);
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'c', 0xaaaaaa, 0));
    console.write("\rX");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'X', 0xaaaaaa, 0));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 1, 1, 'd', 0xaaaaaa, 0));
}

TEST(TextConsoleTest, TabStopsEveryEightColumns)
{
    TestFont font;
    MemoryFramebuffer fb(20 * 8, 32, 32);
    TextConsole console(fb.info, font.font());
    console.put_char('\t');
    EXPECT_EQ(console.cursor_column(), 8u);
    console.write("abc\t");
    EXPECT_EQ(console.cursor_column(), 16u);
    console.put_char('\t');
    EXPECT_EQ(console.cursor_column(), 19u) << "clamped to the last column";
    EXPECT_EQ(console.cursor_row(), 0u);
}

TEST(TextConsoleTest, BackspaceMovesLeftWithoutErasing)
{
    TestFont font;
    MemoryFramebuffer fb(64, 32, 32);
    TextConsole console(fb.info, font.font());
    console.clear();
    console.write("ab\b");
    EXPECT_EQ(console.cursor_column(), 1u);
    EXPECT_TRUE(cell_matches_glyph(fb, font, 1, 0, 'b', 0xaaaaaa, 0));
    console.write("Z");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 1, 0, 'Z', 0xaaaaaa, 0));
    console.write("\r\b");
    EXPECT_EQ(console.cursor_column(), 0u);
}

TEST(TextConsoleTest, WrapsAtTheRightEdgeLazily)
{
    TestFont font;
    MemoryFramebuffer fb(4 * 8, 3 * 16, 32);
    TextConsole console(fb.info, font.font());
    console.clear();
    console.write("abcd");
    EXPECT_EQ(console.cursor_row(), 0u) << "wrap waits for the next character";
    EXPECT_EQ(console.cursor_column(), 4u);
    console.write("e");
    EXPECT_EQ(console.cursor_row(), 1u);
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'e', 0xaaaaaa, 0));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 3, 0, 'd', 0xaaaaaa, 0));

    // A full line then '\n' moves down one line, not two.
    console.write("\rwxyz\n");
    EXPECT_EQ(console.cursor_row(), 2u);
    EXPECT_EQ(console.cursor_column(), 0u);
}

TEST(TextConsoleTest, ScrollsUpAtTheBottom)
{
    TestFont font;
    MemoryFramebuffer fb(4 * 8, 3 * 16, 32);
    TextConsole console(fb.info, font.font());
    console.set_colors(white, 0x000040);
    console.clear();
    console.write("1\n2\n3");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, '1', white, 0x40));
    console.write("\n4");
    EXPECT_EQ(console.cursor_row(), 2u);
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, '2', white, 0x40));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, '3', white, 0x40));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 2, '4', white, 0x40));
    for (u32 column = 1; column < 4; ++column)
        EXPECT_TRUE(fb.cell_is_blank(column, 2, 0x40)) << "new row is cleared to the background";
}

TEST(TextConsoleTest, WrapAtTheBottomScrolls)
{
    TestFont font;
    MemoryFramebuffer fb(2 * 8, 2 * 16, 32);
    TextConsole console(fb.info, font.font());
    console.clear();
    console.write("abcde");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, 'c', 0xaaaaaa, 0));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 1, 0, 'd', 0xaaaaaa, 0));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'e', 0xaaaaaa, 0));
    EXPECT_TRUE(fb.cell_is_blank(1, 1, 0));
}

TEST(TextConsoleTest, SixteenBitPixels)
{
    TestFont font;
    MemoryFramebuffer fb(32, 32, 16);
    TextConsole console(fb.info, font.font());
    EXPECT_EQ(console.native_color(0xffffff), 0xffffu);
    EXPECT_EQ(console.native_color(0xff0000), 0xf800u);
    EXPECT_EQ(console.native_color(0x00ff00), 0x07e0u);
    EXPECT_EQ(console.native_color(0x0000ff), 0x001fu);
    console.set_colors(0xff0000, 0x0000ff);
    console.clear();
    console.write("Q\nR");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, 'Q', 0xf800, 0x001f));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'R', 0xf800, 0x001f));
    console.write("\nS"); // Scrolls.
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, 'R', 0xf800, 0x001f));
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 1, 'S', 0xf800, 0x001f));
}

TEST(TextConsoleTest, TwentyFourBitPixels)
{
    TestFont font;
    MemoryFramebuffer fb(24, 16, 24, 3);
    TextConsole console(fb.info, font.font());
    console.set_colors(0x102030, 0x405060);
    console.clear();
    console.write("k");
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, 'k', 0x102030, 0x405060));
    EXPECT_TRUE(fb.cell_is_blank(1, 0, 0x405060));
    EXPECT_EQ(fb.bytes[24 * 3], 0x5a) << "pitch padding untouched";
}

TEST(TextConsoleTest, BgrChannelOrder)
{
    TestFont font;
    MemoryFramebuffer fb(16, 16, 32);
    fb.info.red_shift = 0;
    fb.info.blue_shift = 16;
    TextConsole console(fb.info, font.font());
    EXPECT_EQ(console.native_color(0x112233), 0x332211u);
}

TEST(TextConsoleTest, NonAsciiBytesDrawQuestionMark)
{
    TestFont font;
    MemoryFramebuffer fb(16, 16, 32);
    TextConsole console(fb.info, font.font());
    console.clear();
    console.put_char((char)0xe9);
    EXPECT_TRUE(cell_matches_glyph(fb, font, 0, 0, '?', 0xaaaaaa, 0));
}

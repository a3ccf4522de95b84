// printf-style formatting shared by the kernel and the host tests; see Format.h.
#include <lib/text/Format.h>

namespace {

class Writer {
public:
    Writer(FormatEmitFunction emit, void* ctx) : m_emit(emit), m_ctx(ctx) { }

    void put(char c) { m_emit(c, m_ctx); }
    void put(const char* chars, usize length)
    {
        for (usize i = 0; i < length; ++i)
            m_emit(chars[i], m_ctx);
    }
    void repeat(char c, usize count)
    {
        for (usize i = 0; i < count; ++i)
            m_emit(c, m_ctx);
    }

private:
    FormatEmitFunction m_emit;
    void* m_ctx;
};

struct Spec {
    bool left_align { false };
    bool zero_pad { false };
    bool plus { false };
    bool space { false };
    bool alternate { false };
    usize width { 0 };
    int precision { -1 }; // -1: none given.
};

enum class Length { Default, Char, Short, Long, LongLong, Size, PtrDiff, IntMax };

// Widths and precisions are ints in C; parsing saturates there rather than overflowing.
constexpr i64 max_field = 0x7fffffff;

// Pads a field of `length` characters to the spec's width, with the payload written by body().
template<typename Body>
void pad_field(Writer& out, const Spec& spec, usize length, Body body)
{
    usize padding = spec.width > length ? spec.width - length : 0;
    if (!spec.left_align)
        out.repeat(' ', padding);
    body();
    if (spec.left_align)
        out.repeat(' ', padding);
}

void format_string(Writer& out, const Spec& spec, const char* string)
{
    if (!string) {
        // NOTE: glibc prints "(null)" only when the precision leaves room for all of it.
        string = (spec.precision < 0 || spec.precision >= 6) ? "(null)" : "";
    }
    usize length = 0;
    // Never read past the precision: the argument need not be NUL-terminated.
    if (spec.precision >= 0) {
        while (length < (usize)spec.precision && string[length])
            ++length;
    } else {
        length = __builtin_strlen(string);
    }
    pad_field(out, spec, length, [&] { out.put(string, length); });
}

// Writes [sign/prefix][precision zeros][digits], padded to the width.
void format_integer(Writer& out, Spec spec, u64 magnitude, bool negative, bool is_signed, unsigned base, bool upper,
    bool force_hex_prefix = false)
{
    char digits[24];
    usize digit_count = 0;
    const char* alphabet = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    // C: a zero value with an explicit zero precision prints no digits at all.
    if (!(magnitude == 0 && spec.precision == 0)) {
        do {
            digits[digit_count++] = alphabet[magnitude % base];
            magnitude /= base;
        } while (magnitude);
    }

    char prefix[3];
    usize prefix_length = 0;
    if (is_signed) {
        if (negative)
            prefix[prefix_length++] = '-';
        else if (spec.plus)
            prefix[prefix_length++] = '+';
        else if (spec.space)
            prefix[prefix_length++] = ' ';
    }
    bool nonzero = digit_count > 0 && !(digit_count == 1 && digits[0] == '0');
    if (base == 16 && (force_hex_prefix || (spec.alternate && nonzero))) {
        prefix[prefix_length++] = '0';
        prefix[prefix_length++] = upper ? 'X' : 'x';
    }

    usize precision = spec.precision < 0 ? 1 : (usize)spec.precision;
    if (spec.precision == 0)
        precision = 0;
    usize zeros = precision > digit_count ? precision - digit_count : 0;
    // '#' with octal raises the precision just enough that the first digit is 0.
    if (base == 8 && spec.alternate && zeros == 0 && (digit_count == 0 || digits[digit_count - 1] != '0'))
        zeros = 1;

    usize body_length = prefix_length + zeros + digit_count;
    // The 0 flag pads with zeros after the sign and prefix, unless left-aligned or a precision is given.
    if (spec.zero_pad && !spec.left_align && spec.precision < 0 && spec.width > body_length) {
        zeros += spec.width - body_length;
        body_length = spec.width;
    }
    pad_field(out, spec, body_length, [&] {
        out.put(prefix, prefix_length);
        out.repeat('0', zeros);
        for (usize i = digit_count; i > 0; --i)
            out.put(digits[i - 1]);
    });
}

i64 read_signed(Length length, va_list* args)
{
    switch (length) {
    case Length::Char: return (signed char)va_arg(*args, int);
    case Length::Short: return (short)va_arg(*args, int);
    case Length::Long: return va_arg(*args, long);
    case Length::LongLong: return va_arg(*args, long long);
    case Length::Size: return va_arg(*args, isize); // The signed type of size_t's width.
    case Length::PtrDiff: return va_arg(*args, ptrdiff_t);
    case Length::IntMax: return va_arg(*args, intmax_t);
    case Length::Default: break;
    }
    return va_arg(*args, int);
}

u64 read_unsigned(Length length, va_list* args)
{
    switch (length) {
    case Length::Char: return (unsigned char)va_arg(*args, unsigned);
    case Length::Short: return (unsigned short)va_arg(*args, unsigned);
    case Length::Long: return va_arg(*args, unsigned long);
    case Length::LongLong: return va_arg(*args, unsigned long long);
    case Length::Size: return va_arg(*args, usize);
    case Length::PtrDiff: return (u64)va_arg(*args, ptrdiff_t);
    case Length::IntMax: return va_arg(*args, uintmax_t);
    case Length::Default: break;
    }
    return va_arg(*args, unsigned);
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// Parses a decimal field, saturating instead of overflowing.
i64 parse_number(const char*& p)
{
    i64 value = 0;
    while (is_digit(*p)) {
        value = value * 10 + (*p - '0');
        if (value > max_field)
            value = max_field;
        ++p;
    }
    return value;
}

void format_impl(Writer& out, const char* fmt, va_list* args)
{
    const char* p = fmt;
    while (*p) {
        if (*p != '%') {
            out.put(*p++);
            continue;
        }
        const char* conversion_start = p;
        ++p;

        Spec spec;
        for (;; ++p) {
            if (*p == '-') spec.left_align = true;
            else if (*p == '0') spec.zero_pad = true;
            else if (*p == '+') spec.plus = true;
            else if (*p == ' ') spec.space = true;
            else if (*p == '#') spec.alternate = true;
            else break;
        }

        if (*p == '*') {
            ++p;
            i64 width = va_arg(*args, int);
            // A negative width argument is a '-' flag and a positive width.
            if (width < 0) {
                spec.left_align = true;
                width = -width;
            }
            spec.width = (usize)width;
        } else {
            spec.width = (usize)parse_number(p);
        }

        if (*p == '.') {
            ++p;
            if (*p == '*') {
                ++p;
                int precision = va_arg(*args, int);
                // A negative precision argument counts as none given.
                spec.precision = precision < 0 ? -1 : precision;
            } else {
                spec.precision = (int)parse_number(p);
            }
        }

        Length length = Length::Default;
        switch (*p) {
        case 'h':
            ++p;
            length = Length::Short;
            if (*p == 'h') { ++p; length = Length::Char; }
            break;
        case 'l':
            ++p;
            length = Length::Long;
            if (*p == 'l') { ++p; length = Length::LongLong; }
            break;
        case 'z': ++p; length = Length::Size; break;
        case 't': ++p; length = Length::PtrDiff; break;
        case 'j': ++p; length = Length::IntMax; break;
        default: break;
        }

        char conversion = *p;
        if (conversion == '\0') {
            // A lone '%' at the end: print what was written, as glibc does.
            out.put(conversion_start, (usize)(p - conversion_start));
            break;
        }
        ++p;

        switch (conversion) {
        case 'd':
        case 'i': {
            i64 value = read_signed(length, args);
            u64 magnitude = value < 0 ? (u64)0 - (u64)value : (u64)value;
            format_integer(out, spec, magnitude, value < 0, true, 10, false);
            break;
        }
        case 'u': format_integer(out, spec, read_unsigned(length, args), false, false, 10, false); break;
        case 'x': format_integer(out, spec, read_unsigned(length, args), false, false, 16, false); break;
        case 'X': format_integer(out, spec, read_unsigned(length, args), false, false, 16, true); break;
        case 'o': format_integer(out, spec, read_unsigned(length, args), false, false, 8, false); break;
        case 'p': {
            auto pointer = (uptr)va_arg(*args, void*);
            if (!pointer) {
                // glibc ignores the precision for "(nil)", and the 0 flag with it.
                spec.precision = -1;
                format_string(out, spec, "(nil)");
                break;
            }
            // glibc prints a pointer as %#lx that also honours the '+' and ' ' flags.
            format_integer(out, spec, pointer, false, true, 16, false, true);
            break;
        }
        case 's': format_string(out, spec, va_arg(*args, const char*)); break;
        case 'c': {
            char c = (char)va_arg(*args, int);
            pad_field(out, spec, 1, [&] { out.put(c); });
            break;
        }
        case '%': out.put('%'); break;
        default:
            // An unknown conversion consumes no argument and is echoed, as glibc does.
            out.put(conversion_start, (usize)(p - conversion_start));
            break;
        }
    }
}

struct BufferSink {
    char* buffer;
    usize capacity;
    usize length;
};

void emit_to_buffer(char c, void* ctx)
{
    auto& sink = *static_cast<BufferSink*>(ctx);
    // Keep the last byte for the terminator; count everything, as snprintf does.
    if (sink.length + 1 < sink.capacity)
        sink.buffer[sink.length] = c;
    ++sink.length;
}

}

void vformat_to(FormatEmitFunction emit, void* ctx, const char* fmt, va_list args)
{
    va_list copy;
    va_copy(copy, args);
    Writer out(emit, ctx);
    format_impl(out, fmt, &copy);
    va_end(copy);
}

void format_to(FormatEmitFunction emit, void* ctx, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vformat_to(emit, ctx, fmt, args);
    va_end(args);
}

usize vformat(char* buffer, usize capacity, const char* fmt, va_list args)
{
    BufferSink sink { buffer, capacity, 0 };
    vformat_to(emit_to_buffer, &sink, fmt, args);
    if (capacity > 0)
        buffer[sink.length < capacity ? sink.length : capacity - 1] = '\0';
    return sink.length;
}

usize format(char* buffer, usize capacity, const char* fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    usize length = vformat(buffer, capacity, fmt, args);
    va_end(args);
    return length;
}

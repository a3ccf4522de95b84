#include <lib/boot/CommandLine.h>
#include <log/Log.h>
#include <module/ModuleParams.h>

namespace module_params {

namespace {
// why must be a string literal: it becomes the returned Error's message.
Error invalid(StringView module, StringView key, const char* why)
{
    log_err("module: %.*s: parameter '%.*s': %s", (int)module.length(), module.characters(), (int)key.length(), key.characters(), why);
    return Error::with_message(EINVAL, why);
}

ErrorOr<bool> parse_bool(StringView value)
{
    if (value.is_empty() || value == "1" || value == "y" || value == "Y" || value == "true" || value == "on")
        return true;
    if (value == "0" || value == "n" || value == "N" || value == "false" || value == "off")
        return false;
    return EINVAL;
}
}

ErrorOr<void> apply(StringView module, Span<const homeos_module_param> descriptors, StringView text)
{
    CommandLine line;
    if (line.parse(text).is_error())
        return invalid(module, text, "cannot parse the parameter list");
    // Validate everything before writing anything, so a bad list changes no value.
    for (int pass = 0; pass < 2; ++pass) {
        for (usize i = 0; i < line.entry_count(); ++i) {
            auto& entry = line.entry(i);
            // Reserved for the loader: selftest=1 runs the module's KTAP suites after init.
            if (entry.key == "selftest")
                continue;
            const homeos_module_param* param = nullptr;
            for (auto& d : descriptors)
                if (StringView(d.name) == entry.key)
                    param = &d;
            if (!param)
                return invalid(module, entry.key, "unknown parameter");
            StringView value = entry.value;
            switch (param->type) {
            case HOMEOS_PARAM_BOOL: {
                auto b = parse_bool(value);
                if (b.is_error())
                    return invalid(module, entry.key, "expected a boolean (1/0, y/n, true/false, on/off)");
                if (pass)
                    *(bool*)param->value = b.value();
                break;
            }
            case HOMEOS_PARAM_INT:
            case HOMEOS_PARAM_UINT: {
                bool negative = param->type == HOMEOS_PARAM_INT && value.length() > 1 && value[0] == '-';
                auto magnitude = CommandLine::parse_u64(negative ? value.substring(1) : value);
                if (magnitude.is_error() || !entry.has_value)
                    return invalid(module, entry.key, "expected a number");
                if (param->type == HOMEOS_PARAM_INT) {
                    if (magnitude.value() > (negative ? (1ull << 63) : (1ull << 63) - 1))
                        return invalid(module, entry.key, "out of range for a 64-bit integer");
                    i64 v = negative ? (i64)(0 - magnitude.value()) : (i64)magnitude.value();
                    if (v < param->min || v > param->max)
                        return invalid(module, entry.key, "outside the parameter's allowed range");
                    if (pass)
                        *(i64*)param->value = v;
                } else {
                    u64 v = magnitude.value();
                    if (v < (u64)param->min || v > (u64)param->max)
                        return invalid(module, entry.key, "outside the parameter's allowed range");
                    if (pass)
                        *(u64*)param->value = v;
                }
                break;
            }
            case HOMEOS_PARAM_STRING:
                if (value.length() + 1 > param->string_capacity)
                    return invalid(module, entry.key, "string too long for the parameter");
                if (pass) {
                    __builtin_memcpy(param->value, value.characters(), value.length());
                    ((char*)param->value)[value.length()] = 0;
                }
                break;
            default:
                return invalid(module, entry.key, "the module declares an unknown parameter type");
            }
        }
    }
    return {};
}

} // namespace module_params

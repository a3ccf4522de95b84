#pragma once
// Module parameters: "key=value" pairs from insmod or the command line, checked against the
// module's typed descriptors (abi/homeos/module.h) before init runs.
#include <homeos/module.h>
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/StringView.h>

namespace module_params {

// Applies every parameter in `text`; EINVAL (logged with the parameter and reason, the reason also
// in the Error's message) for an unknown name, a malformed or out-of-range value, or a string that
// does not fit. Nothing is written unless every parameter is valid.
ErrorOr<void> apply(StringView module, Span<const homeos_module_param> descriptors, StringView text);

} // namespace module_params

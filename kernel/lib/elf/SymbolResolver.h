#pragma once
// SymbolResolver: how the relocator learns the address of a symbol a module uses but does not
// define. The kernel implements it over its export table; tests over a map of host addresses.
//
// resolve() returns ENOENT for an unknown name; the relocator turns that into "unresolved
// symbol 'name'" (or into 0 for a weak reference). Any other error is passed on as it is.
#include <ktl/ErrorOr.h>
#include <ktl/StringView.h>

class SymbolResolver {
public:
    virtual ErrorOr<u64> resolve(StringView name) = 0;

protected:
    ~SymbolResolver() = default;
};

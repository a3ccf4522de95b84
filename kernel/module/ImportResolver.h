#pragma once
// ImportResolver: links a module's undefined symbols, for the Relocator. Kernel exports come
// first, then exports of loaded modules; either way the module's __versions CRC for the symbol
// is checked against the exporter's (VersionTable). Remembers which modules it bound to, so the
// loader can take the dependency links.
//
// Each refusal returns the errno with a static reason and logs the detail (symbol, CRCs, the
// exporting module) at the point of failure:
//   ENOENT   nobody exports the symbol
//   ENOPKG   __versions has no CRC for it (every kernel export; module exports that carry a CRC)
//   EBADMSG  the CRCs differ
// The caller must hold the module mutex: the module list is read.
#include <lib/elf/SymbolResolver.h>
#include <lib/elf/VersionTable.h>
#include <module/Module.h>

class ImportResolver final : public SymbolResolver {
public:
    ImportResolver(StringView module, ReadonlyBytes versions) : m_module(module), m_versions(versions) { }

    ErrorOr<u64> resolve(StringView name) override;

    Span<Module* const> dependencies() const { return Span<Module* const>(m_dependencies, m_dependency_count); }
    // More distinct modules were used than a Module can record.
    bool too_many_dependencies() const { return m_too_many_dependencies; }

private:
    void note_dependency(Module* owner);
    // "0x1234abcd", or "none" when __versions has no entry for name.
    void describe_recorded(StringView name, char* out, usize capacity) const;

    StringView m_module;
    VersionTable m_versions;
    Module* m_dependencies[Module::MAX_DEPENDENCIES] {};
    usize m_dependency_count { 0 };
    bool m_too_many_dependencies { false };
};

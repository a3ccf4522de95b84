#include <lib/text/Format.h>
#include <log/Log.h>
#include <module/Exports.h>
#include <module/ImportResolver.h>
#include <module/ModuleRegistry.h>

ErrorOr<u64> ImportResolver::resolve(StringView name)
{
    int module_length = (int)m_module.length(), name_length = (int)name.length();
    if (auto* e = kexports::find(name)) {
        if (auto checked = m_versions.check(name, e->crc, VersionTable::Exporter::Kernel); checked.is_error()) {
            char recorded[24];
            describe_recorded(name, recorded, sizeof(recorded));
            log_err("module: %.*s: kernel symbol '%.*s': %s (module CRC %s, kernel CRC 0x%08x)", module_length, m_module.characters(),
                name_length, name.characters(), checked.error().message(), recorded, e->crc);
            return checked.release_error();
        }
        return (u64)e->address;
    }
    Module* owner = nullptr;
    if (auto* e = modules::find_export(name, &owner)) {
        if (auto checked = m_versions.check(name, e->crc, VersionTable::Exporter::Module); checked.is_error()) {
            char recorded[24];
            describe_recorded(name, recorded, sizeof(recorded));
            log_err("module: %.*s: symbol '%.*s' exported by %s: %s (module CRC %s, %s's CRC 0x%08x)", module_length, m_module.characters(),
                name_length, name.characters(), owner->name_cstr(), checked.error().message(), recorded, owner->name_cstr(), e->crc);
            return checked.release_error();
        }
        note_dependency(owner);
        return (u64)e->address;
    }
    // Not logged here: a weak reference to an unknown symbol is no error (the relocator decides).
    return Error::with_message(ENOENT, "unresolved symbol");
}

void ImportResolver::describe_recorded(StringView name, char* out, usize capacity) const
{
    auto recorded = m_versions.find(name);
    if (recorded.is_error())
        format(out, capacity, "none");
    else
        format(out, capacity, "0x%08x", recorded.value());
}

void ImportResolver::note_dependency(Module* owner)
{
    for (usize i = 0; i < m_dependency_count; ++i)
        if (m_dependencies[i] == owner)
            return;
    if (m_dependency_count == Module::MAX_DEPENDENCIES) {
        m_too_many_dependencies = true;
        return;
    }
    m_dependencies[m_dependency_count++] = owner;
}

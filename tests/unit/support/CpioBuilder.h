#pragma once
// A newc archive builder for host tests, laid out as GNU cpio writes it, with knobs to break it.
#include <lib/archive/Cpio.h>

#include <cstdio>
#include <string>
#include <vector>

class CpioBuilder {
public:
    struct Options {
        const char* magic = "070701";
        u32 mode = Cpio::TypeRegular | 0644;
        u32 uid = 0, gid = 0, mtime = 0, nlink = 1, ino = 0;
        u32 dev_major = 0, dev_minor = 0, rdev_major = 0, rdev_minor = 0, check = 0;
        long namesize_override = -1;
        long filesize_override = -1;
    };
    CpioBuilder& add(const std::string& name, const std::string& data, Options options)
    {
        u32 namesize = options.namesize_override >= 0 ? u32(options.namesize_override) : u32(name.size() + 1);
        u32 filesize = options.filesize_override >= 0 ? u32(options.filesize_override) : u32(data.size());
        char header[Cpio::HeaderSize + 1];
        snprintf(header, sizeof(header), "%s%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", options.magic,
            options.ino ? options.ino : ++m_ino, options.mode, options.uid, options.gid, options.nlink, options.mtime,
            filesize, options.dev_major, options.dev_minor, options.rdev_major, options.rdev_minor, namesize,
            options.check);
        m_bytes.insert(m_bytes.end(), header, header + Cpio::HeaderSize);
        m_bytes.insert(m_bytes.end(), name.begin(), name.end());
        m_bytes.push_back(0);
        pad();
        m_bytes.insert(m_bytes.end(), data.begin(), data.end());
        pad();
        return *this;
    }
    CpioBuilder& file(const std::string& name, const std::string& data, u32 permissions = 0644)
    {
        Options o;
        o.mode = Cpio::TypeRegular | permissions;
        return add(name, data, o);
    }
    CpioBuilder& dir(const std::string& name, u32 permissions = 0755)
    {
        Options o;
        o.mode = Cpio::TypeDirectory | permissions;
        return add(name, "", o);
    }
    CpioBuilder& symlink(const std::string& name, const std::string& target)
    {
        Options o;
        o.mode = Cpio::TypeSymlink | 0777;
        return add(name, target, o);
    }
    CpioBuilder& trailer()
    {
        Options o;
        o.mode = 0;
        o.nlink = 1;
        o.ino = 0xffffffff;
        return add("TRAILER!!!", "", o);
    }
    std::vector<u8>& bytes() { return m_bytes; }
    ReadonlyBytes span() const { return ReadonlyBytes(m_bytes.data(), m_bytes.size()); }

private:
    void pad()
    {
        while (m_bytes.size() % 4) m_bytes.push_back(0);
    }
    std::vector<u8> m_bytes;
    u32 m_ino { 0 };
};

// xxHash64, written from the algorithm's description (Yann Collet's xxHash specification).
#include "XxHash64.h"

namespace {

constexpr u64 prime1 = 11400714785074694791ull;
constexpr u64 prime2 = 14029467366897019727ull;
constexpr u64 prime3 = 1609587929392839161ull;
constexpr u64 prime4 = 9650029242287828579ull;
constexpr u64 prime5 = 2870177450012600261ull;

inline u64 rotl(u64 value, int bits) { return (value << bits) | (value >> (64 - bits)); }
inline u64 load64(const u8* p)
{
    u64 v;
    __builtin_memcpy(&v, p, 8);
    return v;
}
inline u32 load32(const u8* p)
{
    u32 v;
    __builtin_memcpy(&v, p, 4);
    return v;
}
inline u64 round(u64 accumulator, u64 lane)
{
    accumulator += lane * prime2;
    accumulator = rotl(accumulator, 31);
    return accumulator * prime1;
}
inline u64 merge(u64 hash, u64 accumulator)
{
    hash ^= round(0, accumulator);
    return hash * prime1 + prime4;
}

}

u64 XxHash64::digest(ReadonlyBytes data, u64 seed)
{
    const u8* p = data.data();
    usize length = data.size();
    const u8* end = p + length;
    u64 hash;
    if (length >= 32) {
        u64 v1 = seed + prime1 + prime2;
        u64 v2 = seed + prime2;
        u64 v3 = seed;
        u64 v4 = seed - prime1;
        const u8* limit = end - 32;
        do {
            v1 = round(v1, load64(p));
            v2 = round(v2, load64(p + 8));
            v3 = round(v3, load64(p + 16));
            v4 = round(v4, load64(p + 24));
            p += 32;
        } while (p <= limit);
        hash = rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18);
        hash = merge(hash, v1);
        hash = merge(hash, v2);
        hash = merge(hash, v3);
        hash = merge(hash, v4);
    } else {
        hash = seed + prime5;
    }
    hash += length;
    while (end - p >= 8) {
        hash ^= round(0, load64(p));
        hash = rotl(hash, 27) * prime1 + prime4;
        p += 8;
    }
    if (end - p >= 4) {
        hash ^= static_cast<u64>(load32(p)) * prime1;
        hash = rotl(hash, 23) * prime2 + prime3;
        p += 4;
    }
    while (p < end) {
        hash ^= static_cast<u64>(*p) * prime5;
        hash = rotl(hash, 11) * prime1;
        ++p;
    }
    hash ^= hash >> 33;
    hash *= prime2;
    hash ^= hash >> 29;
    hash *= prime3;
    hash ^= hash >> 32;
    return hash;
}

#pragma once
// FseTable: a finite state entropy decoding table (RFC 8878 section 4.1).
//
// Interface:
//   FseTable table;
//   usize used = TRY(table.read(bytes, max_symbol, max_log));
//   table.build_rle(symbol);                     - a one-state table that always yields `symbol`
//   table.build(counts, symbol_count, log)      - from normalized counts (predefined tables)
//   const FseEntry& e = table.entry(state);      - e.symbol; next state = e.base + read(e.nbits)
//
// A table never holds a symbol above the max_symbol it was read with, and every next state it
// can produce (base + any nbits-bit value) is inside the table, so the decoding loops index it
// without further checks.
#include <ktl/ErrorOr.h>
#include <ktl/Span.h>
#include <ktl/Types.h>

struct FseEntry {
    u16 base;
    u8 symbol;
    u8 nbits;
};

class FseTable {
public:
    static constexpr u32 max_accuracy_log = 9;
    static constexpr u32 max_symbols = 256;

    // Reads a table description from the front of `data`; returns the bytes it used.
    ErrorOr<usize> read(ReadonlyBytes data, u32 max_symbol, u32 max_log);
    // counts[s] is the normalized probability of symbol s; -1 means "less than 1".
    ErrorOr<void> build(const i16* counts, u32 symbol_count, u32 accuracy_log);
    void build_rle(u8 symbol);

    u32 accuracy_log() const { return m_accuracy_log; }
    const FseEntry* entries() const { return m_entries; }
    const FseEntry& entry(u32 state) const { return m_entries[state]; }

private:
    FseEntry m_entries[1u << max_accuracy_log] {};
    u32 m_accuracy_log { 0 };
};

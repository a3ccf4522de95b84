#pragma once
// A doubly linked intrusive list: an object carries its own node, so listing it never allocates.
#include <ktl/Assertions.h>
#include <ktl/Types.h>

struct IntrusiveListNode {
    IntrusiveListNode* prev { nullptr };
    IntrusiveListNode* next { nullptr };
    bool is_linked() const { return next != nullptr; }
};

template<typename T, IntrusiveListNode T::*Member>
class IntrusiveList {
public:
    IntrusiveList() { m_head.prev = m_head.next = &m_head; }
    IntrusiveList(const IntrusiveList&) = delete;
    IntrusiveList& operator=(const IntrusiveList&) = delete;

    bool is_empty() const { return m_head.next == &m_head; }
    usize size_slow() const
    {
        usize n = 0;
        for (auto* node = m_head.next; node != &m_head; node = node->next) ++n;
        return n;
    }
    void append(T& item) { insert_before(m_head, node_of(item)); }
    void prepend(T& item) { insert_before(*m_head.next, node_of(item)); }
    // Inserts item in front of `before`, which must be on this list.
    void insert_before(T& before, T& item) { insert_before(node_of(before), node_of(item)); }
    static void remove(T& item)
    {
        auto& node = node_of(item);
        VERIFY(node.is_linked());
        node.prev->next = node.next;
        node.next->prev = node.prev;
        node.prev = node.next = nullptr;
    }
    T* first() const { return is_empty() ? nullptr : owner_of(m_head.next); }
    T* last() const { return is_empty() ? nullptr : owner_of(m_head.prev); }
    T* next(T& item) const
    {
        auto* n = node_of(item).next;
        return n == &m_head ? nullptr : owner_of(n);
    }
    T* take_first()
    {
        T* item = first();
        if (item) remove(*item);
        return item;
    }

    class Iterator {
    public:
        Iterator(IntrusiveListNode* node) : m_node(node) { }
        T& operator*() const { return *owner_of(m_node); }
        T* operator->() const { return owner_of(m_node); }
        Iterator& operator++() { m_node = m_node->next; return *this; }
        bool operator!=(const Iterator& other) const { return m_node != other.m_node; }

    private:
        IntrusiveListNode* m_node;
    };
    Iterator begin() const { return Iterator(m_head.next); }
    Iterator end() const { return Iterator(const_cast<IntrusiveListNode*>(&m_head)); }

private:
    static IntrusiveListNode& node_of(T& item) { return item.*Member; }
    static T* owner_of(IntrusiveListNode* node)
    {
        auto offset = reinterpret_cast<uptr>(&(static_cast<T*>(nullptr)->*Member));
        return reinterpret_cast<T*>(reinterpret_cast<uptr>(node) - offset);
    }
    static void insert_before(IntrusiveListNode& before, IntrusiveListNode& node)
    {
        VERIFY(!node.is_linked());
        node.next = &before;
        node.prev = before.prev;
        before.prev->next = &node;
        before.prev = &node;
    }

    IntrusiveListNode m_head;
};

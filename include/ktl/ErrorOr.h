#pragma once
// ErrorOr<T>: a value or an errno-valued Error, propagated with TRY. In the style of SerenityOS AK.
#include <ktl/Assertions.h>
#include <ktl/Errno.h>
#include <ktl/Types.h>
#include <new>
#include <type_traits>
#include <utility>

// An errno code and, optionally, a static message that says why (in the style of SerenityOS's
// Error). The message must be a string literal or otherwise outlive every copy of the Error: the
// reason travels with the error, so no caller reads a stale reason from a global.
class Error {
public:
    constexpr Error(int code) : m_code(code) { }
    constexpr Error(int code, const char* message) : m_code(code), m_message(message) { }
    static constexpr Error from_errno(int code) { return Error(code); }
    static constexpr Error with_message(int code, const char* message) { return Error(code, message); }
    constexpr int code() const { return m_code; }
    const char* name() const { return errno_name(m_code); }
    // The static reason, or "" when the error carries none.
    constexpr const char* message() const { return m_message ? m_message : ""; }
    constexpr bool has_message() const { return m_message && m_message[0]; }
    // Two errors are equal when their codes are: the message is commentary.
    constexpr bool operator==(const Error& other) const { return m_code == other.m_code; }

private:
    int m_code;
    const char* m_message { nullptr };
};

template<typename T>
class [[nodiscard]] ErrorOr {
public:
    ErrorOr(const T& value) : m_has_value(true) { new (&m_storage.value) T(value); }
    ErrorOr(T&& value) : m_has_value(true) { new (&m_storage.value) T(std::move(value)); }
    template<typename U>
        requires(std::is_convertible_v<U, T> && !std::is_same_v<std::remove_cvref_t<U>, Error>
                 && !std::is_same_v<std::remove_cvref_t<U>, T> && !std::is_same_v<std::remove_cvref_t<U>, Errno::ErrnoCode>)
    ErrorOr(U&& value) : m_has_value(true) { new (&m_storage.value) T(std::forward<U>(value)); }
    ErrorOr(Error error) : m_has_value(false) { new (&m_storage.error) Error(error); }
    // NOTE: an errno constant converts to an error, so `return ENOMEM;` works; a plain int is a value.
    ErrorOr(Errno::ErrnoCode code) : m_has_value(false) { new (&m_storage.error) Error(code); }

    ErrorOr(ErrorOr&& other) : m_has_value(other.m_has_value)
    {
        if (m_has_value) new (&m_storage.value) T(std::move(other.m_storage.value));
        else new (&m_storage.error) Error(other.m_storage.error);
    }
    ErrorOr(const ErrorOr& other) : m_has_value(other.m_has_value)
    {
        if (m_has_value) new (&m_storage.value) T(other.m_storage.value);
        else new (&m_storage.error) Error(other.m_storage.error);
    }
    ErrorOr& operator=(ErrorOr&& other)
    {
        if (this != &other) { this->~ErrorOr(); new (this) ErrorOr(std::move(other)); }
        return *this;
    }
    ~ErrorOr()
    {
        if (m_has_value) m_storage.value.~T();
    }

    bool is_error() const { return !m_has_value; }
    Error error() const { VERIFY(!m_has_value); return m_storage.error; }
    T& value() { VERIFY(m_has_value); return m_storage.value; }
    const T& value() const { VERIFY(m_has_value); return m_storage.value; }
    T release_value() { VERIFY(m_has_value); return std::move(m_storage.value); }
    Error release_error() { return error(); }

private:
    union Storage {
        Storage() { }
        ~Storage() { }
        T value;
        Error error;
    } m_storage;
    bool m_has_value;
};

template<>
class [[nodiscard]] ErrorOr<void> {
public:
    ErrorOr() : m_error(0) { }
    ErrorOr(Error error) : m_error(error) { }
    ErrorOr(Errno::ErrnoCode code) : m_error(code) { }
    bool is_error() const { return m_error.code() != 0; }
    Error error() const { VERIFY(is_error()); return m_error; }
    Error release_error() { return error(); }
    void release_value() { }
    void value() const { }

private:
    Error m_error;
};

#define TRY(expr)                                          \
    ({                                                     \
        auto _try_result = (expr);                         \
        if (_try_result.is_error()) [[unlikely]]           \
            return _try_result.release_error();            \
        _try_result.release_value();                       \
    })

#define MUST(expr)                                         \
    ({                                                     \
        auto _must_result = (expr);                        \
        VERIFY(!_must_result.is_error());                  \
        _must_result.release_value();                      \
    })

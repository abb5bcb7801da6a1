// SPDX-License-Identifier: MIT
#pragma once

// Errors are values everywhere in Sluice: a bare std::error_code, or a Result<T> that holds either
// a T or the std::error_code saying why there is none. One mechanism keeps hot paths noexcept and
// embedding apps simple.
//
// Result<T> follows std::expected<T, std::error_code> (explicit operator bool, value(), operator*,
// operator->, error()). It is our own small class rather than std::expected because the latter is
// C++23 and absent from the libstdc++ that clang-14 (our fuzzing compiler) can compile.

#include <cassert>
#include <new>
#include <system_error>
#include <type_traits>
#include <utility>

namespace sluice {

// The allocator's error codes (graph, parse and file errors are engine::GraphErrc, in a category
// of their own). Compare a std::error_code against them directly:
// `if (ec == sluice::Errc::not_committed)`.
enum class Errc {
    not_committed = 1,    // the allocator is decommitted (or was never committed)
    timeout,              // a timed wait ran out
    would_block,          // a try_ call found nothing available
    size_not_set,         // commit() before set_properties()
    already_committed,    // set_properties() while committed
    buffers_outstanding,  // set_properties() while samples from an earlier commit are still held
    invalid_properties,   // properties out of range (zero buffers, bad alignment, unknown node...)
    out_of_memory,        // the OS refused the memory
    cancelled,            // the caller's std::stop_token was triggered while waiting
    invalid_argument,     // a value out of range for this call (set_size beyond capacity...)
};

// The category of Errc; its name() is "sluice.allocator". Any thread. Never allocates.
const std::error_category& error_category() noexcept;

inline std::error_code make_error_code(Errc e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// Tag type to build a failed Result: `return sluice::unexpected(Errc::timeout);`
struct Unexpected {
    std::error_code code;
};
inline Unexpected unexpected(std::error_code ec) noexcept { return {ec}; }
inline Unexpected unexpected(Errc e) noexcept { return {make_error_code(e)}; }

// Either a T or the error that prevented it. Never throws except from value() on an error, which
// throws std::system_error (use operator* after checking, on hot paths).
template <class T>
class [[nodiscard]] Result {
public:
    using value_type = T;

    Result(const T& v) noexcept(std::is_nothrow_copy_constructible_v<T>) : ok_(true) {
        ::new (&storage_.value) T(v);
    }
    Result(T&& v) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(true) {
        ::new (&storage_.value) T(std::move(v));
    }
    Result(Unexpected e) noexcept : ok_(false) {
        assert(e.code && "a failed Result needs a non-zero error code");
        ::new (&storage_.error) std::error_code(e.code);
    }
    Result(const Result& o) : ok_(o.ok_) {
        if (ok_) ::new (&storage_.value) T(o.storage_.value);
        else ::new (&storage_.error) std::error_code(o.storage_.error);
    }
    Result(Result&& o) noexcept(std::is_nothrow_move_constructible_v<T>) : ok_(o.ok_) {
        if (ok_) ::new (&storage_.value) T(std::move(o.storage_.value));
        else ::new (&storage_.error) std::error_code(o.storage_.error);
    }
    Result& operator=(Result o) noexcept(std::is_nothrow_move_constructible_v<T>) {
        destroy();
        ok_ = o.ok_;
        if (ok_) ::new (&storage_.value) T(std::move(o.storage_.value));
        else ::new (&storage_.error) std::error_code(o.storage_.error);
        return *this;
    }
    ~Result() { destroy(); }

    explicit operator bool() const noexcept { return ok_; }
    bool has_value() const noexcept { return ok_; }

    T& operator*() & noexcept { assert(ok_ && "operator* on a failed Result"); return storage_.value; }
    const T& operator*() const& noexcept { assert(ok_ && "operator* on a failed Result"); return storage_.value; }
    T&& operator*() && noexcept { assert(ok_ && "operator* on a failed Result"); return std::move(storage_.value); }
    T* operator->() noexcept { assert(ok_ && "operator-> on a failed Result"); return &storage_.value; }
    const T* operator->() const noexcept { assert(ok_ && "operator-> on a failed Result"); return &storage_.value; }

    T& value() & { check(); return storage_.value; }
    const T& value() const& { check(); return storage_.value; }
    T&& value() && { check(); return std::move(storage_.value); }

    // The error; an empty error_code when this holds a value.
    std::error_code error() const noexcept { return ok_ ? std::error_code{} : storage_.error; }

private:
    void check() const {
        if (!ok_) throw std::system_error(storage_.error);
    }
    void destroy() noexcept {
        if (ok_) storage_.value.~T();
        else storage_.error.~error_code();
    }

    union Storage {
        Storage() noexcept {}
        ~Storage() {}
        T value;
        std::error_code error;
    } storage_;
    bool ok_;
};

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::Errc> : std::true_type {};

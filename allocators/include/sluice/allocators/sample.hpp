// SPDX-License-Identifier: MIT
#pragma once

// SampleRef: a counted reference to one media buffer of a SampleAllocator's pool.
//
// Copying a SampleRef adds a reference, moving transfers it, destroying (or reset()) drops it;
// the last reference returns the buffer to its pool, or frees it when the pool was decommitted
// since. A default-constructed SampleRef is empty.
//
// Threading: the reference count is atomic, so copies of one sample may live on different threads
// and be dropped concurrently. The payload and the metadata (size, times, flags) are plain memory:
// the thread that fills a sample writes them before handing the sample on, and handing a SampleRef
// to another thread through any synchronising channel (a queue, a mutex, a thread start) publishes
// them. Two threads must not write the same sample at once.

#include <sluice/allocators/detail/sample_header.hpp>
#include <sluice/allocators/result.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace sluice {

// Media time in nanoseconds. kNoTime marks "no time stamp".
using MediaTime = std::int64_t;
inline constexpr MediaTime kNoTime = INT64_MIN;

// Sample flags, after DirectShow's IMediaSample and GStreamer's buffer flags.
enum class SampleFlags : std::uint32_t {
    none = 0,
    sync_point = 1u << 0,     // decodable on its own (key frame)
    discontinuity = 1u << 1,  // not contiguous with the previous sample (seek, gap, lost packets)
    preroll = 1u << 2,        // to be processed but not presented
    end_of_stream = 1u << 3,  // the last sample of its stream
};
constexpr SampleFlags operator|(SampleFlags a, SampleFlags b) noexcept {
    return SampleFlags(std::uint32_t(a) | std::uint32_t(b));
}
constexpr SampleFlags operator&(SampleFlags a, SampleFlags b) noexcept {
    return SampleFlags(std::uint32_t(a) & std::uint32_t(b));
}
constexpr SampleFlags operator~(SampleFlags a) noexcept { return SampleFlags(~std::uint32_t(a)); }
constexpr bool any(SampleFlags f) noexcept { return std::uint32_t(f) != 0; }

class SampleRef {
public:
    SampleRef() noexcept = default;
    SampleRef(const SampleRef& other) noexcept : header_(other.header_) { add_ref(); }
    SampleRef(SampleRef&& other) noexcept : header_(std::exchange(other.header_, nullptr)) {}
    SampleRef& operator=(const SampleRef& other) noexcept {
        SampleRef copy(other);
        swap(copy);
        return *this;
    }
    SampleRef& operator=(SampleRef&& other) noexcept {
        SampleRef moved(std::move(other));
        swap(moved);
        return *this;
    }
    // Inlined everywhere, like reset(): an out-of-line copy would take the SampleRef's address
    // and keep every SampleRef and Result around it in memory instead of registers.
    SLUICE_ALWAYS_INLINE ~SampleRef() { reset(); }

    void swap(SampleRef& other) noexcept { std::swap(header_, other.header_); }

    explicit operator bool() const noexcept { return header_ != nullptr; }

    // Drops this reference (the last one returns the buffer). Any thread. Never blocks, never
    // locks, never allocates; after decommit the memory is freed by a housekeeping thread, not here.
    void reset() noexcept;

    // Like reset(), and asks that the buffer come back scrubbed: when the last reference drops,
    // its metadata is cleared and its contents are not to be trusted. A waiter is woken exactly as
    // for an ordinary return. Use it for samples dropped on a flush or found corrupt.
    void discard() noexcept;

    // The payload: capacity() bytes starting at data(), aligned to the allocator's alignment.
    std::byte* data() const noexcept { return header_->data; }
    std::size_t capacity() const noexcept { return header_->capacity; }

    // Length of the valid payload; starts at 0 for every sample handed out by get_buffer().
    std::size_t size() const noexcept { return header_->size; }
    // Sets the payload length. Errc::invalid_argument when n > capacity(); the size is unchanged.
    [[nodiscard]] std::error_code set_size(std::size_t n) noexcept;

    // The `prefix` bytes right before data(), for headers a downstream may prepend in place.
    std::span<std::byte> prefix() const noexcept {
        return {header_->data - header_->prefix_bytes, header_->prefix_bytes};
    }

    // Presentation interval in nanoseconds of stream time; kNoTime when unknown.
    MediaTime start_time() const noexcept { return header_->start; }
    MediaTime stop_time() const noexcept { return header_->stop; }
    void set_times(MediaTime start, MediaTime stop) noexcept {
        header_->start = start;
        header_->stop = stop;
    }

    SampleFlags flags() const noexcept { return SampleFlags(header_->flags); }
    bool has(SampleFlags f) const noexcept { return any(flags() & f); }
    void set_flags(SampleFlags f) noexcept { header_->flags = std::uint32_t(f); }
    void add_flags(SampleFlags f) noexcept { header_->flags |= std::uint32_t(f); }

    // Number of references to this sample right now (a snapshot when others hold it too).
    std::uint32_t use_count() const noexcept {
        // relaxed: a diagnostic snapshot; orders nothing.
        return header_ ? header_->refs.load(std::memory_order_relaxed) & detail::kRefMask : 0;
    }

    // Which buffer of its pool this is (0 .. buffers-1), and which commit of the allocator made
    // that pool (the allocator's stats().epoch at the time).
    std::size_t index() const noexcept;
    std::uint64_t epoch() const noexcept;

    // Names who holds the sample now, for the allocator's ownership ledger (stop diagnostics).
    // `holder` must outlive the sample (a node name, a string literal). One relaxed store; any
    // thread that holds the sample. ledger() reports it while the ledger is on, or always when
    // the allocator's owner names every holder (SampleAllocator::set_holders_named).
    void set_holder(const char* holder) noexcept;

private:
    friend class SampleAllocator;
    explicit SampleRef(detail::SampleHeader* h) noexcept : header_(h) {}

    void add_ref() noexcept {
        // relaxed: a new reference is made from an existing one, which keeps the sample alive;
        // nothing is published by the increment (as in std::shared_ptr's copy).
        if (header_) header_->refs.fetch_add(1, std::memory_order_relaxed);
    }

    detail::SampleHeader* header_ = nullptr;
};

// Result<SampleRef>, what every get returns, holds the sample and the error side by side
// rather than in a union, and the error as the allocator's Errc alone (the only errors a get
// has): an empty SampleRef and a zero enum cost nothing to make, and plain members let the
// compiler keep the whole Result in registers once get_buffer is inlined, so unwrapping it costs
// no stores and loads.
template <>
class [[nodiscard]] Result<SampleRef> {
public:
    using value_type = SampleRef;

    Result(SampleRef&& v) noexcept : value_(std::move(v)) {}
    Result(const SampleRef& v) noexcept : value_(v) {}
    Result(Errc e) noexcept : error_(e) { assert(int(e) != 0 && "a failed Result needs an error"); }
    // From sluice::unexpected(...): an allocator error (anything else is a programming error,
    // kept as invalid_argument).
    Result(Unexpected e) noexcept
        : error_(e.code.category() == error_category() ? Errc(e.code.value()) : Errc::invalid_argument) {
        assert(e.code && "a failed Result needs a non-zero error code");
    }
    Result(Result&&) noexcept = default;
    Result& operator=(Result&&) noexcept = default;
    Result(const Result&) noexcept = default;
    Result& operator=(const Result&) noexcept = default;
    // Inlined everywhere, as ~SampleRef is, for the same reason.
    SLUICE_ALWAYS_INLINE ~Result() {}

    explicit operator bool() const noexcept { return int(error_) == 0; }
    bool has_value() const noexcept { return int(error_) == 0; }

    SampleRef& operator*() & noexcept { assert(has_value() && "operator* on a failed Result"); return value_; }
    const SampleRef& operator*() const& noexcept { assert(has_value() && "operator* on a failed Result"); return value_; }
    SampleRef&& operator*() && noexcept { assert(has_value() && "operator* on a failed Result"); return std::move(value_); }
    SampleRef* operator->() noexcept { assert(has_value() && "operator-> on a failed Result"); return &value_; }
    const SampleRef* operator->() const noexcept { assert(has_value() && "operator-> on a failed Result"); return &value_; }

    SampleRef& value() & { check(); return value_; }
    const SampleRef& value() const& { check(); return value_; }
    SampleRef&& value() && { check(); return std::move(value_); }

    // The error; an empty error_code when this holds a value.
    std::error_code error() const noexcept { return int(error_) == 0 ? std::error_code{} : make_error_code(error_); }

private:
    void check() const {
        if (int(error_) != 0) throw std::system_error(make_error_code(error_));
    }

    SampleRef value_;    // empty on failure
    Errc error_ = Errc{};  // 0 on success
};

}  // namespace sluice

// SPDX-License-Identifier: MIT
#pragma once

// The allocator's inline fast paths: a get and a release that find what they need in the calling
// thread's cache word or on the free list. Included by sample_allocator.hpp; not API. The memory
// orders pair with the ones in sample_allocator.cpp, whose top comment shows each pairing.
//
// These functions are always inlined: a get+release pair is about 35 instructions when they are
// and three times as many when a compiler at -O2 decides not to, so the user's optimisation
// level must not decide it (GCC's -O2 inliner refuses functions of this size otherwise).

#include <sluice/allocators/detail/sample_header.hpp>

#include <chrono>
#include <cstdint>
#include <utility>

namespace sluice {

namespace detail {
// The byte offset of the cache word this thread uses in every pool. Every thread starts on word 0,
// shared; the first time one of its cache CASes fails (another thread was there), it moves to a
// word of its own (round robin over the other kCacheSlots - 1). So threads that never meet never
// pay for the assignment. initial-exec: a thread-pointer load, even from a shared library.
inline thread_local std::uintptr_t cache_offset __attribute__((tls_model("initial-exec"))) = 0;
void move_cache_slot() noexcept;  // sets the above

SLUICE_ALWAYS_INLINE std::atomic<std::uint64_t>& cache_word(Pool& pool) noexcept {
    static_assert(sizeof(CacheWord) == kCacheLineSize);
    return reinterpret_cast<CacheWord*>(reinterpret_cast<std::byte*>(pool.caches) + cache_offset)->word;
}
}  // namespace detail

// --- Get ------------------------------------------------------------------------------------

SLUICE_ALWAYS_INLINE detail::SampleHeader* SampleAllocator::take_cached() noexcept {
    // acquire: pairs with commit's release store; the pool's cache words are initialised.
    std::atomic<std::uint64_t>& cache = detail::cache_word(*current_.load(std::memory_order_acquire));
    // relaxed: a hint; the CAS decides.
    std::uint64_t word = cache.load(std::memory_order_relaxed);
    const std::uint64_t field = word & kSlotMask;  // slot + 1, or 0
    if (field == 0) return nullptr;
    // acquire: pairs with the parking CAS's release, so the previous holder's writes to the sample
    // happen before ours. relaxed on failure: we give up and use the free list, which orders
    // itself. The word says everything (a value that came back is still the truth: the sample in
    // it is free and belongs to this pool, since retired pools' words are closed for good).
    if (!cache.compare_exchange_strong(word, word - field + kCountIncrement, std::memory_order_acquire,
                                       std::memory_order_relaxed)) [[unlikely]] {
        detail::move_cache_slot();
        return nullptr;
    }
    detail::SampleHeader* h = slots_ + (field - 1);
    if (h == nullptr) __builtin_unreachable();  // spares the caller's null test
    return h;
}

SLUICE_ALWAYS_INLINE detail::SampleHeader* SampleAllocator::try_pop(PopFailure& why) noexcept {
    // acquire: pairs with the release of the push or commit that stored this head, so the
    // header's `next` and metadata written before it are visible.
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
        const auto slot = std::uint32_t(head & kSlotMask);
        if (slot >= kDecommittedSlot) [[unlikely]] {
            why = slot == kEmptySlot ? PopFailure::empty : PopFailure::decommitted;
            return nullptr;
        }
        detail::SampleHeader* h = slots_ + slot;
        // relaxed: may be stale if another thread popped `h` meanwhile; then the CAS below fails
        // because the counter moved. The arena is never unmapped, so the read itself is safe.
        const std::uint32_t next = h->next.load(std::memory_order_relaxed);
        // The waiters flag stays as it is.
        const std::uint64_t popped = ((head & ~kSlotMask) + kCountIncrement) | next;
        // acquire on success: the sample's previous owner released it with the push CAS;
        // acquire on failure: the reloaded head is used the same way as the first load.
        if (head_.compare_exchange_weak(head, popped, std::memory_order_acquire, std::memory_order_acquire)) {
            if (h == nullptr) __builtin_unreachable();  // spares the caller's null test
            return h;
        }
    }
}

SLUICE_ALWAYS_INLINE detail::SampleHeader* SampleAllocator::hand_out_cached(detail::SampleHeader* h) noexcept {
    // Every get starts the sample afresh. `refs` is 1 already: a parked sample keeps its count.
    // The ledger and checking need nothing here: their pools' caches are closed.
    h->size = 0;
    h->flags = 0;
    h->start = h->stop = INT64_MIN;
    return h;
}

SLUICE_ALWAYS_INLINE detail::SampleHeader* SampleAllocator::hand_out(detail::SampleHeader* h, const char* holder) noexcept {
    // relaxed: set by control operations; a stale value only delays a switch by one get (the
    // checked bit changes only between commits, which the head's acquire orders).
    if (const std::uint8_t extras = get_extras_.load(std::memory_order_relaxed)) [[unlikely]] {
        if (extras & kLedgerBit) record_holder(h, holder);
        if (extras & kCheckedBit) on_get_checked(h);
    }
    // relaxed: the sample is ours alone until the caller hands the SampleRef on.
    h->refs.store(1, std::memory_order_relaxed);
    return hand_out_cached(h);
}

// The fast path of every get: this thread's cache word, then the free list; the sample handed
// out, or nullptr with `why` the free list said no.
SLUICE_ALWAYS_INLINE detail::SampleHeader* SampleAllocator::take_fast(PopFailure& why, const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    if (detail::SampleHeader* h = try_pop(why)) [[likely]]
        return hand_out(h, holder);
    return nullptr;
}

// Every get_buffer overload. `deadline()` is called only when the fast path found no sample (the
// pool empty or decommitted), so a timed get reads the clock only when it may have to wait.
template <class DeadlineFn>
SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::get_fast(const std::stop_token* stop, DeadlineFn deadline,
                                                                 const char* holder) noexcept {
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = take_fast(why, holder)) [[likely]]
        return SampleRef(h);
    // The deadline even when the pop found the pool decommitted: a commit may come before
    // get_slow looks again, and a timed get must not then wait without one (a 20 ms get that
    // met a decommit and a recommit waited forever under TSan in Churn.CachesUnderDecommit...).
    return from(get_slow(deadline(), stop, holder));
}

SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::from(Taken taken) noexcept {
    if (taken.sample != nullptr) return SampleRef(taken.sample);
    return taken.error;
}

template <class Rep, class Period>
std::int64_t SampleAllocator::deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
    using namespace std::chrono;
    const std::int64_t now = duration_cast<nanoseconds>(steady_clock::now().time_since_epoch()).count();
    // Compared as seconds in double, which no duration overflows (seconds::max() and hours::max()
    // would overflow a conversion to nanoseconds). NaN and negative timeouts mean "do not wait".
    const double seconds = duration<double>(timeout).count();
    if (!(seconds > 0)) return now;
    // About 95 years, past any steady-clock deadline worth keeping: no deadline at all.
    if (seconds >= 3e9) return kNoDeadline;
    return now + duration_cast<nanoseconds>(timeout).count();
}

SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::get_buffer(const char* holder) noexcept {
    return get_fast(nullptr, [] { return kNoDeadline; }, holder);
}

SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::get_buffer(const std::stop_token& stop,
                                                                   const char* holder) noexcept {
    return get_fast(&stop, [] { return kNoDeadline; }, holder);
}

template <class Rep, class Period>
SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::get_buffer(std::chrono::duration<Rep, Period> timeout,
                                                                   const char* holder) noexcept {
    return get_fast(nullptr, [timeout] { return deadline_after(timeout); }, holder);
}

template <class Rep, class Period>
SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::get_buffer(const std::stop_token& stop,
                                                                   std::chrono::duration<Rep, Period> timeout,
                                                                   const char* holder) noexcept {
    return get_fast(&stop, [timeout] { return deadline_after(timeout); }, holder);
}

SLUICE_ALWAYS_INLINE Result<SampleRef> SampleAllocator::try_get_buffer(const char* holder) noexcept {
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = take_fast(why, holder)) [[likely]]
        return SampleRef(h);
    return from(try_get_slow(why, holder));
}

// --- Release ----------------------------------------------------------------------------------

// The sole holder's release: parks the sample in this thread's cache word of its pool when that
// word is open and empty. The parking CAS is the release's last touch of anything the allocator
// owns: from then on the sample is free, and a destructor that counts it back may return.
SLUICE_ALWAYS_INLINE bool SampleAllocator::try_park(detail::SampleHeader* h) noexcept {
    std::atomic<std::uint64_t>& cache = detail::cache_word(*h->pool);
    // relaxed: a hint; the CAS decides.
    std::uint64_t word = cache.load(std::memory_order_relaxed);
    if ((word & (kSlotMask | kClosedFlag)) != 0) return false;
    // release: publishes our writes to the sample to whoever takes it (take_cached's acquire).
    // relaxed on failure: release_slow starts again from a fresh load.
    if (cache.compare_exchange_strong(word, word + h->slot + 1, std::memory_order_release,
                                      std::memory_order_relaxed)) [[likely]]
        return true;
    detail::move_cache_slot();  // someone else uses this word
    return false;
}

SLUICE_ALWAYS_INLINE void SampleRef::reset() noexcept {
    if (header_ == nullptr) return;
    detail::SampleHeader* h = std::exchange(header_, nullptr);
    // acquire: pairs with the release decrements of other holders, so their writes to the sample
    // happen before its reuse. Exactly 1: the sole holder, no discard asked. Nobody else can copy
    // a reference it alone has, so the count cannot change under it, and a parked sample keeps it.
    if (h->refs.load(std::memory_order_acquire) == 1 && SampleAllocator::try_park(h)) [[likely]]
        return;
    SampleAllocator::release_slow(h);
}

// Inline: Node::push calls it for every sample. One relaxed store to the header's second line.
inline void SampleRef::set_holder(const char* holder) noexcept {
    // relaxed: a diagnostic, read by ledger() as a snapshot.
    if (header_ != nullptr) header_->holder.store(holder, std::memory_order_relaxed);
}

inline std::size_t SampleRef::index() const noexcept { return header_->index; }
inline std::uint64_t SampleRef::epoch() const noexcept { return header_->pool->epoch; }

}  // namespace sluice

// SPDX-License-Identifier: MIT
#pragma once

// The allocator's friend for tests: one definition for every test file of the executable (two
// different ones would break the one-definition rule). Reaches private words to check the layout
// and to watch the destructor test's single-stepping.
#include <sluice/sluice.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace sluice::detail {
struct LayoutProbe {
    // The words the destructor test watches while it single-steps.
    static std::atomic<std::uint64_t>& head(SampleAllocator& a) { return a.head_; }
    static Pool* pool(SampleAllocator& a) { return a.current_.load(std::memory_order_relaxed); }
    static std::atomic<std::uint32_t>& live_retired(SampleAllocator& a) { return a.live_retired_; }
    static constexpr std::uint64_t kSlotMask = SampleAllocator::kSlotMask;
    // Where the waiting path begins, for the test that holds a get between its fast pop and
    // get_slow: a non-virtual member function pointer's first word is the function's address
    // (Itanium C++ ABI).
    static const void* get_slow_entry() {
        auto entry = &SampleAllocator::get_slow;
        static_assert(sizeof entry == 2 * sizeof(void*));
        const void* address = nullptr;
        std::memcpy(&address, &entry, sizeof address);
        return address;
    }
    static constexpr std::uint32_t kDecommittedSlot = SampleAllocator::kDecommittedSlot;

    // Rule 6: the cache-line layout of the hot words.
    static std::ptrdiff_t distance(const void* a, const void* b) {
        return std::abs(static_cast<const char*>(a) - static_cast<const char*>(b));
    }
    static void check(const SampleAllocator& a) {
        CHECK(std::uintptr_t(&a.head_) % kCacheLineSize == 0);
        CHECK(distance(&a.head_, &a.waiters_) >= std::ptrdiff_t(kCacheLineSize));
        CHECK(distance(&a.head_, &a.current_) >= std::ptrdiff_t(kCacheLineSize));
        CHECK(distance(&a.head_, &a.live_retired_) >= std::ptrdiff_t(kCacheLineSize));
        CHECK(distance(&a.waiters_, &a.current_) >= std::ptrdiff_t(kCacheLineSize));
        CHECK(distance(&a.current_, &a.live_retired_) >= std::ptrdiff_t(kCacheLineSize));
        // The per-thread cache words of a pool: each on its own line, apart from the pool's
        // constants and its `outstanding` count.
        const Pool& pool = *a.current_.load(std::memory_order_relaxed);
        for (std::size_t i = 0; i < kCacheSlots; ++i) {
            CHECK(std::uintptr_t(&pool.caches[i].word) % kCacheLineSize == 0);
            CHECK(distance(&pool.caches[i].word, &pool.outstanding) >= std::ptrdiff_t(kCacheLineSize));
            CHECK(distance(&pool.caches[i].word, &pool.retired) >= std::ptrdiff_t(kCacheLineSize));
        }
    }
};
}  // namespace sluice::detail

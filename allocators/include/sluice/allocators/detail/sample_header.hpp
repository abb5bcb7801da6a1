// SPDX-License-Identifier: MIT
#pragma once

// Internal layout shared by SampleRef and SampleAllocator's inline fast paths. Not API.

#include <atomic>
#include <cstddef>
#include <cstdint>

// Forces a function inline at every optimisation level: the allocator's fast paths are a few
// dozen instructions when inlined and three times as many when a compiler at -O2 declines, so a
// user's build flags must not decide it.
#if defined(__GNUC__) || defined(__clang__)
#define SLUICE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define SLUICE_ALWAYS_INLINE inline
#endif

namespace sluice {
class SampleAllocator;
}

namespace sluice::detail {

// 64 bytes on x86-64 and most ARM cores. Fixed rather than taken from
// std::hardware_destructive_interference_size so the layout does not change with compiler flags.
inline constexpr std::size_t kCacheLineSize = 64;

struct Pool;
struct LayoutProbe;  // defined by the tests, to reach the allocator's private words

// One per buffer. Headers live in the allocator's slot arena, which is never unmapped while the
// allocator exists: a get that read a stale free-list head may still read a header's `next`
// safely (its CAS then fails), which is what lets pools be freed without hazard pointers.
//
// Line 0 is the sample's hot line: get, release and add_ref of this sample touch only it (plus
// one cache word, or the allocator's head), and no other sample shares it.
struct alignas(kCacheLineSize) SampleHeader {
    // Low 31 bits: the reference count. Invariant: 0 while the sample is on its pool's free list
    // or counted out of a retired pool; 1 while it is parked in a cache word (the release that
    // parks it leaves the sole holder's count in place, and the take that hands it out again
    // needs it there: two stores fewer per get+release pair); otherwise the number of SampleRefs.
    // The thread that drops it to 0 owns the header until it pushes it back.
    // Bit 31 (kDiscardBit): a holder asked for the sample to be scrubbed.
    std::atomic<std::uint32_t> refs{0};
    // Free-list link (a slot index) while the sample is free; read racily by concurrent gets,
    // whose CAS then validates it, so it is atomic.
    std::atomic<std::uint32_t> next{0};
    std::uint32_t slot = 0;    // own index in the arena; constant while the pool lives
    std::uint32_t flags = 0;   // SampleFlags, owned by the holder
    Pool* pool = nullptr;      // constant while the sample is out
    std::byte* data = nullptr;
    std::size_t capacity = 0;
    std::size_t size = 0;
    std::int64_t start = 0;
    std::int64_t stop = 0;

    // Line 1: cold fields (ledger, scrubbing, layout constants).
    std::atomic<const char*> holder{nullptr};  // ledger: who holds it; relaxed, diagnostic only
    std::atomic<std::int64_t> taken_ns{0};     // ledger: steady-clock ns when it was handed out
    std::uint32_t prefix_bytes = 0;
    std::uint32_t index = 0;                   // 0 .. buffers-1 within its pool
};
inline constexpr std::uint32_t kDiscardBit = 1u << 31;
inline constexpr std::uint32_t kRefMask = kDiscardBit - 1;
static_assert(offsetof(SampleHeader, holder) == kCacheLineSize,
              "the hot fields of a sample header must fill exactly its first cache line");
static_assert(sizeof(SampleHeader) % kCacheLineSize == 0 && alignof(SampleHeader) == kCacheLineSize,
              "sample headers must not share cache lines");

// A word of the per-thread sample caches, and of the free-list head: one 64-bit atomic on a cache
// line of its own.
//
// Cache word: [ 43-bit counter | closed bit | 20-bit slot index + 1, or 0 when empty ]. The
// counter moves on every take and every close, so a CAS that read the word earlier fails after
// either (and stats().gets counts takes exactly). A closed word takes no sample: waiters close the
// words before they sleep (so that no release parks a sample they would not see), decommit closes
// them for good, the ledger and checked mode keep them closed.
struct alignas(kCacheLineSize) CacheWord {
    std::atomic<std::uint64_t> word{0};
};
inline constexpr std::uint64_t kSlotBits = 20;
inline constexpr std::uint64_t kSlotMask = (std::uint64_t(1) << kSlotBits) - 1;
inline constexpr std::uint64_t kFlagBit = std::uint64_t(1) << kSlotBits;    // closed / waiters
inline constexpr std::uint64_t kCountIncrement = std::uint64_t(1) << (kSlotBits + 1);
inline constexpr std::size_t kCacheSlots = 16;

// The part of a pool (the memory of one commit) that inline fast paths read. The rest lives in
// the allocator's source file. A pool record is never freed while its allocator lives (drained
// records are reused by later commits), so a get that read a stale `current` pointer still reads
// valid cache words, whose state tells the truth: a sample parked in them is free.
struct alignas(kCacheLineSize) Pool {
    SampleAllocator* owner = nullptr;
    std::uint64_t epoch = 0;
    // Set (before the free-list head changes) when the pool's commit ends. A release that sees it
    // does not push the sample back but counts it out of `outstanding`.
    std::atomic<bool> retired{false};
    bool checked = false;  // guard bytes and poisoning are on (AllocatorProperties::checked)
    // Starts at the number of buffers. decommit subtracts the samples found free; every release
    // after retirement subtracts one; the one that reaches zero hands the memory to the reclaimer.
    alignas(kCacheLineSize) std::atomic<std::int64_t> outstanding{0};
    // The per-thread caches of this pool, one sample each. A thread uses the word at its
    // cache_offset; see detail::move_cache_slot.
    CacheWord caches[kCacheSlots];
};

}  // namespace sluice::detail

// SPDX-License-Identifier: MIT
#pragma once

// SampleAllocator: a pool of reusable, aligned media buffers with DirectShow's IMemAllocator
// contract, made lock-free.
//
//   sluice::SampleAllocator alloc;
//   auto granted = alloc.set_properties({.buffers = 8, .buffer_bytes = 4096});
//   alloc.commit();                       // all memory is reserved here, once
//   auto s = alloc.get_buffer();          // blocks while all 8 are out
//   ...                                   // fill s->data(), hand s on; the last ref returns it
//   alloc.decommit();                     // every waiter returns Errc::not_committed at once
//
// Lifecycle. set_properties() fixes the shape; commit() maps the memory (on the requested NUMA
// node, every page touched) and starts a new *epoch*; decommit() ends it. Samples still held
// after decommit stay valid; when the last of them is released the epoch's memory is unmapped by
// a housekeeping thread (never by the releasing streaming thread). A later commit() starts a new
// epoch with fresh memory even while old samples are out; they never enter the new pool. The
// destructor decommits and waits for every sample to come back.
//
// Threading. get_buffer, try_get_buffer, SampleRef copies and releases: any thread, concurrently,
// lock-free; none of them allocates or makes a system call while buffers are free. Only an empty
// pool blocks, in a futex wait; a release into a pool with waiters wakes one of them.
// set_properties, commit, decommit, stats, ledger: control operations, any thread; they take a
// mutex among themselves and may allocate, but never wait for a streaming thread.
//
// Algorithm. The free list is a Treiber stack (R. K. Treiber, "Systems Programming: Coping with
// Parallelism", IBM RJ 5118, 1986) of slot indices in one 64-bit word (index + 44-bit pop
// counter against ABA). Headers live in an arena that outlives every pool, so a stale pop only
// reads memory that is still mapped, and its CAS fails. In front of it, each thread has a cache
// of one sample (one of kCacheSlots words, each on its own cache line): a release parks the
// sample there when it is empty, and the same thread's next get takes it back, so a thread that
// gets and releases touches only its own line. Caches are not private: a thread that finds the
// pool empty steals from them before it sleeps, and decommit empties them. Waiting uses the Linux
// futex on a wake sequence word, with a waiter count read by releasers (the pairings are spelled
// out in sample_allocator.cpp).

#include <sluice/allocators/result.hpp>
#include <sluice/allocators/sample.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <vector>

namespace sluice {

// What a pool should look like. set_properties() answers with what it granted.
struct AllocatorProperties {
    std::size_t buffers = 0;       // 1 .. SampleAllocator::kMaxBuffers
    std::size_t buffer_bytes = 0;  // payload bytes per buffer, >= 1; granted may be larger
    std::size_t alignment = 64;    // power of two; granted is at least a cache line, at most 1 GiB
    std::size_t prefix = 0;        // bytes reserved right before each buffer's data()
    int numa_node = -1;            // -1: the committing thread's node; n >= 0: node n
    bool checked = false;          // debug mode: guard bytes after each buffer, poison on release,
                                   // both verified (see AllocatorStats::corruptions). Slower.
};

struct AllocatorStats {
    std::size_t buffers = 0;         // buffers of the committed pool; 0 when decommitted
    std::size_t outstanding = 0;     // samples held by someone now, of every epoch
    std::size_t waiters = 0;         // threads blocked in get_buffer now
    std::uint64_t gets = 0;          // samples handed out, all epochs
    std::uint64_t waits = 0;         // get_buffer calls that found the pool empty and slept
    std::uint64_t timeouts = 0;      // waits that ended in Errc::timeout
    std::uint64_t cancels = 0;       // waits that ended in Errc::cancelled
    std::uint64_t refused = 0;       // gets answered Errc::not_committed
    std::uint64_t commits = 0;
    std::uint64_t decommits = 0;
    std::uint64_t epoch = 0;         // the current (or last) commit's number, from 1
    std::size_t retired_pools = 0;   // earlier epochs whose samples are still held
    std::size_t bytes_mapped = 0;    // buffer memory mapped now, current and retired epochs
    std::uint64_t discards = 0;      // samples returned through SampleRef::discard()
    std::uint64_t corruptions = 0;   // checked mode: guard or poison bytes found overwritten
    int numa_node = -1;              // node the current pool's memory was bound to, -1 unbound
};

// One outstanding sample, from the ownership ledger.
struct LedgerEntry {
    std::uint64_t epoch = 0;
    std::size_t index = 0;
    std::string holder;  // "?" when nobody named it
    std::uint32_t references = 0;
    std::chrono::nanoseconds held_for{0};
};

class SampleAllocator {
public:
    static constexpr std::size_t kMaxBuffers = 1u << 16;
    static constexpr std::size_t kMaxAlignment = std::size_t(1) << 30;
    // Per-thread caches of one sample each. Threads share slot 0 until two of them meet there;
    // then each moves to one of the other slots, round robin, shared when there are more threads.
    static constexpr std::size_t kCacheSlots = 16;

    SampleAllocator();
    SampleAllocator(const SampleAllocator&) = delete;
    SampleAllocator& operator=(const SampleAllocator&) = delete;
    // Decommits, then waits until every sample of every epoch has been released, then frees all
    // memory. Control thread; blocks. As with a mutex and its unlock, a release that another
    // thread began before the destructor must have returned before it: the destructor waits for
    // samples still held, not for a release call still running (a graph joins its streaming
    // threads before it destroys their pools).
    ~SampleAllocator();

    // Validates and stores the pool's shape; returns what was granted: alignment raised to a
    // cache line, buffer_bytes rounded up so consecutive buffers keep the alignment.
    // Errors: invalid_properties (zero or too many buffers, alignment not a power of two, sizes
    // whose pool would not fit in memory, an unknown NUMA node), already_committed,
    // buffers_outstanding (samples of an earlier commit still held).
    // Control operation: any thread; locks; allocates.
    Result<AllocatorProperties> set_properties(const AllocatorProperties& wanted);
    AllocatorProperties properties() const;

    // Maps and touches all buffer memory, starts a new epoch. Committing twice is a no-op.
    // Errors: size_not_set, out_of_memory (nothing stays allocated then).
    // Control operation: any thread; locks; allocates and makes system calls.
    std::error_code commit();

    // Ends the epoch: every thread waiting in get_buffer returns Errc::not_committed promptly, in
    // one wake-up whatever their number; gets fail the same way until the next commit. Held
    // samples stay valid; the epoch's memory is freed once the last is released (now, if none is
    // out). Decommitting twice is a no-op.
    // Control operation: any thread; locks; never waits for samples.
    std::error_code decommit();
    bool committed() const noexcept;

    // Takes a free buffer, waiting while none is free. `holder` names the taker in the ledger
    // (it must outlive the sample). Errors: not_committed (also when a decommit ends the wait),
    // timeout, cancelled (the stop_token was triggered, the pool is left as it is).
    // Any thread. Lock-free and allocation-free; blocks in a futex only when the pool is empty.
    Result<SampleRef> get_buffer(const char* holder = nullptr) noexcept;
    Result<SampleRef> get_buffer(const std::stop_token& stop, const char* holder = nullptr) noexcept;
    template <class Rep, class Period>
    Result<SampleRef> get_buffer(std::chrono::duration<Rep, Period> timeout,
                                 const char* holder = nullptr) noexcept;
    template <class Rep, class Period>
    Result<SampleRef> get_buffer(const std::stop_token& stop, std::chrono::duration<Rep, Period> timeout,
                                 const char* holder = nullptr) noexcept;

    // Takes a free buffer or fails at once: would_block when none is free (or only one whose
    // release is still under way on another thread), not_committed.
    // Any thread. Never blocks, never locks, never allocates, never makes a system call, with one
    // exception at most once per decommitted pool: meeting that pool's last sample in a cache
    // as it is released, it hands the pool's memory to the housekeeping thread (a futex wake).
    Result<SampleRef> try_get_buffer(const char* holder = nullptr) noexcept;

    // A snapshot of the counters. Any thread; takes the control mutex; never allocates.
    AllocatorStats stats() const;

    // The ownership ledger: when on, every get records its holder and time (one clock read, a
    // vDSO call, no system call). On by default in builds without NDEBUG. Any thread; switching
    // takes the control mutex.
    void set_ledger_enabled(bool on) noexcept;
    bool ledger_enabled() const noexcept;
    // Outstanding samples of every epoch, longest held first. Control operation; allocates.
    std::vector<LedgerEntry> ledger() const;

private:
    friend class SampleRef;
    friend struct detail::LayoutProbe;
    struct Control;  // everything the hot path never touches (sample_allocator.cpp)

    // Free-list head: [ 44-bit pop counter | 20-bit slot index ]. kEmptySlot: the pool is
    // committed and empty; kDecommittedSlot: not committed.
    static constexpr std::uint64_t kSlotBits = 20;
    static constexpr std::uint64_t kSlotMask = (std::uint64_t(1) << kSlotBits) - 1;
    static constexpr std::uint32_t kEmptySlot = std::uint32_t(kSlotMask);
    static constexpr std::uint32_t kDecommittedSlot = std::uint32_t(kSlotMask - 1);
    static constexpr std::uint64_t kPopIncrement = std::uint64_t(1) << kSlotBits;

    enum class PopFailure { empty, decommitted };
    detail::SampleHeader* try_pop(std::memory_order order, PopFailure& why) noexcept;
    std::atomic<std::uint64_t>& my_cache() noexcept;
    detail::SampleHeader* take_cached() noexcept;
    detail::SampleHeader* steal_cached() noexcept;  // from any thread's cache
    void discard_retired_take(detail::SampleHeader* h) noexcept;
    void flush_cache(std::atomic<std::uint64_t>& cache) noexcept;
    void release_free(detail::SampleHeader* h) noexcept;
    Result<SampleRef> hand_out(detail::SampleHeader* h, const char* holder) noexcept;
    static Result<SampleRef> hand_out_cached(detail::SampleHeader* h) noexcept;
    Result<SampleRef> get_slow(std::int64_t deadline_ns, const std::stop_token* stop,
                               const char* holder) noexcept;
    template <class Rep, class Period>
    static std::int64_t deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept;

    static void return_sample(detail::SampleHeader* h, bool discarded) noexcept;  // the last reference dropped
    void push_free(detail::SampleHeader* h) noexcept;
    void return_retired(detail::SampleHeader* h) noexcept;
    void wake_one() noexcept;
    void on_get_checked(detail::SampleHeader* h) noexcept;
    void on_return_checked(detail::SampleHeader* h, bool discarded) noexcept;
    void record_holder(detail::SampleHeader* h, const char* holder) noexcept;

    // --- Line 0: the free-list head, CAS'd by every get and release.
    alignas(detail::kCacheLineSize) std::atomic<std::uint64_t> head_{kDecommittedSlot};

    // --- Line 1: the waiting side; written only when the pool runs empty.
    // [ 32-bit decommit generation | ledger bit | 31-bit count of threads in get_slow ]. One word,
    // so a release that parks a sample checks "nobody waits, no decommit began, no ledger to
    // keep" with one load.
    alignas(detail::kCacheLineSize) std::atomic<std::uint64_t> wait_state_{0};
    static constexpr std::uint64_t kOneWaiter = 1;
    static constexpr std::uint64_t kLedgerOn = std::uint64_t(1) << 31;
    static constexpr std::uint64_t kOneDecommit = std::uint64_t(1) << 32;
    static std::uint32_t waiting(std::uint64_t state) noexcept { return std::uint32_t(state) & 0x7FFFFFFF; }
    std::atomic<std::uint32_t> wake_seq_{0};  // futex word: bumped by every wake
    std::atomic<std::uint64_t> waits_{0};
    std::atomic<std::uint64_t> timeouts_{0};
    std::atomic<std::uint64_t> cancels_{0};
    std::atomic<std::uint64_t> refused_{0};

    // --- Line 2: read by hot paths, written only by control operations.
    alignas(detail::kCacheLineSize) detail::SampleHeader* slots_ = nullptr;  // the arena, fixed
    // kLedgerBit | kCheckedBit: the per-get extras, one load on the fast path decides both.
    std::atomic<std::uint8_t> get_extras_{0};
    static constexpr std::uint8_t kLedgerBit = 1, kCheckedBit = 2;

    // --- Line 3: retirement bookkeeping, written by last releases of retired epochs.
    alignas(detail::kCacheLineSize) std::atomic<std::uint32_t> live_retired_{0};  // futex word
    std::atomic<std::uint64_t> corruptions_{0};
    std::atomic<std::uint64_t> retired_takes_{0};  // cache takes that found a retired sample

    // --- Lines 4 ..: the per-thread caches, one line each. A word is [ 44-bit take counter |
    // 20-bit slot index + 1, or 0 when empty ]; the counter makes stats().gets exact.
    struct alignas(detail::kCacheLineSize) CacheSlot {
        std::atomic<std::uint64_t> word{0};
    };
    CacheSlot caches_[kCacheSlots];

    std::unique_ptr<Control> control_;
};

// The NUMA node of `cpu` (for placing a pool near the thread that will fill it); -1 when the
// CPU is unknown, 0 on a system without NUMA. Any thread.
int numa_node_of_cpu(int cpu) noexcept;

static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && std::atomic<std::uint64_t>::is_always_lock_free,
              "the free-list head must be one lock-free 64-bit word");

// ---------------------------------------------------------------------------------------------
// Implementation detail: inline fast paths (kept here so a get+release pair compiles to a handful
// of instructions in the caller).

namespace detail {
// The byte offset of the cache slot this thread uses in every allocator. Every thread starts on
// slot 0, shared; the first time one of its cache CASes fails (another thread was there), it
// moves to a slot of its own (round robin over the other kCacheSlots - 1). So threads that
// never meet never pay for the assignment. initial-exec: a direct thread-pointer load, even from
// position-independent code.
inline thread_local std::uintptr_t cache_offset __attribute__((tls_model("initial-exec"))) = 0;
void move_cache_slot() noexcept;  // sets the above
}  // namespace detail

inline std::atomic<std::uint64_t>& SampleAllocator::my_cache() noexcept {
    static_assert(sizeof(CacheSlot) == detail::kCacheLineSize);
    return reinterpret_cast<CacheSlot*>(reinterpret_cast<std::byte*>(caches_) + detail::cache_offset)->word;
}

inline Result<SampleRef> SampleAllocator::hand_out_cached(detail::SampleHeader* h) noexcept {
    // No ledger or checking here (hand_out does them, then comes here): checked pools never park
    // samples, and while the ledger is on a release takes its parked sample straight back
    // (release_free's quiet state excludes the ledger), so only a get in that instant goes
    // unrecorded. relaxed: the sample is ours alone until the caller hands the SampleRef on.
    h->refs.store(1, std::memory_order_relaxed);
    h->size = 0;
    h->flags = 0;
    h->start = h->stop = INT64_MIN;
    return SampleRef(h);
}

inline detail::SampleHeader* SampleAllocator::take_cached() noexcept {
    std::atomic<std::uint64_t>& cache = my_cache();
    // relaxed: a hint; the CAS decides.
    std::uint64_t word = cache.load(std::memory_order_relaxed);
    if ((word & kSlotMask) == 0) return nullptr;
    // seq_cst: acquires the parking CAS's release, so the previous holder's writes are visible,
    // and orders the `retired` load below (see the pairings in sample_allocator.cpp); on x86 it
    // is the same LOCK CMPXCHG. The word says everything, so a value that came back (ABA) is
    // still the truth: the sample in it is free.
    const std::uint64_t field = word & kSlotMask;  // slot + 1
    // relaxed on failure: we give up and use the free list, which orders itself.
    if (!cache.compare_exchange_strong(word, word - field + kPopIncrement, std::memory_order_seq_cst,
                                       std::memory_order_relaxed)) [[unlikely]] {
        detail::move_cache_slot();
        return nullptr;
    }
    detail::SampleHeader* h = slots_ + (field - 1);
    // seq_cst (a plain load on x86): parked after decommit emptied the caches (the parker will
    // notice and look for it, but we took it first): not ours to hand out.
    if (h->pool->retired.load(std::memory_order_seq_cst)) [[unlikely]] {
        discard_retired_take(h);
        return nullptr;
    }
    return h;
}

template <class Rep, class Period>
std::int64_t SampleAllocator::deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept {
    const auto now = std::chrono::steady_clock::now().time_since_epoch();
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(timeout);
    return (now + (ns.count() < 0 ? std::chrono::nanoseconds(0) : ns)).count();
}

inline detail::SampleHeader* SampleAllocator::try_pop(std::memory_order order, PopFailure& why) noexcept {
    // acquire (or seq_cst from the waiting path): pairs with the release of the push or commit
    // that stored this head, so the header's `next` and metadata written before it are visible.
    std::uint64_t head = head_.load(order);
    for (;;) {
        const auto slot = std::uint32_t(head & kSlotMask);
        if (slot >= kDecommittedSlot) {
            why = slot == kEmptySlot ? PopFailure::empty : PopFailure::decommitted;
            return nullptr;
        }
        detail::SampleHeader* h = slots_ + slot;
        // relaxed: may be stale if another thread popped `h` meanwhile; then the CAS below fails
        // because the pop counter moved. The arena is never unmapped, so the read itself is safe.
        const std::uint32_t next = h->next.load(std::memory_order_relaxed);
        const std::uint64_t popped = ((head & ~kSlotMask) + kPopIncrement) | next;
        // acquire on success: the sample's previous owner released it with the push CAS;
        // acquire on failure: the reloaded head is used the same way as the first load.
        if (head_.compare_exchange_weak(head, popped, std::memory_order_acquire,
                                        std::memory_order_acquire)) {
            if (h == nullptr) __builtin_unreachable();  // spares the caller's null test
            return h;
        }
    }
}

inline Result<SampleRef> SampleAllocator::hand_out(detail::SampleHeader* h, const char* holder) noexcept {
    // relaxed: set by control operations; a stale value only delays a switch by one get (the
    // checked bit changes only between commits, which the head's acquire orders).
    if (const std::uint8_t extras = get_extras_.load(std::memory_order_relaxed)) [[unlikely]] {
        if (extras & kLedgerBit) record_holder(h, holder);
        if (extras & kCheckedBit) on_get_checked(h);
    }
    return hand_out_cached(h);  // the fields every get resets
}

inline Result<SampleRef> SampleAllocator::try_get_buffer(const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = try_pop(std::memory_order_acquire, why)) [[likely]]
        return hand_out(h, holder);
    if (why == PopFailure::decommitted) {
        // relaxed: a statistic.
        refused_.fetch_add(1, std::memory_order_relaxed);
        return unexpected(Errc::not_committed);
    }
    if (detail::SampleHeader* h = steal_cached()) return hand_out(h, holder);
    return unexpected(Errc::would_block);
}

inline Result<SampleRef> SampleAllocator::get_buffer(const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = try_pop(std::memory_order_acquire, why)) [[likely]]
        return hand_out(h, holder);
    return get_slow(-1, nullptr, holder);
}

inline Result<SampleRef> SampleAllocator::get_buffer(const std::stop_token& stop, const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = try_pop(std::memory_order_acquire, why)) [[likely]]
        return hand_out(h, holder);
    return get_slow(-1, &stop, holder);
}

template <class Rep, class Period>
Result<SampleRef> SampleAllocator::get_buffer(std::chrono::duration<Rep, Period> timeout,
                                              const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = try_pop(std::memory_order_acquire, why)) [[likely]]
        return hand_out(h, holder);
    return get_slow(deadline_after(timeout), nullptr, holder);
}

template <class Rep, class Period>
Result<SampleRef> SampleAllocator::get_buffer(const std::stop_token& stop,
                                              std::chrono::duration<Rep, Period> timeout,
                                              const char* holder) noexcept {
    if (detail::SampleHeader* h = take_cached()) [[likely]]
        return hand_out_cached(h);
    PopFailure why = PopFailure::empty;
    if (detail::SampleHeader* h = try_pop(std::memory_order_acquire, why)) [[likely]]
        return hand_out(h, holder);
    return get_slow(deadline_after(timeout), &stop, holder);
}

inline void SampleAllocator::push_free(detail::SampleHeader* h) noexcept {
    detail::Pool* pool = h->pool;
    // acquire: a head stored by commit() must show that pool's `retired` flag set before it.
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
        // relaxed: decommit sets `retired` before it swaps the head, so a stale `false` here is
        // caught by the CAS, which then fails against the changed head.
        if (std::uint32_t(head & kSlotMask) == kDecommittedSlot ||
            pool->retired.load(std::memory_order_relaxed)) [[unlikely]] {
            return_retired(h);
            return;
        }
        // relaxed: published by the release half of the CAS below.
        h->next.store(std::uint32_t(head & kSlotMask), std::memory_order_relaxed);
        // seq_cst: publishes the sample (release) and is ordered before the waiters_ load below
        // (the store-load half of the Dekker pairing with get_slow's waiters_ increment).
        // acquire on failure: as the first load.
        if (head_.compare_exchange_weak(head, (head & ~kSlotMask) | h->slot, std::memory_order_seq_cst,
                                        std::memory_order_acquire))
            break;
    }
    // seq_cst: see above; a waiter that counted itself (waiting(wait_state_)) after this load
    // will see the push.
    if (waiting(wait_state_.load(std::memory_order_seq_cst)) != 0) [[unlikely]]
        wake_one();
}

// A free sample goes to this thread's cache when that is empty, else onto the free list.
inline void SampleAllocator::release_free(detail::SampleHeader* h) noexcept {
    // Read before the CAS: after it, `h` may already be someone else's.
    const std::uint64_t quiet = h->pool->quiet_state;
    std::atomic<std::uint64_t>& cache = my_cache();
    // relaxed: a hint; the CAS decides.
    std::uint64_t word = cache.load(std::memory_order_relaxed);
    if ((word & kSlotMask) == 0) {
        // seq_cst: (a) of the pairings in sample_allocator.cpp; publishes the sample (release)
        // and is ordered before (b). The slot field is 0, so adding sets it. relaxed on failure:
        // we then push the sample, which orders itself.
        if (cache.compare_exchange_strong(word, word + h->slot + 1, std::memory_order_seq_cst,
                                          std::memory_order_relaxed)) [[likely]] {
            // seq_cst: (b). Not the pool's quiet state: someone waits who may not have seen our
            // cache, a decommit has begun (perhaps of this very pool) that may have emptied the
            // caches before our CAS, or the ledger is on. Take the sample back and release it the
            // slow way. (After the CAS `h` may already be someone else's: only our words are read.)
            if (wait_state_.load(std::memory_order_seq_cst) != quiet) [[unlikely]]
                flush_cache(cache);
            return;
        }
        detail::move_cache_slot();  // someone else uses this slot
    }
    push_free(h);
}

inline void SampleAllocator::return_sample(detail::SampleHeader* h, bool discarded) noexcept {
    SampleAllocator* self = h->pool->owner;
    if (h->pool->checked || discarded) [[unlikely]] {
        self->on_return_checked(h, discarded);
        self->push_free(h);  // not parked: a cached get skips the checks
        return;
    }
    self->release_free(h);
}

inline void SampleRef::reset() noexcept {
    if (header_ == nullptr) return;
    detail::SampleHeader* h = std::exchange(header_, nullptr);
    // acquire: pairs with the release decrements of the other holders, so their writes to the
    // sample happen before its reuse.
    std::uint32_t before = h->refs.load(std::memory_order_acquire);
    // The sole holder needs no atomic decrement: nobody else can copy a reference it alone has,
    // so the count cannot change under it. (Its own writes are published by the release half of
    // the CAS that parks or pushes the sample.)
    if (before == 1) [[likely]] {  // the common case spelled out: sole holder, no discard asked
        // relaxed: as below.
        h->refs.store(0, std::memory_order_relaxed);
        SampleAllocator::return_sample(h, false);
        return;
    }
    if ((before & detail::kRefMask) == 1) {
        // relaxed: the free list's push publishes it; until then only diagnostics read it.
        h->refs.store(0, std::memory_order_relaxed);
    } else {
        // acq_rel: release so our writes happen-before the last holder's return of the sample;
        // acquire so the last holder sees every other holder's writes.
        before = h->refs.fetch_sub(1, std::memory_order_acq_rel);
        if ((before & detail::kRefMask) != 1) return;
    }
    SampleAllocator::return_sample(h, (before & detail::kDiscardBit) != 0);
}

// Inline: Node::push calls it for every sample; with the ledger off it is three loads and a test.
inline void SampleRef::set_holder(const char* holder) noexcept {
    // relaxed: the ledger switch and entries are diagnostics.
    if (header_ != nullptr && (header_->pool->owner->get_extras_.load(std::memory_order_relaxed) &
                               SampleAllocator::kLedgerBit)) [[unlikely]]
        header_->holder.store(holder, std::memory_order_relaxed);
}

inline std::size_t SampleRef::index() const noexcept { return header_->index; }
inline std::uint64_t SampleRef::epoch() const noexcept { return header_->pool->epoch; }

}  // namespace sluice

// SPDX-License-Identifier: MIT
#pragma once

// SampleAllocator: a pool of reusable, aligned media buffers with DirectShow's IMemAllocator
// contract, made lock-free. The numbered rules cited in code and tests ("rule 4") are those of
// docs/allocator-contract.md.
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
// pool blocks; a release into a pool with waiters wakes one of them.
// set_properties, commit, decommit, stats, ledger: control operations, any thread; they take a
// mutex among themselves and may allocate, but never wait for a streaming thread.
//
// How it works (the pairings are spelled out in sample_allocator.cpp; the fast paths are in
// detail/sample_allocator_inline.hpp). The free list is a Treiber stack of slot indices in one
// 64-bit word. In front of it, each thread has a cache of one sample in the committed pool: a
// release parks its sample there, the same thread's next get takes it back, so a thread that gets
// and releases touches only its own cache line. A thread that finds the pool empty closes the
// caches, taking any sample parked in them, before it sleeps; decommit closes them for good.

#include <sluice/allocators/event_count.hpp>
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
    std::string holder;  // "?" when nobody named it (since the ledger was switched on)
    std::uint32_t references = 0;
    std::chrono::nanoseconds held_for{0};  // 0 when it was taken before the ledger was on
};

class SampleAllocator {
public:
    static constexpr std::size_t kMaxBuffers = 1u << 16;
    static constexpr std::size_t kMaxAlignment = std::size_t(1) << 30;
    // Per-thread caches of one sample each. Threads share slot 0 until two of them meet there;
    // then each moves to one of the other slots, round robin, shared when there are more threads.
    static constexpr std::size_t kCacheSlots = detail::kCacheSlots;

    // Allocates the control block; maps nothing yet. Throws std::bad_alloc.
    SampleAllocator();
    SampleAllocator(const SampleAllocator&) = delete;
    SampleAllocator& operator=(const SampleAllocator&) = delete;
    // Decommits, then waits until every sample of every epoch has been released and its memory
    // unmapped, then frees everything. A release, on any thread, touches the allocator only until
    // the moment its sample counts as returned, so once the destructor has seen every sample back
    // no release can still be using it (rule 4). Control thread; blocks. No other call on this
    // allocator may run concurrently with it (releases of held samples may).
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
    // Errors: size_not_set; out_of_memory when the memory would pass what this process may use
    // (physical memory, the memory cgroup's limit, RLIMIT_AS) or the OS refuses it; nothing stays
    // allocated then.
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
    // (it must outlive the sample). A timeout too long to represent as a steady-clock deadline
    // (seconds::max(), hours::max(), ...) means no deadline. Errors: not_committed (also when a
    // decommit ends the wait), timeout, cancelled (the stop_token was triggered; the pool is left
    // as it is).
    // Any thread. Lock-free and allocation-free; blocks (in the kernel) only when the pool is empty.
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
    // Any thread. Never blocks, never locks, never allocates, never makes a system call.
    Result<SampleRef> try_get_buffer(const char* holder = nullptr) noexcept;

    // A snapshot of the counters. Any thread; takes the control mutex; never allocates.
    AllocatorStats stats() const;

    // The ownership ledger: when on, every get records its holder and time (one clock read, a
    // vDSO call, no system call), and samples are not parked in the per-thread caches. On by
    // default in builds without NDEBUG. Switching it on forgets what earlier gets recorded, so
    // a sample taken while it was off is listed with holder "?". Any thread; takes the control
    // mutex.
    void set_ledger_enabled(bool on) noexcept;
    bool ledger_enabled() const noexcept;
    // For owners that name the holder of every sample they take (SampleRef::set_holder after
    // each get, as a Graph does for its pools): ledger() then reports those names even while the
    // ledger is off, at no cost to gets (ages stay 0 unless the ledger is on). Names must stay
    // valid while ledger() may be called. Control operation; takes the control mutex.
    void set_holders_named(bool on) noexcept;
    // Outstanding samples of every epoch, longest held first. Control operation; allocates.
    std::vector<LedgerEntry> ledger() const;

private:
    friend class SampleRef;
    friend struct detail::LayoutProbe;
    struct Control;  // everything the hot path never touches (sample_allocator.cpp)

    // Free-list head: [ 43-bit counter | waiters flag | 20-bit slot index ]. The counter moves on
    // every pop, commit and waiter announcement (against ABA, and so that a CAS that read the
    // word before an announcement fails); the flag says a thread may sleep in get_buffer, so a
    // push must wake one. kEmptySlot: committed and empty; kDecommittedSlot: not committed.
    static constexpr std::uint64_t kSlotBits = detail::kSlotBits;
    static constexpr std::uint64_t kSlotMask = detail::kSlotMask;
    static constexpr std::uint64_t kWaitersFlag = detail::kFlagBit;
    static constexpr std::uint64_t kClosedFlag = detail::kFlagBit;
    static constexpr std::uint64_t kCountIncrement = detail::kCountIncrement;
    static constexpr std::uint32_t kEmptySlot = std::uint32_t(kSlotMask);
    static constexpr std::uint32_t kDecommittedSlot = std::uint32_t(kSlotMask - 1);
    static constexpr std::int64_t kNoDeadline = -1;

    // Fast paths (detail/sample_allocator_inline.hpp).
    enum class PopFailure { empty, decommitted };
    detail::SampleHeader* take_cached() noexcept;
    detail::SampleHeader* try_pop(PopFailure& why) noexcept;
    detail::SampleHeader* take_fast(PopFailure& why, const char* holder) noexcept;
    template <class DeadlineFn>
    Result<SampleRef> get_fast(const std::stop_token* stop, DeadlineFn deadline, const char* holder) noexcept;
    detail::SampleHeader* hand_out(detail::SampleHeader* h, const char* holder) noexcept;
    static detail::SampleHeader* hand_out_cached(detail::SampleHeader* h) noexcept;
    static bool try_park(detail::SampleHeader* h) noexcept;
    template <class Rep, class Period>
    static std::int64_t deadline_after(std::chrono::duration<Rep, Period> timeout) noexcept;

    // Slow paths (sample_allocator.cpp). They answer in two registers, not with a Result built in
    // the caller's frame: that would take the Result's address on every path and keep it out of
    // registers on the fast one too.
    struct Taken {
        detail::SampleHeader* sample;  // handed out (hand_out done), or nullptr
        Errc error;                    // why not
    };
    static Result<SampleRef> from(Taken taken) noexcept;
    Taken get_slow(std::int64_t deadline_ns, const std::stop_token* stop, const char* holder) noexcept;
    Taken try_get_slow(PopFailure why, const char* holder) noexcept;
    static void release_slow(detail::SampleHeader* h) noexcept;  // not the sole holder's quick park
    bool park_reopening(detail::SampleHeader* h) noexcept;
    detail::SampleHeader* steal_cached() noexcept;
    detail::SampleHeader* close_caches(detail::Pool* pool) noexcept;
    void push_free(detail::SampleHeader* h) noexcept;
    static void return_retired(detail::SampleHeader* h) noexcept;
    void wake_one() noexcept;
    void stop_waiting() noexcept;
    void on_get_checked(detail::SampleHeader* h) noexcept;
    void on_return_checked(detail::SampleHeader* h, bool discarded) noexcept;
    void record_holder(detail::SampleHeader* h, const char* holder) noexcept;

    // --- Line 0: the free-list head, CAS'd by every get and release that misses its cache.
    alignas(detail::kCacheLineSize) std::atomic<std::uint64_t> head_{kDecommittedSlot};

    // --- Line 1: read by every get, written only by control operations.
    // The committed pool, or a pool whose caches are always empty while none is committed.
    alignas(detail::kCacheLineSize) std::atomic<detail::Pool*> current_;
    detail::SampleHeader* slots_ = nullptr;  // the header arena; fixed after the first commit
    // kLedgerBit | kCheckedBit: the per-get extras, one load on the free-list path decides both.
    std::atomic<std::uint8_t> get_extras_{0};
    static constexpr std::uint8_t kLedgerBit = 1, kCheckedBit = 2;

    // --- Line 2: the waiting side; written only when the pool runs empty.
    alignas(detail::kCacheLineSize) std::atomic<std::uint32_t> waiters_{0};  // threads announced in get_slow
    std::atomic<std::uint32_t> notifiers_{0};  // pushes between their CAS and their wake-up (P1)
    EventCount wake_;                           // where they sleep
    std::atomic<std::uint64_t> announcements_{0};  // head counter moves that were no pop
    std::atomic<std::uint64_t> closes_{0};         // cache counter moves that were no take
    std::atomic<std::uint64_t> waits_{0};
    std::atomic<std::uint64_t> timeouts_{0};
    std::atomic<std::uint64_t> cancels_{0};
    std::atomic<std::uint64_t> refused_{0};

    // --- Line 3: retirement bookkeeping, written by last releases of retired epochs.
    // Epochs decommitted whose memory is not yet unmapped; decremented after the unmap, by the
    // reclaimer thread or by decommit (the destructor waits for 0).
    alignas(detail::kCacheLineSize) std::atomic<std::uint32_t> live_retired_{0};
    std::atomic<std::uint64_t> corruptions_{0};

    std::unique_ptr<Control> control_;
};

}  // namespace sluice

#include <sluice/allocators/detail/sample_allocator_inline.hpp>

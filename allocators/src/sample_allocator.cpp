// SPDX-License-Identifier: MIT
#include <sluice/allocators/sample_allocator.hpp>

#include <sluice/allocators/detail/futex.hpp>
#include "memory.hpp"
#include "reclaimer.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>
#include <vector>

// Waking without losing a wake-up (the Dekker pairing):
//
//   releaser (push_free)                     waiter (get_slow)
//   1. CAS the sample onto head_ (seq_cst)    a. seq = wake_seq_            (acquire)
//   2. load waiters_            (seq_cst)     b. waiters_ += 1              (seq_cst)
//   3. if != 0: ++wake_seq_, futex_wake(1)    c. pop from head_             (seq_cst)
//                                             d. futex_wait(wake_seq_, seq)
//
// All four of 1, 2, b, c are seq_cst, so in their single total order either 2 follows b (the
// releaser sees the waiter and wakes it; if the waiter has not reached d yet, wake_seq_ differs
// from `seq` and d returns at once) or c follows 1 (the waiter's pop sees the sample). On x86 the
// seq_cst CAS is the LOCK CMPXCHG every push needs anyway, and the seq_cst load is a plain MOV.
//
// Per-thread caches (release_free, take_cached). waiters_ above is the low half of wait_state_,
// whose high half counts decommits (the generation). A pool's quiet state is wait_state_ with
// nobody waiting and the generation of its commit. A release that parks its sample in its cache
//
//   releaser (release_free)                  waiter (get_slow)          decommit
//   a. CAS the sample into the cache         a'. count itself (seq_cst)  i.  retired = true, then
//      (seq_cst)                             b'. scan every cache            ++generation (seq_cst)
//   b. wait_state_ still the pool's quiet        (seq_cst)              ii. empty every cache
//      state? (seq_cst) If not: take back                                    (seq_cst)
//      what the cache holds and release it
//      the slow way (push, wake, or count it
//      out of a retired pool)
//
// If b reads the quiet state, b precedes a' and i in the total order, so a precedes the waiter's
// scan b' (which finds the sample) and decommit's emptying ii (which counts it as free). If not,
// the releaser takes the sample back. Whoever takes a parked sample first (its releaser, a getter,
// a waiter, decommit) owns it, because every taker uses a CAS on the cache word. A sample of a
// retired pool can sit in a cache only from a until the releaser's take-back (flush_cache); a
// getter or waiter that takes it then sees `retired`: take_cached and steal_cached take with a seq_cst CAS and then load
// the flag (seq_cst), and decommit's ii read or wrote the cache word before a did, so the flag's
// store (before i) precedes that load in the total order.

namespace sluice {

using detail::SampleHeader;

namespace {

constexpr std::size_t kArenaSlots = std::size_t(1) << 18;  // headers reserved per allocator
constexpr std::size_t kSlotsPerPage = 4096 / sizeof(SampleHeader);
constexpr std::size_t kReclaimNodeBytes = 64;  // head of every pool mapping, for the reclaimer
constexpr std::size_t kGuardBytes = 64;        // checked mode: guard after each buffer
constexpr unsigned char kGuardByte = 0xAB;
constexpr unsigned char kPoisonByte = 0xDD;

static_assert(kArenaSlots <= (std::size_t(1) << 20) - 2,
              "arena slot indices must fit the head's 20-bit field below its two special values");
static_assert(kArenaSlots >= 2 * SampleAllocator::kMaxBuffers,
              "the arena must hold a full pool while another full one is still held");

std::int64_t steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

bool mul_overflows(std::size_t a, std::size_t b, std::size_t& out) noexcept {
    return __builtin_mul_overflow(a, b, &out);
}
bool add_overflows(std::size_t a, std::size_t b, std::size_t& out) noexcept {
    return __builtin_add_overflow(a, b, &out);
}
// Rounds up to a multiple of the power of two `align`; false on overflow.
bool round_up(std::size_t v, std::size_t align, std::size_t& out) noexcept {
    if (add_overflows(v, align - 1, out)) return false;
    out &= ~(align - 1);
    return true;
}

// Where each byte of a pool's mapping goes. Computed by set_properties, used by commit.
struct Layout {
    std::size_t stride = 0;        // distance between consecutive data() pointers
    std::size_t first_data = 0;    // offset of buffer 0's data() from the aligned base
    std::size_t capacity = 0;      // payload bytes per buffer (granted buffer_bytes)
    std::size_t guard = 0;         // guard bytes after each payload (checked mode)
    std::size_t align_slack = 0;   // extra mapped bytes to reach an alignment above a page
    std::size_t map_bytes = 0;     // whole mapping, page multiple
};

}  // namespace

namespace detail {

// A pool: the memory and headers of one commit. Lives from commit until its last sample is back
// and a control operation recycles it.
struct PoolImpl : Pool {
    std::byte* region = nullptr;   // the mmap'd memory (begins with the reclaimer's node space)
    std::size_t region_bytes = 0;
    std::uint32_t first_slot = 0;  // headers: slots_[first_slot .. first_slot + count)
    std::uint32_t count = 0;
    std::uint32_t slot_pages = 0;  // arena pages reserved for the headers
    int node = -1;
    std::size_t capacity = 0;
    std::size_t guard = 0;
    // Set by whoever finished with the memory (the last release or decommit); after it, only the
    // control path touches this record. Invariant: drained implies outstanding == 0.
    std::atomic<bool> drained{false};
};

}  // namespace detail

struct SampleAllocator::Control {
    mutable std::mutex mutex;
    bool properties_set = false;
    AllocatorProperties granted{};
    Layout layout{};

    std::byte* arena = nullptr;             // kArenaSlots headers, reserved lazily
    std::vector<bool> arena_page_used;      // one flag per kSlotsPerPage headers

    detail::PoolImpl* current = nullptr;    // the committed pool, or nullptr
    std::vector<detail::PoolImpl*> pools;   // current and retired pools not yet recycled

    std::uint64_t epoch = 0;
    std::uint64_t commits = 0;
    std::uint64_t decommits = 0;
    std::atomic<std::uint64_t> discards{0};
};

SampleAllocator::SampleAllocator() : control_(std::make_unique<Control>()) {
#ifndef NDEBUG
    // relaxed: no other thread can see the allocator yet.
    get_extras_.store(kLedgerBit, std::memory_order_relaxed);
    wait_state_.store(kLedgerOn, std::memory_order_relaxed);
#endif
}

SampleAllocator::~SampleAllocator() {
    (void)decommit();
    // Wait for every retired pool's last sample. acquire: pairs with return_retired's release
    // decrement, after which the releaser touches nothing of ours but the futex address.
    for (std::uint32_t live; (live = live_retired_.load(std::memory_order_acquire)) != 0;)
        detail::futex_wait(&live_retired_, live, -1);
    detail::Reclaimer::instance().flush();
    std::lock_guard lock(control_->mutex);
    for (detail::PoolImpl* p : control_->pools) {
        // relaxed: the acquire load of live_retired_ above already ordered the drain.
        assert(p->drained.load(std::memory_order_relaxed) && "every pool is drained once live_retired_ is 0");
        p->~PoolImpl();
        detail::control_free(p);
    }
    control_->pools.clear();
    if (control_->arena != nullptr) detail::unmap_memory(control_->arena, kArenaSlots * sizeof(SampleHeader));
}

// ---------------------------------------------------------------------------------------------
// Properties

Result<AllocatorProperties> SampleAllocator::set_properties(const AllocatorProperties& wanted) {
    std::lock_guard lock(control_->mutex);
    if (control_->current != nullptr) return unexpected(Errc::already_committed);
    for (detail::PoolImpl* p : control_->pools)
        // acquire: pairs with the release store of whoever drained it.
        if (!p->drained.load(std::memory_order_acquire)) return unexpected(Errc::buffers_outstanding);

    if (wanted.buffers < 1 || wanted.buffers > kMaxBuffers) return unexpected(Errc::invalid_properties);
    if (wanted.buffer_bytes < 1) return unexpected(Errc::invalid_properties);
    if (!std::has_single_bit(wanted.alignment) || wanted.alignment > kMaxAlignment)
        return unexpected(Errc::invalid_properties);
    if (wanted.prefix > std::numeric_limits<std::uint32_t>::max()) return unexpected(Errc::invalid_properties);
    if (wanted.numa_node < -1 || (wanted.numa_node >= 0 && !detail::numa_node_exists(wanted.numa_node)))
        return unexpected(Errc::invalid_properties);

    AllocatorProperties granted = wanted;
    granted.alignment = std::max(wanted.alignment, detail::kCacheLineSize);
    Layout layout;
    layout.guard = wanted.checked ? kGuardBytes : 0;
    const std::size_t page = detail::page_size();
    std::size_t used = 0, all = 0;
    // stride: prefix + payload + guard, rounded so every data() keeps the alignment.
    if (add_overflows(wanted.prefix, wanted.buffer_bytes, used) || add_overflows(used, layout.guard, used) ||
        !round_up(used, granted.alignment, layout.stride) ||
        !round_up(kReclaimNodeBytes + wanted.prefix, granted.alignment, layout.first_data) ||
        mul_overflows(layout.stride, wanted.buffers, all) || add_overflows(all, layout.first_data, all))
        return unexpected(Errc::invalid_properties);
    layout.capacity = layout.stride - wanted.prefix - layout.guard;
    layout.align_slack = granted.alignment > page ? granted.alignment : 0;
    if (add_overflows(all, layout.align_slack, all) || !round_up(all, page, layout.map_bytes))
        return unexpected(Errc::invalid_properties);
    // Sizes that could never be backed by this machine's memory are the caller's mistake, not a
    // transient shortage: refuse them here rather than let commit() fault them in.
    if (layout.map_bytes > detail::physical_memory_bytes()) return unexpected(Errc::invalid_properties);

    granted.buffer_bytes = layout.capacity;
    control_->granted = granted;
    control_->layout = layout;
    control_->properties_set = true;
    return granted;
}

AllocatorProperties SampleAllocator::properties() const {
    std::lock_guard lock(control_->mutex);
    return control_->granted;
}

// ---------------------------------------------------------------------------------------------
// Commit and decommit

namespace {

// Frees the records of drained pools and gives their header pages back. Control lock held.
void recycle_drained(std::vector<detail::PoolImpl*>& pools, std::byte* arena, std::vector<bool>& page_used) {
    std::erase_if(pools, [&](detail::PoolImpl* p) {
        // acquire: pairs with the drainer's release store; after it the record is ours.
        if (!p->drained.load(std::memory_order_acquire)) return false;
        const std::size_t first_page = p->first_slot / kSlotsPerPage;
        for (std::size_t i = 0; i < p->slot_pages; ++i) page_used[first_page + i] = false;
        // Stale gets may still read these headers' `next`; after MADV_DONTNEED they read zeros,
        // which their failing CAS ignores.
        detail::release_pages(arena + first_page * 4096, std::size_t(p->slot_pages) * 4096);
        p->~PoolImpl();
        detail::control_free(p);
        return true;
    });
}

// First run of `pages` free arena pages, or npos.
std::size_t find_free_pages(const std::vector<bool>& used, std::size_t pages) {
    std::size_t run = 0;
    for (std::size_t i = 0; i < used.size(); ++i) {
        run = used[i] ? 0 : run + 1;
        if (run == pages) return i + 1 - pages;
    }
    return std::size_t(-1);
}

}  // namespace

std::error_code SampleAllocator::commit() {
    std::lock_guard lock(control_->mutex);
    Control& c = *control_;
    if (!c.properties_set) return Errc::size_not_set;
    if (c.current != nullptr) return {};

    static_assert(sizeof(SampleHeader) * kSlotsPerPage == 4096, "arena pages hold whole headers");
    if (c.arena == nullptr) {
        auto arena = detail::map_memory(kArenaSlots * sizeof(SampleHeader), -1, /*reserve_only=*/true);
        if (!arena) return arena.error();
        c.arena = arena->base;
        c.arena_page_used.assign(kArenaSlots / kSlotsPerPage, false);
        slots_ = reinterpret_cast<SampleHeader*>(c.arena);
    }
    detail::Reclaimer::instance().ensure_started();
    recycle_drained(c.pools, c.arena, c.arena_page_used);

    const AllocatorProperties& props = c.granted;
    const Layout& layout = c.layout;
    const auto count = static_cast<std::uint32_t>(props.buffers);
    const std::size_t slot_pages = (count + kSlotsPerPage - 1) / kSlotsPerPage;
    const std::size_t first_page = find_free_pages(c.arena_page_used, slot_pages);
    if (first_page == std::size_t(-1)) return Errc::out_of_memory;  // too many epochs still held

    auto mapping = detail::map_memory(layout.map_bytes, props.numa_node);
    if (!mapping) return mapping.error();

    void* record = detail::control_alloc(sizeof(detail::PoolImpl));
    if (record == nullptr) {
        detail::unmap_memory(mapping->base, mapping->size);
        return Errc::out_of_memory;
    }
    auto* pool = ::new (record) detail::PoolImpl();
    pool->owner = this;
    pool->epoch = ++c.epoch;
    pool->checked = props.checked;
    pool->region = mapping->base;
    pool->region_bytes = mapping->size;
    pool->first_slot = static_cast<std::uint32_t>(first_page * kSlotsPerPage);
    pool->count = count;
    pool->slot_pages = static_cast<std::uint32_t>(slot_pages);
    pool->node = mapping->node;
    pool->capacity = layout.capacity;
    pool->guard = layout.guard;
    // relaxed: published with the head store below.
    pool->outstanding.store(count, std::memory_order_relaxed);
    for (std::size_t i = 0; i < slot_pages; ++i) c.arena_page_used[first_page + i] = true;

    // Headers go on the pool's node too (best effort: a refusal only costs locality).
    std::byte* header_pages = c.arena + first_page * 4096;
    detail::bind_and_touch(header_pages, slot_pages * 4096, mapping->node);

    std::byte* aligned = mapping->base;
    if (layout.align_slack != 0) {
        const auto addr = reinterpret_cast<std::uintptr_t>(aligned);
        aligned += ((addr + props.alignment - 1) & ~(std::uintptr_t(props.alignment) - 1)) - addr;
    }
    for (std::uint32_t i = 0; i < count; ++i) {
        SampleHeader& h = slots_[pool->first_slot + i];
        h.slot = pool->first_slot + i;
        h.index = i;
        h.pool = pool;
        h.data = aligned + layout.first_data + std::size_t(i) * layout.stride;
        h.capacity = layout.capacity;
        h.prefix_bytes = static_cast<std::uint32_t>(props.prefix);
        h.size = 0;
        h.flags = 0;
        // relaxed: all published by the head store below.
        h.refs.store(0, std::memory_order_relaxed);
        h.holder.store(nullptr, std::memory_order_relaxed);
        h.next.store(i + 1 < count ? h.slot + 1 : kEmptySlot, std::memory_order_relaxed);
        if (props.checked) {
            std::memset(h.data, kPoisonByte, layout.capacity);
            std::memset(h.data + layout.capacity, kGuardByte, layout.guard);
        }
    }

    // relaxed: published by the head store below, which every get acquires.
    if (props.checked) get_extras_.fetch_or(kCheckedBit, std::memory_order_relaxed);
    else get_extras_.fetch_and(std::uint8_t(~kCheckedBit), std::memory_order_relaxed);

    // relaxed: only control operations (serialised by the mutex) change the generation half.
    pool->quiet_state = wait_state_.load(std::memory_order_relaxed) & ~(kOneDecommit - 1);  // no waiter, no ledger
    // acquire-free: only this thread changes a decommitted head (pushes and pops leave it alone).
    const std::uint64_t old = head_.load(std::memory_order_relaxed);
    // release: publishes the headers, the pool record and slots_ to every get that acquires it.
    // The pop counter moves on so a stale get from an earlier epoch can never match this head.
    head_.store(((old & ~kSlotMask) + kPopIncrement) | pool->first_slot, std::memory_order_release);
    c.current = pool;
    c.pools.push_back(pool);
    ++c.commits;
    return {};
}

std::error_code SampleAllocator::decommit() {
    std::lock_guard lock(control_->mutex);
    Control& c = *control_;
    detail::PoolImpl* pool = c.current;
    if (pool == nullptr) return {};
    c.current = nullptr;
    ++c.decommits;

    // Counted before the pool can drain: a release may finish it as soon as `retired` is set.
    // relaxed: the retired store below (and the seq_cst CAS after it) orders it for releasers.
    live_retired_.fetch_add(1, std::memory_order_relaxed);
    // seq_cst: a releaser that acquires the new head (or reads this flag) sees the pool retired;
    // and it precedes (i) and (ii) in the total order, so a cache taker whose seq_cst CAS took a
    // sample parked after (ii) reads it as set (take_cached, steal_cached).
    pool->retired.store(true, std::memory_order_seq_cst);
    // seq_cst: (i) of the pairing with parking releasers: from here their quiet-state check fails.
    wait_state_.fetch_add(kOneDecommit, std::memory_order_seq_cst);
    // relaxed: only a first guess for the CAS below, which reads the head again if it is stale.
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    // seq_cst: after this, pushes fail and see the decommitted head, pops fail; also orders the
    // retired flag before any later commit's head. relaxed on failure: as the first guess.
    while (!head_.compare_exchange_weak(head, (head & ~kSlotMask) | kDecommittedSlot, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
    }

    // The free list we detached is ours now; nobody else follows it (stale gets only read it).
    std::int64_t free_count = 0;
    for (auto slot = std::uint32_t(head & kSlotMask); slot < kDecommittedSlot;
         // relaxed: written before the pushes we acquired with the CAS.
         slot = slots_[slot].next.load(std::memory_order_relaxed))
        ++free_count;
    // (ii): samples parked in the caches are free too. Almost always this pool's: an older pool's
    // sample can be there only while its releaser, who parked it after that pool's decommit, has
    // not yet taken it back; then it is ours to count out of that pool.
    for (CacheSlot& cache : caches_) {
        // seq_cst: (ii) of the pairing; the CAS's acquire makes the sample ours.
        std::uint64_t word = cache.word.load(std::memory_order_seq_cst);
        while ((word & kSlotMask) != 0) {
            if (!cache.word.compare_exchange_weak(word, word & ~kSlotMask, std::memory_order_seq_cst,
                                                  std::memory_order_seq_cst))
                continue;
            SampleHeader* h = slots_ + ((word & kSlotMask) - 1);
            if (h->pool == pool) ++free_count;
            else return_retired(h);  // an older pool's: see above
            break;
        }
    }
    // Wake every waiter at once: one futex call, whatever their number. (After the counting
    // above, so that the woken threads do not compete with it for the CPU.)
    // release: a woken waiter's acquire of wake_seq_ precedes its pop, which sees the new head.
    wake_seq_.fetch_add(1, std::memory_order_release);
    detail::futex_wake_all(&wake_seq_);
    // acq_rel: pairs with return_retired; whoever reaches zero sees everyone's releases.
    // With nothing free the count may already have reached zero in a release (every sample was
    // out and came back between `retired` and the CAS): that release drained the pool, not us.
    if (free_count > 0 && pool->outstanding.fetch_sub(free_count, std::memory_order_acq_rel) == free_count) {
        // Nothing was out: free it here, on the control thread.
        detail::unmap_memory(pool->region, pool->region_bytes);
        pool->region = nullptr;
        // release: pairs with recycle_drained's acquire.
        pool->drained.store(true, std::memory_order_release);
        // release: as in return_retired (the destructor's wait).
        live_retired_.fetch_sub(1, std::memory_order_release);
        recycle_drained(c.pools, c.arena, c.arena_page_used);
    }
    return {};
}

bool SampleAllocator::committed() const noexcept {
    // acquire: a caller that sees "committed" can rely on the commit's effects.
    return std::uint32_t(head_.load(std::memory_order_acquire) & kSlotMask) != kDecommittedSlot;
}

// ---------------------------------------------------------------------------------------------
// Releases that are not the plain push

void SampleAllocator::return_retired(SampleHeader* h) noexcept {
    auto* pool = static_cast<detail::PoolImpl*>(h->pool);
    // acq_rel: the release half orders our use of the sample before the unmap; the acquire half
    // lets the last releaser see the others' uses.
    if (pool->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // Last sample of a retired pool: its memory goes to the housekeeping thread, never to the OS
    // from here (this may be a real-time thread).
    std::byte* region = std::exchange(pool->region, nullptr);
    detail::Reclaimer::instance().hand_over(region, pool->region_bytes);
    // release: after this the record belongs to the control path (recycle_drained).
    pool->drained.store(true, std::memory_order_release);
    // release: pairs with the destructor's acquire; it is our last touch of the allocator's
    // memory (the futex wake only passes the address to the kernel).
    live_retired_.fetch_sub(1, std::memory_order_release);
    detail::futex_wake_all(&live_retired_);
}

void SampleAllocator::on_return_checked(SampleHeader* h, bool discarded) noexcept {
    auto* pool = static_cast<detail::PoolImpl*>(h->pool);
    if (pool->checked) {
        const std::byte* guard = h->data + pool->capacity;
        for (std::size_t i = 0; i < pool->guard; ++i)
            if (guard[i] != std::byte{kGuardByte}) {
                // relaxed: a statistic.
                corruptions_.fetch_add(1, std::memory_order_relaxed);
                break;
            }
        std::memset(h->data, kPoisonByte, pool->capacity);
    }
    if (discarded) {
        // Clear what the holder left so nothing of it can leak into the next use.
        h->size = 0;
        h->flags = 0;
        // relaxed: a statistic.
        control_->discards.fetch_add(1, std::memory_order_relaxed);
    }
    // relaxed: the count is 0 apart from the discard bit, and we own the header until the push.
    h->refs.store(0, std::memory_order_relaxed);
}

void SampleAllocator::on_get_checked(SampleHeader* h) noexcept {
    auto* pool = static_cast<const detail::PoolImpl*>(h->pool);
    // Poison written at release must be intact: anything else was written after the release.
    for (std::size_t i = 0; i < pool->capacity; ++i)
        if (h->data[i] != std::byte{kPoisonByte}) {
            // relaxed: a statistic.
            corruptions_.fetch_add(1, std::memory_order_relaxed);
            break;
        }
}

// ---------------------------------------------------------------------------------------------
// Waiting

// ---------------------------------------------------------------------------------------------
// Per-thread caches

void detail::move_cache_slot() noexcept {
    if (cache_offset != 0) return;  // has a slot of its own already; the meeting was chance
    // relaxed: any spread will do; only this thread reads its slot number.
    static std::atomic<std::uint32_t> next{0};
    const std::uint32_t slot = 1 + next.fetch_add(1, std::memory_order_relaxed) % (SampleAllocator::kCacheSlots - 1);
    cache_offset = std::uintptr_t(slot) * kCacheLineSize;
}

// Takes whatever `cache` holds (a sample, or nothing if someone was quicker) and releases it
// through the free list, which handles retired pools and wakes a waiter.
void SampleAllocator::flush_cache(std::atomic<std::uint64_t>& cache) noexcept {
    // seq_cst: part of the pairings above; the CAS's acquire makes the sample's state ours.
    std::uint64_t word = cache.load(std::memory_order_seq_cst);
    while ((word & kSlotMask) != 0) {
        if (cache.compare_exchange_weak(word, word & ~kSlotMask, std::memory_order_seq_cst,
                                        std::memory_order_seq_cst)) {
            push_free(slots_ + ((word & kSlotMask) - 1));
            return;
        }
    }
}

// A cache take that found a retired pool's sample (parked in the moment before its releaser took
// it back): the sample is counted out of its pool, and the take out of stats().gets.
void SampleAllocator::discard_retired_take(SampleHeader* h) noexcept {
    // relaxed: a statistic.
    retired_takes_.fetch_add(1, std::memory_order_relaxed);
    return_retired(h);
}

// A waiter's last look before it sleeps: a sample parked in any thread's cache.
SampleHeader* SampleAllocator::steal_cached() noexcept {
    for (CacheSlot& c : caches_) {
        // seq_cst: the waiter's scan (b') in the pairing with parking releasers.
        std::uint64_t word = c.word.load(std::memory_order_seq_cst);
        while ((word & kSlotMask) != 0) {
            // seq_cst: the scan's take, as in take_cached (acquires the parker's release; orders
            // the `retired` load); on failure the reloaded word is used as the load above.
            if (!c.word.compare_exchange_weak(word, (word & ~kSlotMask) + kPopIncrement, std::memory_order_seq_cst,
                                              std::memory_order_seq_cst))
                continue;
            SampleHeader* h = slots_ + ((word & kSlotMask) - 1);
            // seq_cst: as in take_cached.
            if (!h->pool->retired.load(std::memory_order_seq_cst)) return h;
            discard_retired_take(h);
            break;
        }
    }
    return nullptr;
}

void SampleAllocator::wake_one() noexcept {
    // release: a woken waiter acquires wake_seq_ before it pops again.
    wake_seq_.fetch_add(1, std::memory_order_release);
    detail::futex_wake(&wake_seq_, 1);
}

namespace {
constexpr int kSpins = 100;  // about 1-4 us of PAUSE, depending on the core

inline void spin_pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

struct WakeAll {
    std::atomic<std::uint32_t>* word;
    void operator()() const noexcept {
        // release: as in wake_one.
        word->fetch_add(1, std::memory_order_release);
        detail::futex_wake_all(word);
    }
};
}  // namespace

Result<SampleRef> SampleAllocator::get_slow(std::int64_t deadline_ns, const std::stop_token* stop,
                                            const char* holder) noexcept {
    PopFailure why = PopFailure::empty;
    if (SampleHeader* h = try_pop(std::memory_order_seq_cst, why)) return hand_out(h, holder);
    if (why == PopFailure::decommitted) {
        // relaxed: a statistic.
        refused_.fetch_add(1, std::memory_order_relaxed);
        return unexpected(Errc::not_committed);
    }
    if (SampleHeader* h = steal_cached()) return hand_out(h, holder);
    // Spin a little before sleeping: in a producer/consumer hand-off the buffer usually comes back
    // within a microsecond or two, far sooner than a futex sleep and wake-up would take.
    for (int spin = 0; spin < kSpins; ++spin) {
        spin_pause();
        if (SampleHeader* h = try_pop(std::memory_order_acquire, why)) return hand_out(h, holder);
        if (why == PopFailure::decommitted) {
            // relaxed: a statistic.
            refused_.fetch_add(1, std::memory_order_relaxed);
            return unexpected(Errc::not_committed);
        }
        if (stop != nullptr && stop->stop_requested()) break;
    }
    // relaxed: a statistic.
    waits_.fetch_add(1, std::memory_order_relaxed);

    // A stop request wakes every waiter (they cannot be told apart); the others sleep again.
    std::optional<std::stop_callback<WakeAll>> on_stop;
    if (stop != nullptr && stop->stop_possible()) on_stop.emplace(*stop, WakeAll{&wake_seq_});

    // Leaving without a sample after a wake-up may swallow a wake meant for a buffer: pass it on.
    auto leave = [this](Errc why_leaving, std::atomic<std::uint64_t>& counter) -> Result<SampleRef> {
        // seq_cst: ordered before the head load, as in the releaser's pairing.
        wait_state_.fetch_sub(kOneWaiter, std::memory_order_seq_cst);
        const auto slot = std::uint32_t(head_.load(std::memory_order_seq_cst) & kSlotMask);
        if (slot < kDecommittedSlot && waiting(wait_state_.load(std::memory_order_seq_cst)) != 0) wake_one();
        // relaxed: a statistic.
        counter.fetch_add(1, std::memory_order_relaxed);
        return unexpected(why_leaving);
    };

    for (;;) {
        // acquire: pairs with the release increment of a waker; see the pairing at the top.
        const std::uint32_t seq = wake_seq_.load(std::memory_order_acquire);
        // seq_cst: the waiter's half of the Dekker pairing (b).
        wait_state_.fetch_add(kOneWaiter, std::memory_order_seq_cst);
        if (SampleHeader* h = try_pop(std::memory_order_seq_cst, why)) {
            // relaxed: a stale higher count only costs a releaser one spare wake.
            wait_state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
            return hand_out(h, holder);
        }
        if (why == PopFailure::decommitted) {
            // relaxed: as above.
            wait_state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
            refused_.fetch_add(1, std::memory_order_relaxed);
            return unexpected(Errc::not_committed);
        }
        // Between c and d: a release that parked its sample before it could see us.
        if (SampleHeader* h = steal_cached()) {
            // relaxed: as above.
            wait_state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
            return hand_out(h, holder);
        }
        if (stop != nullptr && stop->stop_requested()) return leave(Errc::cancelled, cancels_);
        if (deadline_ns >= 0 && steady_now_ns() >= deadline_ns) return leave(Errc::timeout, timeouts_);
        detail::futex_wait(&wake_seq_, seq, deadline_ns);
        // relaxed: as above.
        wait_state_.fetch_sub(kOneWaiter, std::memory_order_relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// Ledger and statistics

void SampleAllocator::record_holder(SampleHeader* h, const char* holder) noexcept {
    // relaxed: diagnostic fields, read by ledger() as a snapshot.
    h->holder.store(holder, std::memory_order_relaxed);
    h->taken_ns.store(steady_now_ns(), std::memory_order_relaxed);
}

void SampleAllocator::set_ledger_enabled(bool on) noexcept {
    // Serialised, so the switch's two words (get_extras_, wait_state_) never disagree.
    std::lock_guard lock(control_->mutex);
    // relaxed: gets pick the switch up on their next call; nothing else depends on it.
    if (on) get_extras_.fetch_or(kLedgerBit, std::memory_order_relaxed);
    else get_extras_.fetch_and(std::uint8_t(~kLedgerBit), std::memory_order_relaxed);
    // seq_cst: like a waiter's count, it stops releases parking samples (which would be handed
    // out unrecorded); then the ones already parked go back to the free list.
    if (on) {
        wait_state_.fetch_or(kLedgerOn, std::memory_order_seq_cst);
        for (CacheSlot& cache : caches_) flush_cache(cache.word);
    } else {
        wait_state_.fetch_and(~kLedgerOn, std::memory_order_seq_cst);
    }
}

bool SampleAllocator::ledger_enabled() const noexcept {
    // relaxed: as above.
    return (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
}

std::vector<LedgerEntry> SampleAllocator::ledger() const {
    std::lock_guard lock(control_->mutex);
    std::vector<LedgerEntry> entries;
    // relaxed: as in set_ledger_enabled. Holders and times are only recorded while it is on.
    const bool recording = (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
    const std::int64_t now = steady_now_ns();
    for (const detail::PoolImpl* pool : control_->pools) {
        // acquire: a drained pool's headers may be recycled by the next commit (not while we
        // hold the lock, but its samples are all back).
        if (pool->drained.load(std::memory_order_acquire)) continue;
        for (std::uint32_t i = 0; i < pool->count; ++i) {
            const SampleHeader& h = slots_[pool->first_slot + i];
            // relaxed: a snapshot for diagnostics.
            const std::uint32_t refs = h.refs.load(std::memory_order_relaxed) & detail::kRefMask;
            if (refs == 0) continue;
            const char* holder = recording ? h.holder.load(std::memory_order_relaxed) : nullptr;
            const std::int64_t taken = recording ? h.taken_ns.load(std::memory_order_relaxed) : 0;
            entries.push_back({pool->epoch, i, holder != nullptr ? holder : "?", refs,
                               std::chrono::nanoseconds(taken != 0 ? now - taken : 0)});
        }
    }
    std::sort(entries.begin(), entries.end(),
              [](const LedgerEntry& a, const LedgerEntry& b) { return a.held_for > b.held_for; });
    return entries;
}

AllocatorStats SampleAllocator::stats() const {
    std::lock_guard lock(control_->mutex);
    const Control& c = *control_;
    AllocatorStats s;
    s.buffers = c.current != nullptr ? c.current->count : 0;
    for (const detail::PoolImpl* pool : c.pools) {
        // acquire: as in ledger().
        if (pool->drained.load(std::memory_order_acquire)) continue;
        if (pool != c.current) {
            ++s.retired_pools;
            // relaxed: a snapshot.
            s.outstanding += std::size_t(pool->outstanding.load(std::memory_order_relaxed));
        } else {
            for (std::uint32_t i = 0; i < pool->count; ++i)
                // relaxed: a snapshot.
                if ((slots_[pool->first_slot + i].refs.load(std::memory_order_relaxed) & detail::kRefMask) != 0)
                    ++s.outstanding;
        }
        s.bytes_mapped += pool->region_bytes;
    }
    // relaxed everywhere below: statistics, each a snapshot on its own.
    s.waiters = waiting(wait_state_.load(std::memory_order_relaxed));
    std::uint64_t pops = head_.load(std::memory_order_relaxed) >> kSlotBits;
    for (const CacheSlot& cache : caches_) pops += cache.word.load(std::memory_order_relaxed) >> kSlotBits;
    pops -= retired_takes_.load(std::memory_order_relaxed);
    s.gets = (pops - c.commits) & (std::numeric_limits<std::uint64_t>::max() >> kSlotBits);
    s.waits = waits_.load(std::memory_order_relaxed);
    s.timeouts = timeouts_.load(std::memory_order_relaxed);
    s.cancels = cancels_.load(std::memory_order_relaxed);
    s.refused = refused_.load(std::memory_order_relaxed);
    s.commits = c.commits;
    s.decommits = c.decommits;
    s.epoch = c.epoch;
    s.discards = c.discards.load(std::memory_order_relaxed);
    s.corruptions = corruptions_.load(std::memory_order_relaxed);
    s.numa_node = c.current != nullptr ? c.current->node : -1;
    return s;
}

// ---------------------------------------------------------------------------------------------
// SampleRef's out-of-line members

std::error_code SampleRef::set_size(std::size_t n) noexcept {
    if (n > header_->capacity) return Errc::invalid_argument;
    header_->size = n;
    return {};
}

void SampleRef::discard() noexcept {
    if (header_ == nullptr) return;
    // relaxed: the fetch_sub in reset() follows in this atomic's modification order, so the
    // thread that drops the last reference reads this bit.
    header_->refs.fetch_or(detail::kDiscardBit, std::memory_order_relaxed);
    reset();
}


}  // namespace sluice

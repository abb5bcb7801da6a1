// SPDX-License-Identifier: MIT
#include <sluice/allocators/sample_allocator.hpp>

#include "memory.hpp"
#include "reclaimer.hpp"

#include <algorithm>
#include <bit>
#include <cassert>
#include <cstring>
#include <limits>
#include <mutex>
#include <thread>
#include <vector>

// How the pieces pair up (the "pairings" cited by comments below; the numbered rules of the
// contract are in docs/allocator-contract.md). Every pairing below is about one word at a time or about a pair of words
// in one seq_cst total order; "the word" of a CAS is read and written in one step, so a CAS that
// succeeds saw every earlier change of that word.
//
// P1. A sample becomes free in exactly one step, and after that step its releaser touches nothing
//    the allocator owns (contract rule 4: the destructor waits for samples, and once they are all
//    back no release can still be running inside the allocator):
//    - parking: the CAS that puts it in a cache word (try_park, park_reopening);
//    - pushing: the CAS that puts it on the free list (push_free). The value that CAS replaced
//      says whether a waiter may sleep (the head's waiters flag); only then does the pusher go on
//      to wake one. A waiter may have finished its get by then, and the owner destroyed the
//      allocator (the SPIN model in tests/model found that interleaving): so a pusher that will
//      wake counts itself in notifiers_ before its CAS, and uncounts itself as its very last
//      touch; the destructor waits for notifiers_ == 0;
//    - counting it out of a retired pool (return_retired): the decrement of `outstanding`; the
//      last one hands the memory to the reclaimer thread, which decrements live_retired_ after the
//      unmap (the destructor waits for live_retired_ == 0).
//
// P2. Waiting without losing a wake-up (get_slow against push_free). The waiters flag lives in the
//    head itself, so the push and the waiter's announcement are CASes on the same word:
//
//      pusher (push_free)                       waiter (get_slow)
//      1. CAS the sample onto head_, keeping    a. ticket = wake_.prepare_wait()
//         the flag (acq_rel)                    b. waiters_ += 1
//      2. if the replaced head had the flag:    c. CAS head_ from "empty" to "empty, flag set,
//         wake_.notify_one()                       counter + 1" (acq_rel)
//                                               d. wake_.wait(ticket)
//
//    In head_'s modification order either 1 precedes c (c then finds the head not empty, fails,
//    and the waiter pops the sample) or c precedes 1 (1 replaces a head with the flag set, the
//    pusher's acquire makes a happen before its notify, so the ticket is stale and d returns).
//    The counter moves in c even when the flag was set already, so a CAS that read the head
//    before c always fails after it.
//    The last waiter to leave clears the flag (stop_waiting): it reads the head, then waiters_,
//    then CASes the flag away; a newcomer's b precedes its c, so either the newcomer's c lands
//    after the clearing (and sets the flag again) or it moved the counter and the clearing CAS
//    fails, and the retry reads waiters_ after c, hence after b, and leaves the flag alone.
//
// P3. Parked samples and waiters (close_caches against try_park / park_reopening). A waiter
//    closes every cache word of the pool after c and before d: one CAS per word that sets the
//    closed flag, moves the counter and takes any sample parked there. A release parks only in an
//    open word, by CAS, so it either parked before the close (the waiter takes the sample) or its
//    CAS fails and it pushes (P2). A closed word is reopened only by a release, and only when
//    no waiter is announced, the ledger is off, the pool is not retired and not checked: it loads
//    the word (acquire), then those four, then CASes the word from the value it loaded. Whoever
//    closed the word set its reason (b, the ledger bit, `retired`) before the close, and the
//    close's release makes it visible to a release that loaded the closed word; a close that came
//    after the load makes the reopening CAS fail.
//
// P4. Decommit (contract rule 3): `retired` is set, the head swapped to "decommitted" (pushes fail from
//    then on and see the flag), then every cache word of the pool is closed for good, taking the
//    samples parked there. A sample is thus counted free by decommit exactly when it was on the
//    detached free list or in a cache word at the close; every other sample of the pool is
//    counted out by its release (return_retired). A get that read the pool before decommit may
//    still take a parked sample before the close: decommit then counts it as held, rightly.
//    Pool records are reused, never freed, while the allocator lives (P1), so such a stale
//    get reads valid words.

namespace sluice {

using detail::SampleHeader;

namespace {

constexpr std::size_t kArenaSlots = std::size_t(1) << 18;  // headers reserved per allocator
constexpr std::size_t kSlotsPerPage = 4096 / sizeof(SampleHeader);
constexpr std::size_t kReclaimNodeBytes = 64;  // head of every pool mapping, for the reclaimer
constexpr std::size_t kGuardBytes = 64;        // checked mode: guard after each buffer
constexpr unsigned char kGuardByte = 0xAB;
constexpr unsigned char kPoisonByte = 0xDD;
constexpr std::size_t kCheckedCommitBytes = std::size_t(16) << 20;  // commits this big ask first

static_assert(kArenaSlots <= (std::size_t(1) << 20) - 2,
              "arena slot indices must fit the head's 20-bit field below its two special values");
static_assert(kArenaSlots >= 2 * SampleAllocator::kMaxBuffers,
              "the arena must hold a full pool while another full one is still held");
static_assert(std::atomic<std::uint64_t>::is_always_lock_free, "the free-list head must be one lock-free word");

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

// Where every allocator's `current_` points while it is not committed: its cache words are
// always empty (constant-initialised to 0), so a get finds nothing there and goes on to the free
// list's head, which says "decommitted". No sample belongs to it, so nothing ever writes them.
constinit detail::Pool g_no_pool;

}  // namespace

namespace detail {

// A pool: the memory and headers of one commit. The record lives as long as its allocator:
// drained records are reused by later commits (see P4 in the comment at the top).
struct PoolImpl : Pool {
    std::byte* region = nullptr;   // the mmap'd memory (begins with the reclaimer's node space)
    std::size_t region_bytes = 0;
    std::uint32_t first_slot = 0;  // headers: slots_[first_slot .. first_slot + count)
    std::uint32_t count = 0;
    std::uint32_t slot_pages = 0;  // arena pages reserved for the headers
    int node = -1;
    std::size_t capacity = 0;
    std::size_t guard = 0;
    // Set by whoever finished with the memory (the last release, or decommit); after it, only
    // the control path touches this record. Invariant: drained implies outstanding == 0; the
    // region is unmapped, or handed to the reclaimer.
    std::atomic<bool> drained{true};
    bool in_use = false;  // holds a commit's pool (current or retired, drained or not)
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
    std::vector<detail::PoolImpl*> records; // every pool record made; in_use or free for reuse

    std::uint64_t epoch = 0;
    std::uint64_t commits = 0;
    std::uint64_t decommits = 0;
    std::atomic<std::uint64_t> discards{0};
    bool holders_named = false;  // set_holders_named
};

SampleAllocator::SampleAllocator() : current_(&g_no_pool), control_(std::make_unique<Control>()) {
#ifndef NDEBUG
    // relaxed: no other thread can see the allocator yet.
    get_extras_.store(kLedgerBit, std::memory_order_relaxed);
#endif
}

SampleAllocator::~SampleAllocator() {
    (void)decommit();
    // Every retired epoch's memory is unmapped, by the reclaimer or by decommit, before
    // live_retired_ is decremented; the reclaimer notifies after each batch.
    detail::Reclaimer::instance().wait_until_zero(live_retired_);
    // A push that freed its sample may still be waking a waiter (P1): a few instructions and a
    // system call. acquire: pairs with its release decrement, after which it touches nothing.
    while (notifiers_.load(std::memory_order_acquire) != 0) std::this_thread::yield();
    std::lock_guard lock(control_->mutex);
    for (detail::PoolImpl* p : control_->records) {
        // relaxed: wait_until_zero's acquire already ordered the drains.
        assert(p->drained.load(std::memory_order_relaxed) && "every pool is drained once live_retired_ is 0");
        p->~PoolImpl();
        detail::control_free(p);
    }
    control_->records.clear();
    if (control_->arena != nullptr) detail::unmap_memory(control_->arena, kArenaSlots * sizeof(SampleHeader));
}

// ---------------------------------------------------------------------------------------------
// Properties

Result<AllocatorProperties> SampleAllocator::set_properties(const AllocatorProperties& wanted) {
    std::lock_guard lock(control_->mutex);
    if (control_->current != nullptr) return unexpected(Errc::already_committed);
    for (detail::PoolImpl* p : control_->records)
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

// Gives the header pages of drained pools back and marks their records free. Control lock held.
void recycle_drained(std::vector<detail::PoolImpl*>& records, std::byte* arena, std::vector<bool>& page_used) {
    for (detail::PoolImpl* p : records) {
        // acquire: pairs with the drainer's release store; after it the record is ours.
        if (!p->in_use || !p->drained.load(std::memory_order_acquire)) continue;
        const std::size_t first_page = p->first_slot / kSlotsPerPage;
        for (std::size_t i = 0; i < p->slot_pages; ++i) page_used[first_page + i] = false;
        // Stale gets may still read these headers' `next`; after MADV_DONTNEED they read zeros,
        // which their failing CAS ignores.
        detail::release_pages(arena + first_page * 4096, std::size_t(p->slot_pages) * 4096);
        p->in_use = false;
    }
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
    recycle_drained(c.records, c.arena, c.arena_page_used);

    const AllocatorProperties& props = c.granted;
    const Layout& layout = c.layout;
    const auto count = static_cast<std::uint32_t>(props.buffers);
    const std::size_t slot_pages = (count + kSlotsPerPage - 1) / kSlotsPerPage;
    const std::size_t first_page = find_free_pages(c.arena_page_used, slot_pages);
    if (first_page == std::size_t(-1)) return Errc::out_of_memory;  // too many epochs still held
    // Faulting in more than this process may use gets it killed, not refused: ask first. (Small
    // pools are spared the reading of /proc and /sys: one of them is no more dangerous than any
    // malloc, and a graph of ten thousand nodes commits ten thousand of them.)
    if (const std::size_t bytes = layout.map_bytes + slot_pages * 4096;
        bytes >= kCheckedCommitBytes && bytes > detail::memory_headroom_bytes())
        return Errc::out_of_memory;

    detail::PoolImpl* pool = nullptr;
    for (detail::PoolImpl* p : c.records)
        if (!p->in_use) {
            pool = p;
            break;
        }
    if (pool == nullptr) {
        void* record = detail::control_alloc(sizeof(detail::PoolImpl));
        if (record == nullptr) return Errc::out_of_memory;
        pool = ::new (record) detail::PoolImpl();
        try {
            c.records.push_back(pool);
        } catch (...) {
            pool->~PoolImpl();
            detail::control_free(pool);
            return Errc::out_of_memory;
        }
    }

    auto mapping = detail::map_memory(layout.map_bytes, props.numa_node);
    if (!mapping) return mapping.error();  // the record stays free for the next commit

    pool->in_use = true;
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
    // relaxed, all of them: published by the release stores of current_ and head_ below.
    pool->retired.store(false, std::memory_order_relaxed);
    pool->drained.store(false, std::memory_order_relaxed);
    pool->outstanding.store(count, std::memory_order_relaxed);
    // A reused record's cache words keep their counters (stale CASes on them must fail, and
    // stats().gets adds them up); a checked pool's, and all of them while the ledger is on, start
    // closed for good.
    const bool closed = props.checked || (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
    for (detail::CacheWord& w : pool->caches) {
        // acq_rel: a plain RMW so stale CASes see a changed word; published below as above.
        std::uint64_t word = w.word.load(std::memory_order_relaxed);
        while (!w.word.compare_exchange_weak(word, ((word & ~(kSlotMask | kClosedFlag)) + kCountIncrement) |
                                                        (closed ? kClosedFlag : 0),
                                             std::memory_order_acq_rel, std::memory_order_relaxed)) {
        }
        // relaxed: a statistic (the counter moved without a take).
        closes_.fetch_add(1, std::memory_order_relaxed);
    }
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
        h.taken_ns.store(0, std::memory_order_relaxed);
        h.next.store(i + 1 < count ? h.slot + 1 : kEmptySlot, std::memory_order_relaxed);
        if (props.checked) {
            std::memset(h.data, kPoisonByte, layout.capacity);
            std::memset(h.data + layout.capacity, kGuardByte, layout.guard);
        }
    }

    // relaxed: published by the head store below, which every get acquires.
    if (props.checked) get_extras_.fetch_or(kCheckedBit, std::memory_order_relaxed);
    else get_extras_.fetch_and(std::uint8_t(~kCheckedBit), std::memory_order_relaxed);

    // release: publishes the pool record and its words to take_cached's acquire.
    current_.store(pool, std::memory_order_release);
    // relaxed: only a first guess for the CAS, which keeps the waiters flag as it is.
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    // release: publishes the headers, the pool record and slots_ to every get that acquires it.
    // The counter moves on so a stale get from an earlier epoch can never match this head.
    while (!head_.compare_exchange_weak(head, ((head & ~kSlotMask) + kCountIncrement) | pool->first_slot,
                                        std::memory_order_release, std::memory_order_relaxed)) {
    }
    // relaxed: a statistic; the commit's own counter move is no pop.
    announcements_.fetch_add(1, std::memory_order_relaxed);
    c.current = pool;
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
    // seq_cst: a releaser that acquires the new head (or reads this flag) sees the pool retired,
    // and so does one that loads a cache word after the closes below (P3).
    pool->retired.store(true, std::memory_order_seq_cst);
    // release: new gets go to the empty pool; the head below says why.
    current_.store(&g_no_pool, std::memory_order_release);
    // relaxed: only a first guess for the CAS below, which reads the head again if it is stale.
    std::uint64_t head = head_.load(std::memory_order_relaxed);
    // seq_cst: after this, pushes fail and see the decommitted head, pops fail; also orders the
    // retired flag before any later commit's head. The waiters flag and counter stay. relaxed on
    // failure: as the first guess.
    while (!head_.compare_exchange_weak(head, (head & ~kSlotMask) | kDecommittedSlot, std::memory_order_seq_cst,
                                        std::memory_order_relaxed)) {
    }

    // The free list we detached is ours now; nobody else follows it (stale gets only read it).
    std::int64_t free_count = 0;
    for (auto slot = std::uint32_t(head & kSlotMask); slot < kDecommittedSlot;
         // relaxed: written before the pushes we acquired with the CAS.
         slot = slots_[slot].next.load(std::memory_order_relaxed))
        ++free_count;
    // Samples parked in the pool's caches are free too; the words stay closed for good.
    for (detail::CacheWord& w : pool->caches) {
        // relaxed: a first guess for the CAS.
        std::uint64_t word = w.word.load(std::memory_order_relaxed);
        // acq_rel: the acquire makes a parked sample's state ours; the release publishes `retired`
        // to releases that load the closed word (P3).
        while (!w.word.compare_exchange_weak(word, ((word & ~kSlotMask) + kCountIncrement) | kClosedFlag,
                                             std::memory_order_acq_rel, std::memory_order_relaxed)) {
        }
        // relaxed: a statistic.
        closes_.fetch_add(1, std::memory_order_relaxed);
        if ((word & kSlotMask) != 0) {
            ++free_count;
            // relaxed: ours; free samples of a retired pool count 0 (the ledger skips them).
            slots_[(word & kSlotMask) - 1].refs.store(0, std::memory_order_relaxed);
        }
    }
    // Wake every waiter at once: one futex call, whatever their number. (After the counting
    // above, so that the woken threads do not compete with it for the CPU.) The notify's release
    // pairs with a woken waiter's ticket, after which it reads the new head.
    wake_.notify_all();
    // acq_rel: pairs with return_retired; whoever reaches zero sees everyone's releases.
    // With nothing free the count may already have reached zero in a release (every sample was
    // out and came back between `retired` and the CAS): that release drained the pool, not us.
    if (free_count > 0 && pool->outstanding.fetch_sub(free_count, std::memory_order_acq_rel) == free_count) {
        // Nothing was out: free it here, on the control thread.
        detail::unmap_memory(pool->region, pool->region_bytes);
        pool->region = nullptr;
        // release: pairs with recycle_drained's acquire.
        pool->drained.store(true, std::memory_order_release);
        // release: pairs with the destructor's wait.
        live_retired_.fetch_sub(1, std::memory_order_release);
        recycle_drained(c.records, c.arena, c.arena_page_used);
    }
    return {};
}

bool SampleAllocator::committed() const noexcept {
    // acquire: a caller that sees "committed" can rely on the commit's effects.
    return std::uint32_t(head_.load(std::memory_order_acquire) & kSlotMask) != kDecommittedSlot;
}

// ---------------------------------------------------------------------------------------------
// Releases that are not the sole holder's quick park

void SampleAllocator::release_slow(SampleHeader* h) noexcept {
    // acquire: as in reset().
    std::uint32_t before = h->refs.load(std::memory_order_acquire);
    if ((before & detail::kRefMask) != 1) {
        // acq_rel: release so our writes happen-before the last holder's return of the sample;
        // acquire so the last holder sees every other holder's writes.
        before = h->refs.fetch_sub(1, std::memory_order_acq_rel);
        if ((before & detail::kRefMask) != 1) return;
    }
    // The last reference: the sample is ours alone until it is parked, pushed or counted out.
    SampleAllocator* self = h->pool->owner;
    const bool discarded = (before & detail::kDiscardBit) != 0;
    if (h->pool->checked || discarded) [[unlikely]] {
        self->on_return_checked(h, discarded);  // leaves refs at 0
        self->push_free(h);                     // not parked: a cached get skips the checks
        return;
    }
    // relaxed: we own the header; the park's or push's release publishes it.
    h->refs.store(1, std::memory_order_relaxed);  // what a parked sample keeps
    if (self->park_reopening(h)) return;
    h->refs.store(0, std::memory_order_relaxed);  // what a free-list sample has
    self->push_free(h);
}

// Parks `h` (refs already 1) in this thread's cache word, reopening the word if a waiter closed
// it and has gone (P3). False when the word is taken or must stay closed.
bool SampleAllocator::park_reopening(SampleHeader* h) noexcept {
    std::atomic<std::uint64_t>& cache = detail::cache_word(*h->pool);
    // acquire: pairs with the release of whoever closed the word, so its reason is visible below.
    std::uint64_t word = cache.load(std::memory_order_acquire);
    if ((word & kSlotMask) != 0) return false;
    if ((word & kClosedFlag) != 0) {
        // relaxed, all four: the acquire above ordered the closer's store of its reason before
        // these loads; a close after that load fails our CAS.
        if (h->pool->retired.load(std::memory_order_relaxed) || h->pool->checked ||
            (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0 ||
            waiters_.load(std::memory_order_relaxed) != 0)
            return false;
    }
    // release: publishes the sample as try_park's CAS does. relaxed on failure: we push instead.
    if (cache.compare_exchange_strong(word, (word & ~kClosedFlag) + h->slot + 1, std::memory_order_release,
                                      std::memory_order_relaxed))
        return true;
    detail::move_cache_slot();
    return false;
}

// Pushes `h` (refs 0) onto the free list, or counts it out of its retired pool.
void SampleAllocator::push_free(SampleHeader* h) noexcept {
    detail::Pool* pool = h->pool;
    // Whether we counted ourselves in notifiers_ (P1): a push that will have to wake a waiter
    // after its CAS says so before the CAS, while the allocator surely lives.
    bool notifying = false;
    // acquire: a head stored by commit() must show that pool's `retired` flag set before it.
    std::uint64_t head = head_.load(std::memory_order_acquire);
    for (;;) {
        // relaxed: decommit sets `retired` before it swaps the head, so a stale `false` here is
        // caught by the CAS, which then fails against the changed head.
        if (std::uint32_t(head & kSlotMask) == kDecommittedSlot || pool->retired.load(std::memory_order_relaxed))
            [[unlikely]] {
            // release: as below (our last touch of the word).
            if (notifying) notifiers_.fetch_sub(1, std::memory_order_release);
            return_retired(h);
            return;
        }
        // The CAS succeeds only on the value loaded, so its flag is the one that will count.
        if (const bool flag = (head & kWaitersFlag) != 0; flag != notifying) [[unlikely]] {
            // relaxed: published by the release half of the CAS below, which the destructor's
            // decommit acquires before it reads notifiers_.
            notifiers_.fetch_add(flag ? 1 : std::uint32_t(-1), std::memory_order_relaxed);
            notifying = flag;
        }
        // relaxed: published by the release half of the CAS below.
        h->next.store(std::uint32_t(head & kSlotMask), std::memory_order_relaxed);
        // acq_rel: the release publishes the sample; the acquire orders a waiter's ticket before
        // our notify (P2). acquire on failure: as the first load.
        if (head_.compare_exchange_weak(head, (head & ~kSlotMask) | h->slot, std::memory_order_acq_rel,
                                        std::memory_order_acquire))
            break;
    }
    // `head` is what our CAS replaced: the flag was set in the instant the sample became free.
    if (notifying) [[unlikely]] {
        wake_one();
        // release: our last touch of the allocator; the destructor waits for 0 (acquire).
        notifiers_.fetch_sub(1, std::memory_order_release);
    }
}

void SampleAllocator::return_retired(SampleHeader* h) noexcept {
    auto* pool = static_cast<detail::PoolImpl*>(h->pool);
    // acq_rel: the release half orders our use of the sample before the unmap; the acquire half
    // lets the last releaser see the others' uses.
    if (pool->outstanding.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    // Last sample of a retired pool: its memory goes to the housekeeping thread, never to the OS
    // from here (this may be a real-time thread). What the hand-over needs is read first: once
    // `drained` is set, the control path may reuse the record.
    std::byte* region = pool->region;
    const std::size_t bytes = pool->region_bytes;
    std::atomic<std::uint32_t>* live = &pool->owner->live_retired_;
    // release: pairs with recycle_drained's and set_properties' acquire; the record is theirs.
    pool->drained.store(true, std::memory_order_release);
    // The reclaimer unmaps, then decrements live_retired_ (which the destructor waits for); we
    // touch nothing of the allocator's after this.
    detail::Reclaimer::instance().hand_over(region, bytes, live);
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
// Per-thread caches

void detail::move_cache_slot() noexcept {
    if (cache_offset != 0) return;  // has a slot of its own already; the meeting was chance
    // relaxed: any spread will do; only this thread reads its slot number.
    static std::atomic<std::uint32_t> next{0};
    const std::uint32_t slot = 1 + next.fetch_add(1, std::memory_order_relaxed) % (kCacheSlots - 1);
    cache_offset = std::uintptr_t(slot) * kCacheLineSize;
}

// Takes a sample parked in any of the committed pool's cache words, leaving them open.
SampleHeader* SampleAllocator::steal_cached() noexcept {
    // acquire: as in take_cached.
    detail::Pool* pool = current_.load(std::memory_order_acquire);
    for (detail::CacheWord& c : pool->caches) {
        // relaxed: a first guess for the CAS.
        std::uint64_t word = c.word.load(std::memory_order_relaxed);
        while ((word & kSlotMask) != 0) {
            // acquire: as take_cached's CAS; on failure the reloaded word is used as the load above.
            if (c.word.compare_exchange_weak(word, (word & ~kSlotMask) + kCountIncrement, std::memory_order_acquire,
                                             std::memory_order_relaxed))
                return slots_ + ((word & kSlotMask) - 1);
        }
    }
    return nullptr;
}

// A waiter's last look before it sleeps (P3): closes every cache word of `pool` and takes
// the first sample found parked (then stops: a thread with a sample does not sleep).
SampleHeader* SampleAllocator::close_caches(detail::Pool* pool) noexcept {
    assert(pool != &g_no_pool && "the shared empty pool's words are never written");
    for (detail::CacheWord& c : pool->caches) {
        // relaxed: a first guess for the CAS.
        std::uint64_t word = c.word.load(std::memory_order_relaxed);
        // acq_rel: the acquire makes a parked sample ours; the release publishes our announcement
        // (waiters_) to a release that loads the closed word. relaxed on failure: a retry.
        while (!c.word.compare_exchange_weak(word, ((word & ~kSlotMask) + kCountIncrement) | kClosedFlag,
                                             std::memory_order_acq_rel, std::memory_order_relaxed)) {
        }
        // relaxed: a statistic.
        closes_.fetch_add(1, std::memory_order_relaxed);
        if ((word & kSlotMask) != 0) return slots_ + ((word & kSlotMask) - 1);  // ours now
    }
    return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Waiting

void SampleAllocator::wake_one() noexcept { wake_.notify_one(); }

// The calling waiter leaves (P2): the last one clears the head's waiters flag.
void SampleAllocator::stop_waiting() noexcept {
    // seq_cst: ordered with the newcomer's increment and head CAS (P2).
    if (waiters_.fetch_sub(1, std::memory_order_seq_cst) != 1) return;
    std::uint64_t head = head_.load(std::memory_order_seq_cst);
    while ((head & kWaitersFlag) != 0) {
        // seq_cst: read after the head load above (or the failed CAS's reload), see P2.
        if (waiters_.load(std::memory_order_seq_cst) != 0) return;
        // seq_cst on both: the CAS and its reload take part in the same total order.
        if (head_.compare_exchange_weak(head, head & ~kWaitersFlag, std::memory_order_seq_cst,
                                        std::memory_order_seq_cst))
            return;
    }
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
}  // namespace

SampleAllocator::Taken SampleAllocator::try_get_slow(PopFailure why, const char* holder) noexcept {
    if (why == PopFailure::decommitted) {
        // relaxed: a statistic.
        refused_.fetch_add(1, std::memory_order_relaxed);
        return {nullptr, Errc::not_committed};
    }
    if (SampleHeader* h = steal_cached()) return {hand_out(h, holder), {}};
    return {nullptr, Errc::would_block};
}

SampleAllocator::Taken SampleAllocator::get_slow(std::int64_t deadline_ns, const std::stop_token* stop,
                                                 const char* holder) noexcept {
    auto refuse = [this]() -> Taken {
        // relaxed: a statistic.
        refused_.fetch_add(1, std::memory_order_relaxed);
        return {nullptr, Errc::not_committed};
    };
    auto give = [this, holder](SampleHeader* h) -> Taken { return {hand_out(h, holder), {}}; };
    PopFailure why = PopFailure::empty;
    // Spin a little before sleeping: in a producer/consumer hand-off the buffer usually comes back
    // within a microsecond or two, far sooner than a sleep and wake-up would take. First, though,
    // a sample another thread parked and will not take back soon.
    if (SampleHeader* h = try_pop(why)) return give(h);
    if (why == PopFailure::decommitted) return refuse();
    if (SampleHeader* h = steal_cached()) return give(h);
    for (int spin = 0; spin < kSpins; ++spin) {
        spin_pause();
        if (SampleHeader* h = try_pop(why)) return give(h);
        if (why == PopFailure::decommitted) return refuse();
        if (stop != nullptr && stop->stop_requested()) break;
    }
    // relaxed: a statistic.
    waits_.fetch_add(1, std::memory_order_relaxed);

    // Leaving without a sample after a wake-up may swallow a wake meant for a buffer: pass it on.
    auto leave = [this](Errc why_leaving, std::atomic<std::uint64_t>& counter) {
        stop_waiting();
        // acquire: a sample seen here is handed to a waiter woken below.
        const std::uint64_t head = head_.load(std::memory_order_acquire);
        if (std::uint32_t(head & kSlotMask) < kDecommittedSlot && (head & kWaitersFlag) != 0) wake_one();
        // relaxed: a statistic.
        counter.fetch_add(1, std::memory_order_relaxed);
        return Taken{nullptr, why_leaving};
    };

    // seq_cst: (b) of P2.
    waiters_.fetch_add(1, std::memory_order_seq_cst);
    for (;;) {
        // (a) of P2: a notify after this makes the wait below return.
        const std::uint32_t ticket = wake_.prepare_wait();
        // seq_cst: ordered with stop_waiting's reads (P2).
        std::uint64_t head = head_.load(std::memory_order_seq_cst);
        const auto slot = std::uint32_t(head & kSlotMask);
        if (slot == kDecommittedSlot) {
            stop_waiting();
            return refuse();
        }
        if (slot != kEmptySlot) {
            if (SampleHeader* h = try_pop(why)) {
                stop_waiting();
                return give(h);
            }
            continue;  // taken by someone else, or decommitted: look again
        }
        // (c) of P2: announce ourselves in the head, moving its counter. seq_cst on both:
        // part of P2's total order with stop_waiting.
        if (!head_.compare_exchange_strong(head, (head + kCountIncrement) | kWaitersFlag, std::memory_order_seq_cst,
                                           std::memory_order_seq_cst))
            continue;
        // relaxed: a statistic (the counter moved without a pop).
        announcements_.fetch_add(1, std::memory_order_relaxed);
        // P3: no sample may stay parked where we would not see it.
        // acquire: as in take_cached.
        detail::Pool* pool = current_.load(std::memory_order_acquire);
        // Decommitted since: nothing to close. Its head swap came after our announcement, hence
        // after our ticket, so its notify_all ends the wait below at once. (Going round again
        // instead would move the head's counter, and could fail decommit's CAS again and again:
        // the SPIN model's non-progress cycle.)
        if (pool != &g_no_pool) {
            if (SampleHeader* h = close_caches(pool)) {
                // relaxed: a statistic; the close that took it was a get after all.
                closes_.fetch_sub(1, std::memory_order_relaxed);
                stop_waiting();
                return give(h);
            }
        }
        if (stop != nullptr && stop->stop_requested()) return leave(Errc::cancelled, cancels_);
        if (deadline_ns >= 0 && steady_now_ns() >= deadline_ns) return leave(Errc::timeout, timeouts_);
        wake_.wait(ticket, deadline_ns, stop);
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
    std::lock_guard lock(control_->mutex);
    // relaxed: gets pick the switch up on their next call; nothing else depends on it.
    const bool was_on = (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
    if (!on) {
        // relaxed: as above. Releases reopen the cache words lazily.
        get_extras_.fetch_and(std::uint8_t(~kLedgerBit), std::memory_order_relaxed);
        return;
    }
    if (was_on) return;
    // What earlier gets recorded is stale (unless the owner names every holder): a sample taken while the ledger was off (or through a
    // cache) was not recorded, and its header may still name a previous holder whose name is
    // gone. Forget it all before the first new record.
    for (const detail::PoolImpl* pool : control_->records) {
        if (!pool->in_use || control_->holders_named) continue;
        for (std::uint32_t i = 0; i < pool->count; ++i) {
            // relaxed: diagnostics; a get that records after this overwrites it.
            slots_[pool->first_slot + i].holder.store(nullptr, std::memory_order_relaxed);
            slots_[pool->first_slot + i].taken_ns.store(0, std::memory_order_relaxed);
        }
    }
    // seq_cst: set before the words close, so a release that loads a closed word sees it (P3).
    get_extras_.fetch_or(kLedgerBit, std::memory_order_seq_cst);
    // Close the committed pool's words; what was parked there goes back to the free list (a get
    // from a cache records nothing).
    if (control_->current != nullptr)
        while (SampleHeader* h = close_caches(control_->current)) {
            // relaxed: ours; a free-list sample has 0.
            h->refs.store(0, std::memory_order_relaxed);
            push_free(h);
        }
}

void SampleAllocator::set_holders_named(bool on) noexcept {
    std::lock_guard lock(control_->mutex);
    control_->holders_named = on;
}

bool SampleAllocator::ledger_enabled() const noexcept {
    // relaxed: as above.
    return (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
}

namespace {
// Slots of the samples parked in a pool's cache words (their refs stay 1 though they are free).
std::vector<std::uint32_t> parked_slots(const detail::Pool& pool) {
    std::vector<std::uint32_t> parked;
    for (const detail::CacheWord& c : pool.caches)
        // relaxed: a snapshot for statistics and diagnostics.
        if (const std::uint64_t word = c.word.load(std::memory_order_relaxed); (word & detail::kSlotMask) != 0)
            parked.push_back(std::uint32_t((word & detail::kSlotMask) - 1));
    return parked;
}
}  // namespace

std::vector<LedgerEntry> SampleAllocator::ledger() const {
    std::lock_guard lock(control_->mutex);
    std::vector<LedgerEntry> entries;
    // relaxed: as in set_ledger_enabled. Holders and times are only recorded while it is on.
    const bool recording = (get_extras_.load(std::memory_order_relaxed) & kLedgerBit) != 0;
    const std::int64_t now = steady_now_ns();
    for (const detail::PoolImpl* pool : control_->records) {
        // acquire: a drained pool's headers may be recycled by the next commit (not while we
        // hold the lock, but its samples are all back).
        if (!pool->in_use || pool->drained.load(std::memory_order_acquire)) continue;
        const std::vector<std::uint32_t> parked = parked_slots(*pool);
        for (std::uint32_t i = 0; i < pool->count; ++i) {
            const SampleHeader& h = slots_[pool->first_slot + i];
            // relaxed: a snapshot for diagnostics.
            const std::uint32_t refs = h.refs.load(std::memory_order_relaxed) & detail::kRefMask;
            if (refs == 0 || std::find(parked.begin(), parked.end(), h.slot) != parked.end()) continue;
            const char* holder =
                recording || control_->holders_named ? h.holder.load(std::memory_order_relaxed) : nullptr;
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
    // relaxed everywhere below: statistics, each a snapshot on its own.
    std::uint64_t moves = head_.load(std::memory_order_relaxed) / kCountIncrement;
    for (const detail::PoolImpl* pool : c.records) {
        for (const detail::CacheWord& w : pool->caches) moves += w.word.load(std::memory_order_relaxed) / kCountIncrement;
        // acquire: as in ledger().
        if (!pool->in_use || pool->drained.load(std::memory_order_acquire)) continue;
        if (pool != c.current) {
            ++s.retired_pools;
            s.outstanding += std::size_t(pool->outstanding.load(std::memory_order_relaxed));
        } else {
            const std::vector<std::uint32_t> parked = parked_slots(*pool);
            for (std::uint32_t i = pool->first_slot; i < pool->first_slot + pool->count; ++i)
                if ((slots_[i].refs.load(std::memory_order_relaxed) & detail::kRefMask) != 0 &&
                    std::find(parked.begin(), parked.end(), i) == parked.end())
                    ++s.outstanding;
        }
        s.bytes_mapped += pool->region_bytes;
    }
    s.waiters = waiters_.load(std::memory_order_relaxed);
    // Every counter move is a get, except commits', announcements' and closes'.
    s.gets = (moves - announcements_.load(std::memory_order_relaxed) - closes_.load(std::memory_order_relaxed)) &
             (std::numeric_limits<std::uint64_t>::max() / kCountIncrement);
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
    // relaxed: the load or fetch_sub in release_slow follows in this atomic's modification order,
    // so the thread that drops the last reference reads this bit.
    header_->refs.fetch_or(detail::kDiscardBit, std::memory_order_relaxed);
    reset();
}

}  // namespace sluice

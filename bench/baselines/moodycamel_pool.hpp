// SPDX-License-Identifier: MIT
#pragma once

// MoodycamelPool: a free list kept in moodycamel::BlockingConcurrentQueue<Sample*>, the usual
// "just use a lock-free queue" answer. get() is wait_dequeue (the queue's semaphore spins, then
// sleeps in sem_wait); release() is enqueue.
//
// Decommit: the queue cannot wake its waiters without handing them an item, so decommit() sets a
// flag and enqueues one nullptr sentinel per registered waiter; a waiter that dequeues the
// sentinel fails. To know how many to send, get() registers in `waiters_` before it may sleep,
// but only after its non-blocking try failed, so the fast path pays one relaxed load and
// nothing else. (The other honest option, wait_dequeue_timed in a loop re-checking the flag,
// would make decommit as slow as the poll period and wake every waiter every period; rejected.)
// Each sentinel posts the queue's semaphore once, so decommit() makes one sem_post per waiter.
//
// Threading: every function, any thread. get() may block; release() may allocate on a thread's
// first enqueue (moodycamel's implicit producer) and never again in steady state; decommit()
// may allocate. The pool cannot be committed again.

#include "common.hpp"

#include <concurrentqueue/blockingconcurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace sluice::bench {

class MoodycamelPool {
public:
    struct alignas(kCacheLineSize) Sample {
        std::byte* data = nullptr;
    };
    using Buffer = Sample*;
    static constexpr std::string_view kName = "moodycamel";
    static constexpr PoolKind kKind = PoolKind::blocking_pool;

    explicit MoodycamelPool(std::size_t buffers) : samples_(new Sample[buffers]), payload_(buffers) {
        for (std::size_t i = 0; i < buffers; ++i) {
            samples_[i].data = payload_.at(i);
            if (!free_.enqueue(&samples_[i])) std::abort();
        }
    }

    // Waits while the queue is empty; nullptr once decommitted. Any thread; may block.
    [[gnu::always_inline]] Buffer get() noexcept {
        // relaxed: the flag publishes nothing; a get that misses a concurrent decommit is simply
        // ordered before it, as with any pool.
        if (decommitted_.load(std::memory_order_relaxed)) [[unlikely]]
            return nullptr;
        Sample* s = nullptr;
        if (free_.try_dequeue(s)) [[likely]] {
            // A sentinel: a decommit ran since the check above and sent it to a sleeping waiter.
            // Put it back (the count must match the waiters) and fail.
            if (s == nullptr) [[unlikely]]
                release(std::move(s));
            return s;
        }
        return get_slow();
    }

    static bool valid(const Buffer& b) noexcept { return b != nullptr; }

    // Any thread. Allocates only on a thread's first enqueue (or if the queue must grow).
    [[gnu::always_inline]] void release(Buffer&& s) noexcept {
        if (!free_.enqueue(s)) std::abort();  // only on allocation failure
    }

    // Any thread; allocates (the sentinels' queue blocks) and makes one sem_post per waiter.
    void decommit() noexcept {
        // seq_cst: the store-load pairing with get_slow (Dekker): either a waiter's increment
        // precedes our load of waiters_ and we send it a sentinel, or its seq_cst re-check of the
        // flag follows our store and it never sleeps.
        decommitted_.store(true, std::memory_order_seq_cst);
        std::uint32_t n = waiters_.load(std::memory_order_seq_cst);
        Sample* const sentinels[64] = {};
        while (n != 0) {
            const std::uint32_t batch = std::min<std::uint32_t>(n, 64);
            if (!free_.enqueue_bulk(sentinels, batch)) std::abort();
            n -= batch;
        }
    }

    // Gets that found the queue empty (and spun, then maybe slept, in the semaphore) so far.
    // Any thread.
    std::uint64_t waits() const noexcept {
        // relaxed: a statistic, read after the threads that count it were joined.
        return waits_.load(std::memory_order_relaxed);
    }

private:
    Buffer get_slow() noexcept {
        // relaxed: a statistic.
        waits_.fetch_add(1, std::memory_order_relaxed);
        // seq_cst: the waiter's half of decommit's pairing.
        waiters_.fetch_add(1, std::memory_order_seq_cst);
        if (decommitted_.load(std::memory_order_seq_cst)) {
            // relaxed: a surplus count only makes decommit send a spare sentinel.
            waiters_.fetch_sub(1, std::memory_order_relaxed);
            return nullptr;
        }
        Sample* s = nullptr;
        free_.wait_dequeue(s);
        // relaxed: as above.
        waiters_.fetch_sub(1, std::memory_order_relaxed);
        // relaxed: as in get(); the dequeue already synchronised with the release that queued s.
        if (s != nullptr && decommitted_.load(std::memory_order_relaxed)) {
            // A real buffer reached a waiter after decommit: put it back so a sentinel meant for
            // us still reaches another waiter, and fail like everyone else.
            release(std::move(s));
            return nullptr;
        }
        return s;
    }

    std::unique_ptr<Sample[]> samples_;
    PayloadBlock payload_;
    moodycamel::BlockingConcurrentQueue<Sample*> free_;
    // Set once by decommit(); read by every get.
    alignas(kCacheLineSize) std::atomic<bool> decommitted_{false};
    // Threads between registering in get_slow() and returning from it; >= the number asleep.
    // Written only on the way to sleep, so kept off the flag's line that every get reads.
    alignas(kCacheLineSize) std::atomic<std::uint32_t> waiters_{0};
    std::atomic<std::uint64_t> waits_{0};  // statistic
};

}  // namespace sluice::bench

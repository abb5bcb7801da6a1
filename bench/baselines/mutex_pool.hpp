// SPDX-License-Identifier: MIT
#pragma once

// MutexPool: the DirectShow allocator (CBaseAllocator in the Windows SDK base classes,
// amfilter.cpp: GetBuffer, ReleaseBuffer, Decommit) in portable C++. This is the design
// SampleAllocator replaces, so it is the 1.0 of every ratio in bench/.
//
//   get      lock; if decommitted fail; pop the free list, or count ourselves waiting and sleep
//   release  lock; push; if anyone waits, wake one
//   decommit lock; clear the committed flag; wake everyone (they see the flag and fail)
//
// Where it differs from the original, it differs in the baseline's favour:
//  - DirectShow's ReleaseBuffer wakes every waiter (ReleaseSemaphore(m_hSem, m_lWaiting)) and
//    they race for the buffer; here a release wakes one, and only when the waiter count says
//    someone sleeps.
//  - The wake happens after the unlock, so the woken thread does not block on the mutex at once.
//  - CMediaSample::Release first drops an interlocked reference count; samples here carry none
//    (SampleAllocator's SampleRef does pay for one).
//
// Threading: every function, any thread; get() locks and may block; release() and decommit()
// lock. Never allocates after construction.

#include "common.hpp"

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string_view>

namespace sluice::bench {

class MutexPool {
public:
    // A sample: the intrusive free-list link beside the payload pointer, one cache line each so
    // neighbouring samples used by different threads never share a line (as SampleHeader).
    struct alignas(kCacheLineSize) Sample {
        Sample* next = nullptr;
        std::byte* data = nullptr;
    };
    using Buffer = Sample*;
    static constexpr std::string_view kName = "mutex";
    static constexpr PoolKind kKind = PoolKind::blocking_pool;

    explicit MutexPool(std::size_t buffers) : samples_(new Sample[buffers]), payload_(buffers) {
        for (std::size_t i = 0; i < buffers; ++i) {
            samples_[i].data = payload_.at(i);
            samples_[i].next = i + 1 < buffers ? &samples_[i + 1] : nullptr;
        }
        free_ = &samples_[0];
    }

    // Waits while the list is empty; nullptr once decommitted. Any thread; locks; may block.
    [[gnu::always_inline]] Buffer get() noexcept {
        std::unique_lock lock(mutex_);
        for (;;) {
            if (!committed_) return nullptr;
            if (Sample* s = free_) {
                free_ = s->next;
                return s;
            }
            ++waiting_;
            ++waits_;
            wake_.wait(lock);
            --waiting_;
        }
    }

    static bool valid(const Buffer& b) noexcept { return b != nullptr; }

    // Any thread; locks; never blocks otherwise.
    [[gnu::always_inline]] void release(Buffer&& s) noexcept {
        std::unique_lock lock(mutex_);
        s->next = free_;
        free_ = s;
        const bool someone_waits = waiting_ != 0;
        lock.unlock();
        if (someone_waits) wake_.notify_one();
    }

    // Gets that found the list empty and slept, so far. Any thread; locks.
    std::uint64_t waits() {
        std::lock_guard lock(mutex_);
        return waits_;
    }

    // Any thread; locks.
    void decommit() noexcept {
        {
            std::lock_guard lock(mutex_);
            committed_ = false;
        }
        wake_.notify_all();
    }

private:
    std::unique_ptr<Sample[]> samples_;
    PayloadBlock payload_;

    // Everything below is guarded by mutex_.
    std::mutex mutex_;
    std::condition_variable wake_;
    Sample* free_ = nullptr;
    std::size_t waiting_ = 0;  // threads asleep (or about to be) in get()
    std::uint64_t waits_ = 0;  // statistic: gets that had to sleep
    bool committed_ = true;
};

}  // namespace sluice::bench

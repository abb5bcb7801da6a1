// SPDX-License-Identifier: MIT
#pragma once

// EventCount: the one way a Sluice thread sleeps until another thread says something changed.
// The allocator's empty pool, the graph clock, the mixer's input slots and the housekeeping
// thread all wait on one.
//
//   const auto ticket = ec.prepare_wait();   // 1. take a ticket
//   if (condition_holds()) return;            // 2. check the condition
//   ec.wait(ticket, deadline_ns, &stop);      // 3. sleep unless a notify came after 1
//
// A notify that happens after the ticket was taken makes wait() return at once, so the change
// that made the condition true can never slip in between steps 2 and 3 unseen (the lost wake-up).
// The waker changes the condition first, then notifies. wait() may also return spuriously:
// callers loop. This is the event count of Reed and Kanodia ("Synchronization with eventcounts
// and sequencers", CACM 22(2), 1979), as Folly's and Eigen's EventCount make it; here on the Linux
// futex, with a sleeper count so that notify makes no system call while nobody sleeps.

#include <atomic>
#include <cstdint>
#include <stop_token>

namespace sluice {

class EventCount {
public:
    // A ticket for wait(). Any thread. Never blocks; no system call.
    std::uint32_t prepare_wait() const noexcept {
        // acquire: pairs with notify's release increment, so a caller that sees a ticket taken
        // after a notify also sees the state change made before that notify.
        return seq_.load(std::memory_order_acquire);
    }

    // Sleeps until a notify after `ticket`, the steady-clock (CLOCK_MONOTONIC) deadline in ns
    // (-1: none) or a stop request on `stop` (when given). May return spuriously.
    // Any thread. Blocks; no allocation (a stop callback is registered on the caller's stack).
    void wait(std::uint32_t ticket, std::int64_t deadline_ns = -1, const std::stop_token* stop = nullptr) noexcept;

    // Wakes one sleeper, or every sleeper. Any thread. Never blocks; a system call only while
    // someone sleeps.
    void notify_one() noexcept { notify(1); }
    void notify_all() noexcept { notify(-1); }

private:
    void notify(int count) noexcept;

    std::atomic<std::uint32_t> seq_{0};       // futex word: moves on every notify
    std::atomic<std::uint32_t> sleepers_{0};  // threads inside wait()
};

}  // namespace sluice

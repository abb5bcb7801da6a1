// SPDX-License-Identifier: MIT
#include <sluice/allocators/event_count.hpp>

#include <cerrno>
#include <climits>
#include <ctime>
#include <optional>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

// The only place in Sluice that talks to the futex. C++20's atomic::wait has no timeout and no
// stop token, hence the system call.
//
// Skipping the wake system call while nobody sleeps is a Dekker pairing:
//
//   notifier                              sleeper
//   1. seq_ += 1          (seq_cst)       a. sleepers_ += 1      (seq_cst)
//   2. read sleepers_     (seq_cst)       b. read seq_           (seq_cst)
//   3. if != 0: futex wake                c. if == ticket: futex wait(seq_, ticket)
//
// In the single total order of 1, 2, a, b: either 2 follows a (the notifier sees the sleeper and
// wakes it; if the sleeper has not reached c yet, seq_ differs from the ticket and the kernel
// returns at once), or b follows 1 (the sleeper sees the new seq_ and does not sleep).

namespace sluice {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "a futex word must be a plain 32-bit integer in memory");

namespace {
struct NotifyAll {
    EventCount* ec;
    void operator()() const noexcept { ec->notify_all(); }
};
}  // namespace

void EventCount::wait(std::uint32_t ticket, std::int64_t deadline_ns, const std::stop_token* stop) noexcept {
    std::optional<std::stop_callback<NotifyAll>> on_stop;
    if (stop != nullptr && stop->stop_possible()) {
        on_stop.emplace(*stop, NotifyAll{this});
        if (stop->stop_requested()) return;
    }
    timespec ts{};
    timespec* timeout = nullptr;
    if (deadline_ns >= 0) {
        ts.tv_sec = deadline_ns / 1'000'000'000;
        ts.tv_nsec = deadline_ns % 1'000'000'000;
        timeout = &ts;
    }
    // seq_cst: (a) of the pairing above.
    sleepers_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst: (b).
    if (seq_.load(std::memory_order_seq_cst) == ticket)
        // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a loop of spurious
        // wake-ups never stretches the timeout.
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAIT_BITSET_PRIVATE, ticket, timeout,
                  nullptr, FUTEX_BITSET_MATCH_ANY);
    // relaxed: only notifiers read it, and a stale higher count costs them one spare wake.
    sleepers_.fetch_sub(1, std::memory_order_relaxed);
}

void EventCount::notify(int count) noexcept {
    // seq_cst: (1) of the pairing; its release half publishes the caller's state change to a
    // sleeper's prepare_wait().
    seq_.fetch_add(1, std::memory_order_seq_cst);
    // seq_cst: (2).
    if (sleepers_.load(std::memory_order_seq_cst) != 0)
        ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&seq_), FUTEX_WAKE_PRIVATE, count < 0 ? INT_MAX : count,
                  nullptr, nullptr, 0);
}

}  // namespace sluice

// SPDX-License-Identifier: MIT
#pragma once

// Thin wrappers over the Linux futex, the blocking primitive of the allocator and the engine clock.
// C++20's atomic::wait has no timeout, hence the system call.

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <ctime>

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace sluice::detail {

static_assert(sizeof(std::atomic<std::uint32_t>) == sizeof(std::uint32_t),
              "a futex word must be a plain 32-bit integer in memory");

// Sleeps while *word == expected, until woken or until deadline_ns (steady clock, i.e.
// CLOCK_MONOTONIC, in ns; -1 for none). May return spuriously; callers re-check their condition.
inline void futex_wait(std::atomic<std::uint32_t>* word, std::uint32_t expected,
                       std::int64_t deadline_ns) noexcept {
    timespec ts{};
    timespec* timeout = nullptr;
    if (deadline_ns >= 0) {
        ts.tv_sec = deadline_ns / 1'000'000'000;
        ts.tv_nsec = deadline_ns % 1'000'000'000;
        timeout = &ts;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline, so a loop of spurious
    // wake-ups never stretches the timeout.
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAIT_BITSET_PRIVATE, expected,
              timeout, nullptr, FUTEX_BITSET_MATCH_ANY);
}

// Wakes up to `count` threads sleeping on `word`. The kernel never reads the word for a wake, so
// this is safe even when the memory was freed right after the caller's last atomic on it (the
// same argument glibc's semaphores rely on).
inline void futex_wake(std::atomic<std::uint32_t>* word, int count) noexcept {
    ::syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(word), FUTEX_WAKE_PRIVATE, count, nullptr,
              nullptr, 0);
}

inline void futex_wake_all(std::atomic<std::uint32_t>* word) noexcept { futex_wake(word, INT_MAX); }

}  // namespace sluice::detail

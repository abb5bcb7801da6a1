// SPDX-License-Identifier: MIT
#pragma once

// Clock: the graph's reference clock, in *running time*: nanoseconds of the steady clock since
// the graph started running, not counting time spent paused. A sample whose start time is t is
// due when running time reaches t.
//
// Presentation waits (wait_until) block the calling streaming thread on an EventCount with an
// absolute deadline, and end early when the graph pauses, flushes or stops (interrupt()) or the caller's
// stop_token fires. They allocate nothing and take no lock, so a clocked render stays
// allocation-free; a stop never waits on a render that is waiting on the clock.
//
// Threading: now() and wait_until() from any thread; start/pause/reset/interrupt from the control
// thread (the Graph).

#include <sluice/allocators/event_count.hpp>

#include <atomic>
#include <cstdint>
#include <stop_token>

namespace sluice::engine {

enum class ClockWait {
    due,          // the deadline has passed: present now
    interrupted,  // the graph paused or flushed: re-check state, then wait again or drop
    stopped,      // the stop_token fired
};

class Clock {
public:
    // Running time now, in ns. While paused it stands still.
    std::int64_t now() const noexcept;
    bool running() const noexcept;

    // Waits until running time reaches `running_ns`. Any thread; never allocates.
    ClockWait wait_until(std::int64_t running_ns, const std::stop_token& stop) noexcept;

    // Control thread.
    void start() noexcept;      // running time resumes where it stood
    void pause() noexcept;      // running time stops; waiters are interrupted
    void reset() noexcept;      // running time back to 0, paused
    void set(std::int64_t running_ns) noexcept;  // running time jumps there (a seek), running or not
    void interrupt() noexcept;  // wakes every waiter with `interrupted`

private:
    static std::int64_t steady_ns() noexcept;

    // Invariant: while running, now() == steady_ns() - base_ns_; while paused, now() == paused_at_.
    std::atomic<std::int64_t> base_ns_{0};
    std::atomic<std::int64_t> paused_at_{0};
    std::atomic<bool> running_{false};
    EventCount changes_;  // notified by every state change
};

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
#include <sluice/engine/clock.hpp>

#include <chrono>

namespace sluice::engine {

std::int64_t Clock::steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::int64_t Clock::now() const noexcept {
    // acquire: pairs with start()/pause(), whose release stores come after base/paused_at.
    if (running_.load(std::memory_order_acquire)) return steady_ns() - base_ns_.load(std::memory_order_relaxed);
    return paused_at_.load(std::memory_order_relaxed);
}

bool Clock::running() const noexcept {
    // acquire: as in now().
    return running_.load(std::memory_order_acquire);
}

void Clock::start() noexcept {
    // relaxed loads/stores of base and paused_at: published by the release store of running_.
    base_ns_.store(steady_ns() - paused_at_.load(std::memory_order_relaxed), std::memory_order_relaxed);
    running_.store(true, std::memory_order_release);
    interrupt();  // waiters recompute their deadline against the new base
}

void Clock::pause() noexcept {
    paused_at_.store(now(), std::memory_order_relaxed);
    // release: publishes paused_at_ to now().
    running_.store(false, std::memory_order_release);
    interrupt();
}

void Clock::reset() noexcept {
    running_.store(false, std::memory_order_release);  // release: as in pause()
    paused_at_.store(0, std::memory_order_relaxed);
    interrupt();
}

void Clock::set(std::int64_t running_ns) noexcept {
    // relaxed stores: published by the release store of running_, as in start() and pause().
    const bool running = running_.load(std::memory_order_relaxed);  // relaxed: only the control thread writes it
    paused_at_.store(running_ns, std::memory_order_relaxed);
    base_ns_.store(steady_ns() - running_ns, std::memory_order_relaxed);
    running_.store(running, std::memory_order_release);
    interrupt();
}

void Clock::interrupt() noexcept {
    // The notify's release: a waiter that sees the change also sees the state change before it.
    changes_.notify_all();
}

ClockWait Clock::wait_until(std::int64_t running_ns, const std::stop_token& stop) noexcept {
    // Taken before the checks, so a change after them makes the wait return at once.
    const std::uint32_t ticket = changes_.prepare_wait();
    for (;;) {
        if (stop.stop_requested()) return ClockWait::stopped;
        if (!running() || changes_.prepare_wait() != ticket) return ClockWait::interrupted;
        const std::int64_t base = base_ns_.load(std::memory_order_relaxed);  // relaxed: see now()
        const std::int64_t deadline = base + running_ns;
        if (steady_ns() >= deadline) return ClockWait::due;
        changes_.wait(ticket, deadline, &stop);
    }
}

}  // namespace sluice::engine

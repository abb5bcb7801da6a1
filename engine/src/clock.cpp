// SPDX-License-Identifier: MIT
#include <sluice/engine/clock.hpp>

#include <algorithm>
#include <chrono>

namespace sluice::engine {

// ---- DeviceTime

void DeviceTime::start(int rate) noexcept {
    // relaxed: the device thread does not run yet; its start publishes these.
    rate_.store(rate > 0 ? rate : 48000, std::memory_order_relaxed);
    counting_.store(false, std::memory_order_relaxed);
    latest_ns_.store(0, std::memory_order_relaxed);
}

// A sequence lock written by one thread: the count goes odd, the values change, the count goes
// even. A reader that saw the same even count before and after its reads has a consistent set.
void DeviceTime::publish(std::uint64_t frames, std::int64_t steady_ns) noexcept {
    const std::uint32_t s = seq_.load(std::memory_order_relaxed);  // relaxed: this thread is its only writer
    seq_.store(s + 1, std::memory_order_relaxed);  // relaxed: ordered before the values by the fence
    // release fence: a reader that sees any value below also sees the odd count above.
    std::atomic_thread_fence(std::memory_order_release);
    // relaxed: the values, all published by the release store of the even count below.
    if (!counting_.load(std::memory_order_relaxed)) {
        first_frames_.store(frames, std::memory_order_relaxed);
        first_ns_.store(steady_ns, std::memory_order_relaxed);
        counting_.store(true, std::memory_order_relaxed);
    }
    frames_.store(frames, std::memory_order_relaxed);
    at_ns_.store(steady_ns, std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);  // release: publishes the values
}

bool DeviceTime::read(Counts& c) const noexcept {
    for (;;) {
        const std::uint32_t before = seq_.load(std::memory_order_acquire);  // acquire: pairs with publish's release
        if (before & 1) continue;  // a publish is under way: a few stores long
        // relaxed: bracketed by the two loads of the count.
        const bool counting = counting_.load(std::memory_order_relaxed);
        c = {first_frames_.load(std::memory_order_relaxed), frames_.load(std::memory_order_relaxed),
             first_ns_.load(std::memory_order_relaxed), at_ns_.load(std::memory_order_relaxed)};
        // acquire fence: the loads above happen before the second load of the count.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq_.load(std::memory_order_relaxed) == before) return counting;  // relaxed: ordered by the fence
    }
}

std::int64_t DeviceTime::now_ns() const noexcept {
    const auto steady = std::chrono::steady_clock::now().time_since_epoch();
    const std::int64_t steady_now = std::chrono::duration_cast<std::chrono::nanoseconds>(steady).count();
    Counts c{};
    if (!read(c)) return steady_now;
    // Double precision: exact to the nanosecond for 104 days of device time.
    const double device_elapsed = double(c.frames - c.first_frames) * 1e9 / double(rate_.load(std::memory_order_relaxed));  // relaxed: see start()
    const double steady_elapsed = double(c.at_ns - c.first_ns);
    // Between counts, move at the device's measured pace (1 until there is a baseline), for at
    // most 100 ms: a device that stops counting stops the clock.
    const double pace = steady_elapsed > 1e8 ? device_elapsed / steady_elapsed : 1.0;
    const double since = double(std::clamp<std::int64_t>(steady_now - c.at_ns, 0, 100'000'000));
    std::int64_t t = c.first_ns + std::int64_t(device_elapsed + since * pace);
    // Never backwards (a count that lands a little before the interpolation): the latest answer
    // stands until the device's time passes it. relaxed: a lone word; the CAS keeps it a maximum.
    std::int64_t latest = latest_ns_.load(std::memory_order_relaxed);
    while (t > latest && !latest_ns_.compare_exchange_weak(latest, t, std::memory_order_relaxed)) {
    }
    return std::max(t, latest);
}

double DeviceTime::drift_ppm() const noexcept {
    Counts c{};
    if (!read(c) || c.at_ns - c.first_ns < 1'000'000'000) return 0;
    const double device_elapsed = double(c.frames - c.first_frames) * 1e9 / double(rate_.load(std::memory_order_relaxed));  // relaxed: see start()
    return (device_elapsed / double(c.at_ns - c.first_ns) - 1.0) * 1e6;
}

// ---- Clock

std::int64_t Clock::steady_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

std::int64_t Clock::base_time_ns() const noexcept {
    // acquire: pairs with follow()'s release; the device is set up before it is followed.
    const DeviceTime* d = device_.load(std::memory_order_acquire);
    return d ? d->now_ns() : steady_ns();
}

void Clock::follow(const DeviceTime* device) noexcept {
    device_.store(device, std::memory_order_release);  // release: see base_time_ns()
}

const DeviceTime* Clock::device() const noexcept { return device_.load(std::memory_order_acquire); }  // acquire: as above

std::int64_t Clock::now() const noexcept {
    // acquire: pairs with start()/pause(), whose release stores come after base/paused_at.
    if (running_.load(std::memory_order_acquire)) return base_time_ns() - base_ns_.load(std::memory_order_relaxed);
    return paused_at_.load(std::memory_order_relaxed);
}

bool Clock::running() const noexcept {
    // acquire: as in now().
    return running_.load(std::memory_order_acquire);
}

void Clock::start() noexcept {
    // relaxed loads/stores of base and paused_at: published by the release store of running_.
    base_ns_.store(base_time_ns() - paused_at_.load(std::memory_order_relaxed), std::memory_order_relaxed);
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
    base_ns_.store(base_time_ns() - running_ns, std::memory_order_relaxed);
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
        const std::int64_t steady = steady_ns();
        // acquire: as in base_time_ns().
        const DeviceTime* d = device_.load(std::memory_order_acquire);
        const std::int64_t time = d ? d->now_ns() : steady;
        if (time >= deadline) return ClockWait::due;
        // A device's time runs within a few ppm of the steady clock's: sleep the distance on the
        // steady clock, then look at the device's time again (a slow device: a short second wait).
        changes_.wait(ticket, steady + (deadline - time), &stop);
    }
}

}  // namespace sluice::engine

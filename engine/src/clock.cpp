// SPDX-License-Identifier: MIT
#include <sluice/engine/clock.hpp>
#include <sluice/engine/ptp_clock.hpp>

#include <algorithm>
#include <chrono>
#include <climits>
#include <ctime>

namespace sluice::engine {

// ---- DeviceTime

void DeviceTime::start(int rate) noexcept {
    // relaxed: the device thread does not run yet (its start publishes these), and no reader
    // runs either: the graph's clock is reset while its renders start, so now() never asks.
    rate_.store(rate > 0 ? rate : 48000, std::memory_order_relaxed);
    counting_.store(false, std::memory_order_relaxed);
    released_.store(false, std::memory_order_relaxed);
    plays_on_.store(false, std::memory_order_relaxed);
    restarting_.store(false, std::memory_order_relaxed);
    latest_ns_.store(0, std::memory_order_relaxed);
}

void DeviceTime::plays_between_counts() noexcept {
    plays_on_.store(true, std::memory_order_relaxed);  // relaxed: a lone flag, as released_
}

void DeviceTime::restart() noexcept {
    // Where the time stands now (this thread is the only writer: its own read is consistent).
    const std::int64_t steady = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
    const std::int64_t from = now_ns();
    // Under the sequence lock, as publish(): a reader sees counts or none, never half of each.
    const std::uint32_t s = seq_.load(std::memory_order_relaxed);  // relaxed: this thread is its only writer
    seq_.store(s + 1, std::memory_order_relaxed);  // relaxed: ordered before the flag by the fence
    std::atomic_thread_fence(std::memory_order_release);  // as in publish()
    // The counts stay for drift_ppm(); now_ns() no longer follows them. relaxed: published by
    // the even count.
    restart_from_ns_.store(from, std::memory_order_relaxed);
    restart_steady_ns_.store(steady, std::memory_order_relaxed);
    restarting_.store(true, std::memory_order_relaxed);
    seq_.store(s + 2, std::memory_order_release);  // release: pairs with read()'s acquire
}

void DeviceTime::release() noexcept {
    released_.store(true, std::memory_order_relaxed);  // relaxed: a lone flag; now_ns() sees it soon enough
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
        base_frames_.store(frames, std::memory_order_relaxed);
        base_ns_.store(steady_ns, std::memory_order_relaxed);
    }
    if (!counting_.load(std::memory_order_relaxed) || restarting_.load(std::memory_order_relaxed)) {
        // After a restart the time goes on from where it stood, not from the steady clock.
        std::int64_t first_ns = steady_ns;
        if (restarting_.load(std::memory_order_relaxed))
            first_ns = restart_from_ns_.load(std::memory_order_relaxed) +
                       std::max<std::int64_t>(steady_ns - restart_steady_ns_.load(std::memory_order_relaxed), 0);
        restarting_.store(false, std::memory_order_relaxed);
        first_frames_.store(frames, std::memory_order_relaxed);
        first_ns_.store(first_ns, std::memory_order_relaxed);
        window_frames_.store(frames, std::memory_order_relaxed);
        window_ns_.store(steady_ns, std::memory_order_relaxed);
        next_window_frames_.store(frames, std::memory_order_relaxed);
        next_window_ns_.store(steady_ns, std::memory_order_relaxed);
        interval_ns_.store(0, std::memory_order_relaxed);
        counting_.store(true, std::memory_order_relaxed);
    } else {
        interval_ns_.store(steady_ns - writer_at_ns_, std::memory_order_relaxed);
        // Every second the newest window start becomes the baseline, so the pace always spans
        // the last one to two seconds: a freewheeling stretch or a stall is forgotten soon.
        if (steady_ns - next_window_ns_.load(std::memory_order_relaxed) >= 1'000'000'000) {
            window_frames_.store(next_window_frames_.load(std::memory_order_relaxed), std::memory_order_relaxed);
            window_ns_.store(next_window_ns_.load(std::memory_order_relaxed), std::memory_order_relaxed);
            next_window_frames_.store(frames, std::memory_order_relaxed);
            next_window_ns_.store(steady_ns, std::memory_order_relaxed);
        }
    }
    frames_.store(frames, std::memory_order_relaxed);
    at_ns_.store(steady_ns, std::memory_order_relaxed);
    writer_frames_ = frames;
    writer_at_ns_ = steady_ns;
    seq_.store(s + 2, std::memory_order_release);  // release: publishes the values
}

DeviceTime::Read DeviceTime::read(Counts& c) const noexcept {
    // Bounded: a streaming thread at a higher real-time priority than the device's thread, on
    // the same core, would otherwise spin while the writer it preempted never runs again.
    for (int tries = 0; tries < 1000; ++tries) {
        const std::uint32_t before = seq_.load(std::memory_order_acquire);  // acquire: pairs with publish's release
        if (before & 1) {  // a publish is under way: a few stores long
            __builtin_ia32_pause();
            continue;
        }
        // relaxed: bracketed by the two loads of the count.
        const bool counting = counting_.load(std::memory_order_relaxed);
        c = {first_frames_.load(std::memory_order_relaxed), frames_.load(std::memory_order_relaxed),
             window_frames_.load(std::memory_order_relaxed), first_ns_.load(std::memory_order_relaxed),
             at_ns_.load(std::memory_order_relaxed),        window_ns_.load(std::memory_order_relaxed),
             interval_ns_.load(std::memory_order_relaxed), restarting_.load(std::memory_order_relaxed),
             base_frames_.load(std::memory_order_relaxed),  base_ns_.load(std::memory_order_relaxed),
             restart_from_ns_.load(std::memory_order_relaxed), restart_steady_ns_.load(std::memory_order_relaxed)};
        // acquire fence: the loads above happen before the second load of the count.
        std::atomic_thread_fence(std::memory_order_acquire);
        if (seq_.load(std::memory_order_relaxed) == before) return counting ? Read::ok : Read::none;  // relaxed: ordered by the fence
    }
    return Read::busy;
}

std::int64_t DeviceTime::now_ns() const noexcept {
    const auto steady = std::chrono::steady_clock::now().time_since_epoch();
    const std::int64_t steady_now = std::chrono::duration_cast<std::chrono::nanoseconds>(steady).count();
    Counts c{};
    switch (read(c)) {
        case Read::none: return steady_now;  // before the first count
        case Read::busy: return latest_ns_.load(std::memory_order_relaxed);  // relaxed: a lone word; stand still
        case Read::ok: break;
    }
    if (c.restarting) return answer(continued(c, steady_now));  // since a restart
    // Double precision: exact to the nanosecond for 104 days of device time.
    const double rate = double(rate_.load(std::memory_order_relaxed));  // relaxed: see start()
    const double device_elapsed = double(c.frames - c.first_frames) * 1e9 / rate;
    // relaxed: a lone flag (see release()).
    const bool released = released_.load(std::memory_order_relaxed);
    const double pace = released ? 1.0 : pace_of(c, rate);
    // Between counts, move at that pace for at most 100 ms or two intervals between counts,
    // whichever is longer: a device that stops counting stops the clock (unless released).
    const std::int64_t hold = released ? INT64_MAX / 2 : std::max<std::int64_t>(100'000'000, 2 * c.interval_ns);
    const std::int64_t elapsed = std::max<std::int64_t>(steady_now - c.at_ns, 0);
    const double since = double(std::min(elapsed, hold));
    // A device that plays between counts (see plays_between_counts()) runs on past the hold at
    // the steady clock's pace, not at a pace measured before whatever kept its counter away.
    // relaxed: a lone flag.
    const double beyond = plays_on_.load(std::memory_order_relaxed) ? double(elapsed - std::min(elapsed, hold)) : 0.0;
    const std::int64_t t = c.first_ns + std::int64_t(device_elapsed + since * pace + beyond);
    return answer(t);
}

std::int64_t DeviceTime::answer(std::int64_t t) const noexcept {
    // Never backwards (a count that lands a little before the interpolation): the latest answer
    // stands until the device's time passes it. relaxed: a lone word; the CAS keeps it a maximum.
    std::int64_t latest = latest_ns_.load(std::memory_order_relaxed);
    while (t > latest && !latest_ns_.compare_exchange_weak(latest, t, std::memory_order_relaxed)) {
    }
    return std::max(t, latest);
}

// The pace of the last one to two seconds (1 until there is such a baseline).
double DeviceTime::pace_of(const Counts& c, double rate) noexcept {
    const double window_steady = double(c.at_ns - c.window_ns);
    return window_steady > 1e8 ? double(c.frames - c.window_frames) * 1e9 / rate / window_steady : 1.0;
}

double DeviceTime::pace() const noexcept {
    Counts c{};
    if (read(c) != Read::ok || c.restarting) return 1.0;  // since a restart: the steady clock's pace
    // Past the hold, a device that plays between counts moves at the steady clock's pace too
    // (see now_ns()). relaxed: a lone flag.
    if (plays_on_.load(std::memory_order_relaxed)) {
        const std::int64_t steady = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
        if (steady - c.at_ns > std::max<std::int64_t>(100'000'000, 2 * c.interval_ns)) return 1.0;
    }
    return pace_of(c, double(rate_.load(std::memory_order_relaxed)));  // relaxed: see start()
}

double DeviceTime::drift_ppm() const noexcept {
    Counts c{};
    // From the run's first count, across restarts (a stop in between counts as the device
    // running slow, as before there were restarts).
    if (read(c) != Read::ok || c.at_ns - c.base_ns < 1'000'000'000) return 0;
    const double device_elapsed = double(c.frames - c.base_frames) * 1e9 / double(rate_.load(std::memory_order_relaxed));  // relaxed: see start()
    return (device_elapsed / double(c.at_ns - c.base_ns) - 1.0) * 1e6;
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

std::int64_t Clock::tai_ns() const noexcept {
    // acquire: pairs with share()'s release; the PTP clock is open before it is shared.
    if (const PtpClock* ptp = ptp_.load(std::memory_order_acquire)) return ptp->tai_ns();
    timespec t{};
    ::clock_gettime(CLOCK_TAI, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

void Clock::share(const PtpClock* ptp) noexcept {
    ptp_.store(ptp, std::memory_order_release);  // release: see tai_ns()
}

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

ClockWait Clock::wait_until_running(std::int64_t timeout_ns, const std::stop_token& stop) noexcept {
    // Taken before the checks, as in wait_until(): a start after them ends the wait at once.
    const std::uint32_t ticket = changes_.prepare_wait();
    if (stop.stop_requested()) return ClockWait::stopped;
    if (running()) return ClockWait::due;
    changes_.wait(ticket, steady_ns() + timeout_ns, &stop);
    if (stop.stop_requested()) return ClockWait::stopped;
    return running() ? ClockWait::due : ClockWait::interrupted;
}

ClockWait Clock::wait_until(std::int64_t running_ns, const std::stop_token& stop) noexcept {
    // Taken before the checks, so a change after them makes the wait return at once.
    const std::uint32_t ticket = changes_.prepare_wait();
    std::int64_t last_time = INT64_MIN;  // the device's time at the last look
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
        std::int64_t distance = deadline - time;
        if (d != nullptr) {
            // The distance in device time, slept on the steady clock at the device's recent pace,
            // 10 ms at a time at most (its pace may change: a JACK server entering freewheel), and
            // a millisecond at least when its time stood still since the last look (a stalled
            // device), so that a wait never spins.
            const double pace = std::max(d->pace(), 1e-3);
            distance = std::min<std::int64_t>(std::int64_t(double(distance) / pace) + 1, 10'000'000);
            if (time == last_time) distance = std::max<std::int64_t>(distance, 1'000'000);
            last_time = time;
        }
        changes_.wait(ticket, steady + distance, &stop);
    }
}

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
// DeviceTime and a Clock that follows it, with counts published by a thread of the test standing
// in for a device's callback (the JACK server itself is in tests/nodes/test_device_clock.cpp).
#include <doctest/doctest.h>
#include <sluice/engine/clock.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <thread>

namespace {

using sluice::engine::Clock;
using sluice::engine::ClockWait;
using sluice::engine::DeviceTime;

std::int64_t steady_now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

TEST_CASE("Clock.DeviceTime.PaceDriftAndStall") {
    DeviceTime d;
    d.start(48000);
    // Before any count: the steady clock.
    const std::int64_t before = steady_now();
    const std::int64_t t = d.now_ns();
    CHECK(t >= before);
    CHECK(t - before < 50'000'000);
    CHECK(d.drift_ppm() == 0);

    // Two seconds of counts, ending now, from a device 1.5 times as fast as the steady clock:
    // 720 frames every 10 ms at a nominal 48 kHz.
    const std::int64_t end = steady_now();
    const std::int64_t first = end - 2'000'000'000;
    for (int i = 0; i <= 200; ++i) d.publish(std::uint64_t(i) * 720, first + std::int64_t(i) * 10'000'000);
    CHECK(d.drift_ppm() == doctest::Approx(500000).epsilon(1e-6));
    // Its time: the first count's instant plus 3 s of device time, and a little more since.
    const std::int64_t now = d.now_ns();
    CHECK(now - first >= 3'000'000'000);
    CHECK(now - first < 3'100'000'000);

    // Between counts it moves at the device's pace; past the hold (100 ms here) it stands still.
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const std::int64_t held = d.now_ns();
    CHECK(held - first == doctest::Approx(3'000'000'000 + 150'000'000).epsilon(0.01));  // 100 ms at 1.5x
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(d.now_ns() == held);

    // The device counts again, but no further than before (a stall): its time is back at 3 s,
    // behind what was answered, which stands.
    d.publish(200 * 720, steady_now());
    CHECK(d.now_ns() == held);
}

// A clock following a device four times as fast as the steady clock: 400 ms of running time
// come in about 100 ms. (Loose bounds: only "far sooner than the steady clock's 400 ms" counts.)
TEST_CASE("Clock.DeviceTime.ClockFollowsTheDevice" * doctest::timeout(30)) {
    DeviceTime d;
    d.start(48000);
    std::atomic<bool> done{false};
    std::thread device([&] {
        std::uint64_t frames = 0;
        while (!done.load(std::memory_order_relaxed)) {  // relaxed: a stop flag
            d.publish(frames, steady_now());
            frames += 4 * 48;  // 4 ms of device time per 1 ms
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
    });
    Clock clock;
    clock.follow(&d);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));  // a baseline for the pace
    clock.start();
    const auto t0 = std::chrono::steady_clock::now();
    std::stop_source stop;
    CHECK(clock.wait_until(400'000'000, stop.get_token()) == ClockWait::due);
    const auto waited = std::chrono::steady_clock::now() - t0;
    CHECK(clock.now() >= 400'000'000);
    CHECK(waited < std::chrono::milliseconds(300));
    MESSAGE("400 ms of a 4x device's time waited for in " << std::chrono::duration<double, std::milli>(waited).count() << " ms");
    CHECK(clock.device() == &d);
    done.store(true, std::memory_order_relaxed);  // relaxed: as above
    device.join();
}

// A device that counts no more (its stream ended) releases its time: instead of standing still
// after the hold, it runs on at the steady clock's pace from where it stood, so that the graph's
// other clocked renders are not held for ever.
TEST_CASE("Clock.DeviceTime.ReleasedRunsOnAtTheSteadyPace" * doctest::timeout(30)) {
    DeviceTime d;
    d.start(48000);
    const std::int64_t first = steady_now() - 1'000'000'000;
    for (int i = 0; i <= 100; ++i) d.publish(std::uint64_t(i) * 480, first + std::int64_t(i) * 10'000'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::int64_t held = d.now_ns();  // stood still after 100 ms without a count
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(d.now_ns() == held);
    d.release();
    const std::int64_t a = d.now_ns(), sa = steady_now();
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const std::int64_t b = d.now_ns(), sb = steady_now();
    CHECK(b - a == doctest::Approx(double(sb - sa)).epsilon(0.05));
    CHECK(a >= held);  // never backwards
    // A new run counts again, and holds again.
    d.start(48000);
    d.publish(0, steady_now());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const std::int64_t c = d.now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    CHECK(d.now_ns() == c);
}

// A device that plays between counts (alsasink: counted by the streaming thread that writes to
// it, which may wait elsewhere) keeps its time moving past the 100 ms hold, at the steady clock's
// pace; and after a restart (an underrun: its counts resume from where it stopped, behind) its
// time goes on from where it stood instead of standing still until the counts catch up.
TEST_CASE("Clock.DeviceTime.PlaysBetweenCountsAndRestarts" * doctest::timeout(30)) {
    sluice::engine::DeviceTime d;
    d.start(48000);
    d.plays_between_counts();
    const std::int64_t end = steady_now();
    const std::int64_t first = end - 2'000'000'000;
    // Two seconds at the steady clock's pace: 480 frames every 10 ms.
    for (int i = 0; i <= 200; ++i) d.publish(std::uint64_t(i) * 480, first + std::int64_t(i) * 10'000'000);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    const std::int64_t moving = d.now_ns();
    CHECK(moving - first >= std::int64_t{2'290'000'000});  // on past the hold (it stood at 2.1 s)
    d.restart();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::int64_t restarted = d.now_ns();
    CHECK(restarted - moving >= 45'000'000);  // the steady clock's pace, from where it stood
    // The device plays again, its count where it stopped: a first count, no standing still.
    d.publish(200 * 480, steady_now());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    const std::int64_t later = d.now_ns();
    CHECK(later - restarted >= 45'000'000);
    d.publish(200 * 480 + 2400, steady_now());  // 50 ms more played
    CHECK(d.now_ns() - restarted >= 45'000'000);  // without restart(): still where it stood
    // A restart goes on from where the time stood, even where the device ran behind the steady
    // clock (here at half its pace: a second behind after two), not from the steady clock.
    sluice::engine::DeviceTime slow;
    slow.start(48000);
    slow.plays_between_counts();
    const std::int64_t slow_end = steady_now();
    for (int i = 0; i <= 200; ++i) slow.publish(std::uint64_t(i) * 240, slow_end - 2'000'000'000 + std::int64_t(i) * 10'000'000);
    slow.restart();
    const std::int64_t stood = slow.now_ns() - (slow_end - 2'000'000'000);
    const std::int64_t since_counts = steady_now() - slow_end;  // however long this box took meanwhile
    CHECK(stood >= 1'000'000'000);
    CHECK(stood - since_counts < 1'500'000'000);  // jumping to the steady clock would read 2 s and more
    // start() forgets it: past the hold, the time stands still again.
    sluice::engine::DeviceTime e;
    e.start(48000);
    e.plays_between_counts();
    e.start(48000);
    e.publish(0, steady_now());
    std::this_thread::sleep_for(std::chrono::milliseconds(250));
    const std::int64_t still = e.now_ns();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    CHECK(e.now_ns() == still);
}

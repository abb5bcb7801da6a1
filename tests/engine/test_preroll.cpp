// SPDX-License-Identifier: MIT
// Preroll: in a graph whose sources are all files (seekable), run() and each seek hold the clock
// until every streaming thread that feeds a clocked render has brought its first sample there,
// so that the first samples are on time instead of late by the sources' start (a decoder's first
// pictures). A live source's graph starts its clock at once, as before.
//
// What the renders see is checked, not how long anything took: when a render's first sample
// (after the start, or after a seek) arrives, the clock does not run yet and stands where the
// playback starts. Before preroll the clock ran from run() on, and stood 30-200 ms further.
#include "../support.hpp"
#include "test_nodes.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <thread>

using namespace std::chrono_literals;
using namespace test;
using test::eventually;

namespace {

// A source slow to bring its first sample (a decoder starting up), at run() and after a seek.
class SlowStartSource : public CountingSource {
public:
    SlowStartSource(std::string name, std::chrono::milliseconds delay, bool seekable)
        : CountingSource(std::move(name)), delay_(delay) {
        can_seek = seekable;
    }

protected:
    Status start() override {
        slow_ = true;
        return CountingSource::start();
    }
    Status seek(std::int64_t ns) override {
        slow_ = true;
        return CountingSource::seek(ns);
    }
    Flow produce() override {
        if (slow_) {
            slow_ = false;
            std::this_thread::sleep_for(delay_);
        }
        return CountingSource::produce();
    }

private:
    std::chrono::milliseconds delay_;
    bool slow_ = true;  // this source's thread only (start and seek run while it is parked)
};

// A clocked render that notes, when its first sample arrives (after a start or a flush), whether
// the clock ran and where it stood, and when that sample was presented.
class ArrivalRender : public KeepRender {
public:
    explicit ArrivalRender(std::string name) : KeepRender(std::move(name)) { set_clocked(true); }
    std::atomic<bool> arrived{false};
    std::atomic<bool> clock_ran{false};
    std::atomic<std::int64_t> clock_at{-1}, sample_at{-1};
    std::atomic<std::int64_t> presented_steady_ns{0};
    // The first sample presented after the last flush (-1: none yet).
    std::atomic<std::int64_t> first_presented_at{-1};

protected:
    Status start() override {
        arrived = false;
        return KeepRender::start();
    }
    void flush() override {
        arrived = false;
        first_presented_at = -1;
        KeepRender::flush();
    }
    Flow process(std::size_t input, SampleRef&& s) override {
        const bool first = !arrived.load();
        const std::int64_t start = s.start_time();
        if (first) {
            clock_ran = clock().running();
            clock_at = clock().now();
            sample_at = s.start_time();
        }
        Flow f = KeepRender::process(input, std::move(s));
        if (f == Flow::ok && first_presented_at.load() < 0) first_presented_at = start;
        if (first) {
            presented_steady_ns = std::chrono::steady_clock::now().time_since_epoch().count();
            arrived = true;
        }
        return f;
    }
};

}  // namespace

TEST_CASE("Graph.Preroll.TheClockStartsWhenEveryRenderHasItsFirstSample" * doctest::timeout(30)) {
    Graph g;
    auto& quick = g.add<SlowStartSource>("quick", 30ms, true);
    auto& slow = g.add<SlowStartSource>("slow", 200ms, true);
    auto& a = g.add<ArrivalRender>("a");
    auto& b = g.add<ArrivalRender>("b");
    REQUIRE(g.connect(quick, a));
    REQUIRE(g.connect(slow, b));
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return a.arrived.load() && b.arrived.load() && a.received() > 5 && b.received() > 5; }));
    // Both first samples came with the clock standing at 0: the quicker one waited for the other.
    CHECK_FALSE(a.clock_ran.load());
    CHECK_FALSE(b.clock_ran.load());
    CHECK(a.clock_at.load() == 0);
    CHECK(b.clock_at.load() == 0);
    CHECK(a.sample_at.load() == 0);
    // ... and both were presented once the slower one had its sample, together.
    CHECK(a.presented_steady_ns.load() >= b.presented_steady_ns.load() - 50'000'000);
    CHECK(g.clock().running());
    REQUIRE(g.stop());
}

TEST_CASE("Graph.Preroll.ALiveSourceStartsTheClockAtOnce" * doctest::timeout(30)) {
    Graph g;
    auto& file = g.add<SlowStartSource>("file", 10ms, true);
    auto& live = g.add<SlowStartSource>("live", 100ms, false);  // cannot seek: live
    auto& a = g.add<ArrivalRender>("a");
    auto& b = g.add<ArrivalRender>("b");
    REQUIRE(g.connect(file, a));
    REQUIRE(g.connect(live, b));
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return a.arrived.load() && b.arrived.load(); }));
    CHECK(a.clock_ran.load());
    CHECK(b.clock_ran.load());
    CHECK(b.clock_at.load() > 0);  // the live source's first sample is as late as it is
    REQUIRE(g.stop());
}

TEST_CASE("Graph.Preroll.ASeekHoldsTheClockUntilTheNewPositionArrives" * doctest::timeout(30)) {
    Graph g;
    auto& src = g.add<SlowStartSource>("src", 100ms, true);
    auto& out = g.add<ArrivalRender>("out");
    REQUIRE(g.connect(src, out));
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return out.received() > 5; }));
    const std::int64_t period = 64 * 1'000'000'000LL / 48000;  // CountingSource's sample
    const std::int64_t to = 1500 * period;                     // 2 s, on a sample's start
    REQUIRE(g.seek(to));
    REQUIRE(eventually([&] { return out.arrived.load(); }));
    CHECK(out.sample_at.load() == to);
    CHECK_FALSE(out.clock_ran.load());
    CHECK(out.clock_at.load() == to);  // the clock stood at the new position, not 100 ms past it
    REQUIRE(eventually([&] { return g.clock().running() && g.clock().now() > to; }));
    REQUIRE(g.stop());
}

// One thread feeding two clocked renders brings its first sample to one of them and waits there
// with it: the preroll counts the thread once and does not wait its bound (1 s) for the other.
TEST_CASE("Graph.Preroll.OneThreadForTwoRendersIsCountedOnce" * doctest::timeout(30)) {
    Graph g;
    auto& src = g.add<SlowStartSource>("src", 10ms, true);
    auto& tee = g.add<Tee>("tee", 2);
    auto& a = g.add<ArrivalRender>("a");
    auto& b = g.add<ArrivalRender>("b");
    REQUIRE(g.connect(src, tee));
    REQUIRE(g.connect(tee, a));
    REQUIRE(g.connect(tee, b));
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return a.arrived.load() && b.arrived.load(); }));
    CHECK_FALSE(a.clock_ran.load());  // the first render held the sample for the start
    CHECK(b.clock_ran.load());        // the second got it once the clock ran
    const auto held = std::chrono::nanoseconds(a.presented_steady_ns.load()) - t0.time_since_epoch();
    CAPTURE(held.count());
    CHECK(held < 900ms);  // a few ms; the bound would have made it 1 s
    REQUIRE(g.stop());
}

// A pause while prerolling, then run: the clock starts at once where it stood (the preroll is
// over), and the graph stops as usual.
TEST_CASE("Graph.Preroll.PauseWhilePrerollingThenRun" * doctest::timeout(30)) {
    Graph g;
    auto& src = g.add<SlowStartSource>("src", 10ms, true);
    auto& late = g.add<SlowStartSource>("late", 1500ms, true);  // its first sample takes longer than the bound
    auto& a = g.add<ArrivalRender>("a");
    auto& b = g.add<ArrivalRender>("b");
    REQUIRE(g.connect(src, a));
    REQUIRE(g.connect(late, b));
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return a.sample_at.load() == 0; }));  // held for the start
    CHECK_FALSE(a.clock_ran.load());
    REQUIRE(g.pause());
    REQUIRE(g.run());
    CHECK(g.clock().running());
    REQUIRE(eventually([&] { return a.received() > 5; }));
    REQUIRE(g.stop());
    CHECK_FALSE(g.clock().running());
}

// A seek while a render holds its first sample for the preroll: that sample is dropped with the
// flush, never presented after the seek (where a backward seek would wait its whole distance),
// and the preroll starts over at the new position.
TEST_CASE("Graph.Preroll.ASeekWhilePrerollingDropsTheHeldSample" * doctest::timeout(30)) {
    Graph g;
    auto& src = g.add<SlowStartSource>("src", 10ms, true);
    auto& other = g.add<SlowStartSource>("other", 400ms, true);  // keeps the preroll waiting
    auto& a = g.add<ArrivalRender>("a");
    auto& b = g.add<ArrivalRender>("b");
    REQUIRE(g.connect(src, a));
    REQUIRE(g.connect(other, b));
    REQUIRE(g.run());
    REQUIRE(eventually([&] { return a.sample_at.load() == 0; }));  // a holds its first sample
    CHECK_FALSE(a.clock_ran.load());
    const std::int64_t period = 64 * 1'000'000'000LL / 48000;
    const std::int64_t to = 750 * period;  // 1 s
    REQUIRE(g.seek(to));
    REQUIRE(eventually([&] { return a.first_presented_at.load() >= 0 && b.first_presented_at.load() >= 0; }));
    CHECK(a.first_presented_at.load() == to);  // not the sample at 0 held before the seek
    CHECK(b.first_presented_at.load() == to);
    CHECK_FALSE(a.clock_ran.load());  // after the seek, a held its new first sample too
    CHECK(a.clock_at.load() == to);
    REQUIRE(g.stop());
}

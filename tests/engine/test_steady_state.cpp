// SPDX-License-Identifier: MIT
// The steady-state push path (get a buffer, fill, push through a transform, render, release)
// allocates nothing: counted with a replaced operator new in this test binary.
#include "../counting_new.hpp"
#include "test_nodes.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>
#include <vector>


using namespace test;

namespace {

// The renders of the live cases: after each sample, the allocations the thread that delivered it
// (a source's streaming thread, which also runs every node in between) has made so far.
class ProbeRender : public Node {
public:
    explicit ProbeRender(std::string name) : Node(std::move(name), Kind::render) { add_input("sink", {MediaFormat::audio()}); }
    std::atomic<std::uint64_t> received{0};

protected:
    // Keeps `allocations`, the calling thread's count; `received` then publishes it.
    virtual void record(std::size_t allocations) = 0;

private:
    Flow process(std::size_t, SampleRef&&) final {
        record(test::t_news);
        received.fetch_add(1, std::memory_order_release);  // release: publishes what record() stored
        return Flow::ok;
    }
};

// A render fed by one thread.
class AllocationProbe : public ProbeRender {
public:
    using ProbeRender::ProbeRender;
    std::atomic<std::size_t> thread_allocations{0};

protected:
    void record(std::size_t allocations) override {
        thread_allocations.store(allocations, std::memory_order_relaxed);  // relaxed: read after a later `received`
    }
};

// As AllocationProbe, for a render fed by a mix: the mixing thread is whichever source's thread
// completes a set, so each thread's own count is kept apart (in a slot given on its first sample).
class MixAllocationProbe : public ProbeRender {
public:
    using ProbeRender::ProbeRender;
    static constexpr int kThreads = 4;
    std::atomic<std::size_t> thread_allocations[kThreads] = {};
    std::atomic<std::size_t> first_allocations[kThreads] = {};  // at the thread's first sample
    std::atomic<int> threads{0};

    // What each thread has allocated since `baseline` (a copy of thread_allocations), or since its
    // first sample for a thread that had not mixed yet then (its start-up is not the steady state).
    std::size_t allocations_since(const std::vector<std::size_t>& baseline) const {
        std::size_t n = 0;
        for (int i = 0; i < kThreads; ++i) {
            // relaxed: as in record
            const std::size_t now = thread_allocations[i].load(std::memory_order_relaxed);
            n += now - (baseline[std::size_t(i)] ? baseline[std::size_t(i)] : first_allocations[i].load(std::memory_order_relaxed));
        }
        return n;
    }
    std::vector<std::size_t> snapshot() const {
        std::vector<std::size_t> v;
        for (const auto& a : thread_allocations) v.push_back(a.load(std::memory_order_relaxed));  // relaxed: as in record
        return v;
    }

protected:
    void record(std::size_t allocations) override {
        thread_local int slot = -1;
        if (slot < 0) {
            slot = threads.fetch_add(1, std::memory_order_relaxed) % kThreads;  // relaxed: a counter
            first_allocations[slot].store(allocations, std::memory_order_relaxed);  // relaxed: as below
        }
        thread_allocations[slot].store(allocations, std::memory_order_relaxed);  // relaxed: read after a later `received`
    }
};

}  // namespace

TEST_CASE("Graph.SteadyState.TenThousandSamplesAllocateNothing" * doctest::timeout(60)) {
    for (bool ledger : {false, true}) {
        CAPTURE(ledger);
        Graph g;
        auto& src = g.add<CountingSource>("src");
        auto& pass = g.add<PassThrough>("pass");
        auto& out = g.add<KeepRender>("out", 1);
        REQUIRE(g.connect(src, pass));
        REQUIRE(g.connect(pass, out));
        REQUIRE(g.prepare());
        src.output(0).allocator().set_ledger_enabled(ledger);
        pass.output(0).allocator().set_ledger_enabled(ledger);
        REQUIRE(g.run());
        while (out.received() < 1000) std::this_thread::yield();  // warm up
        const std::size_t before = test::allocations();
        const std::uint64_t start = out.received();
        while (out.received() < start + 10'000) std::this_thread::yield();
        const std::size_t during = test::allocations() - before;
        REQUIRE(g.stop());
        CHECK(during == 0);
        MESSAGE("heap allocations across 10,000 samples: " << during);
    }
}

// Live properties reach the streaming thread through a lock-free mailbox: a thousand changes of a
// gain's level and a tone's frequency and amplitude while it streams cost that thread nothing
// (the control thread's own set_property allocates; it is not counted).
TEST_CASE("Live.SteadyState.PropertyChangesAllocateNothingOnTheStreamingThread" * doctest::timeout(60)) {
    Graph g;
    std::unique_ptr<Node> tone, gain;
    REQUIRE(nodes::create_node("tone", "t", {{"frames", "64"}}, tone));
    REQUIRE(nodes::create_node("gain", "g", {}, gain));
    Node& t = g.add(std::move(tone));
    Node& gn = g.add(std::move(gain));
    auto& probe = g.add<AllocationProbe>("probe");
    REQUIRE(g.connect(t, gn));
    REQUIRE(g.connect(gn, probe));
    REQUIRE(g.run());
    while (probe.received.load() < 1000) std::this_thread::yield();  // warm up
    std::uint64_t seen = probe.received.load(std::memory_order_acquire);
    const std::size_t before = probe.thread_allocations.load(std::memory_order_relaxed);
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(g.set_property("g", "db", std::to_string(-(i % 40))));
        REQUIRE(g.set_property("t", "freq", std::to_string(200 + i)));
        REQUIRE(g.set_property("t", "amplitude", i % 2 ? "0.25" : "0.5"));
        // Let a sample through between changes, so each is applied (not only the last).
        const std::uint64_t target = seen + 1;
        while (probe.received.load(std::memory_order_acquire) < target) std::this_thread::yield();
        seen = probe.received.load(std::memory_order_acquire);
    }
    const std::size_t during = probe.thread_allocations.load(std::memory_order_relaxed) - before;
    REQUIRE(g.stop());
    CHECK(during == 0);
    MESSAGE("streaming-thread allocations across 1,000 live changes of three properties: " << during);
}

// A mix's input levels are live too: a thousand changes of both inputs' levels while two sources
// stream cost the mixing threads nothing.
TEST_CASE("Live.SteadyState.MixLevelChangesAllocateNothingOnTheStreamingThreads" * doctest::timeout(60)) {
    Graph g;
    std::unique_ptr<Node> a, b, mix;
    REQUIRE(nodes::create_node("tone", "a", {{"frames", "64"}}, a));
    REQUIRE(nodes::create_node("tone", "b", {{"frames", "64"}, {"freq", "660"}}, b));
    REQUIRE(nodes::create_node("mix", "m", {}, mix));
    Node& ta = g.add(std::move(a));
    Node& tb = g.add(std::move(b));
    Node& m = g.add(std::move(mix));
    auto& probe = g.add<MixAllocationProbe>("probe");
    REQUIRE(g.connect(ta, m));
    REQUIRE(g.connect(tb, m));
    REQUIRE(g.connect(m, probe));
    REQUIRE(g.run());
    while (probe.received.load() < 1000) std::this_thread::yield();  // warm up
    std::uint64_t seen = probe.received.load(std::memory_order_acquire);
    const std::vector<std::size_t> before = probe.snapshot();
    for (int i = 0; i < 1000; ++i) {
        REQUIRE(g.set_property("m", "sink_0::db", std::to_string(-(i % 40))));
        REQUIRE(g.set_property("m", "sink_1::db", std::to_string(-(i % 25))));
        const std::uint64_t target = seen + 1;
        while (probe.received.load(std::memory_order_acquire) < target) std::this_thread::yield();
        seen = probe.received.load(std::memory_order_acquire);
    }
    const std::size_t during = probe.allocations_since(before);
    REQUIRE(g.stop());
    CHECK(during == 0);
    MESSAGE("mixing-thread allocations across 1,000 live changes of two input levels: " << during);
}

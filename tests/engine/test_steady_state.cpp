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


using namespace test;

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

namespace {
// A render that records how many allocations its thread (the source's streaming thread, which
// also runs every node in between) has made, after each sample.
class AllocationProbe : public Node {
public:
    explicit AllocationProbe(std::string name) : Node(std::move(name), Kind::render) { add_input("sink", {MediaFormat::audio()}); }
    std::atomic<std::size_t> thread_allocations{0};
    std::atomic<std::uint64_t> received{0};

protected:
    Flow process(std::size_t, SampleRef&&) override {
        thread_allocations.store(test::t_news, std::memory_order_relaxed);  // relaxed: read after a later `received`
        received.fetch_add(1, std::memory_order_release);  // release: publishes the count above
        return Flow::ok;
    }
};
}  // namespace

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

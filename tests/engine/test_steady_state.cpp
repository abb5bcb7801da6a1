// SPDX-License-Identifier: MIT
// The steady-state push path (get a buffer, fill, push through a transform, render, release)
// allocates nothing: counted with a replaced operator new in this test binary.
#include "test_nodes.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdlib>
#include <new>
#include <thread>

namespace {
std::atomic<std::size_t> g_news{0};
}
void* operator new(std::size_t n) {
    // relaxed: a counter compared across a window of the graph's run.
    g_news.fetch_add(1, std::memory_order_relaxed);
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

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
        const std::size_t before = g_news.load(std::memory_order_relaxed);
        const std::uint64_t start = out.received();
        while (out.received() < start + 10'000) std::this_thread::yield();
        const std::size_t during = g_news.load(std::memory_order_relaxed) - before;
        REQUIRE(g.stop());
        CHECK(during == 0);
        MESSAGE("heap allocations across 10,000 samples: " << during);
    }
}

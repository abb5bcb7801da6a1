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

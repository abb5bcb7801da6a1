// SPDX-License-Identifier: MIT
#pragma once

// Shared by the node tests that run whole pipelines in-process.

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <chrono>
#include <string>

namespace test {

// Builds, runs to end of stream and stops a pipeline; fails the test on any error.
inline void play(const std::string& pipeline, std::chrono::seconds timeout = std::chrono::seconds(60)) {
    sluice::engine::Graph g;
    sluice::Status st = sluice::nodes::build_pipeline(g, pipeline);
    INFO(pipeline);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(timeout));
    REQUIRE(g.stop());
    while (auto e = g.poll_event()) CHECK_MESSAGE(e->type != sluice::engine::Event::Type::error, e->message);
}

}  // namespace test

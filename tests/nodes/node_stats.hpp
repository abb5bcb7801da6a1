// SPDX-License-Identifier: MIT
#pragma once

// A running or stopped graph's statistics of one node, for the node tests.

#include <sluice/engine/graph.hpp>

#include <cstdint>
#include <string>

namespace test {

// One of a node's extra statistics (packets_lost, copies, queued...); all ones when the node has
// no such entry, which no check expects.
inline std::uint64_t extra(const sluice::engine::Graph& g, const std::string& node, const std::string& key) {
    const auto stats = g.stats();
    if (const auto* n = stats.node(node))
        for (const auto& [k, v] : n->extras)
            if (k == key) return v;
    return ~std::uint64_t(0);
}

// A node's counters (samples in and out, drops...); all zero when there is no such node.
inline sluice::engine::NodeStats stats_of(const sluice::engine::Graph& g, const std::string& node) {
    const auto stats = g.stats();
    if (const auto* n = stats.node(node)) return n->stats;
    return {};
}

}  // namespace test

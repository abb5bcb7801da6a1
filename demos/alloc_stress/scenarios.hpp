// SPDX-License-Identifier: MIT
#pragma once

// The sluice-stress scenarios. Each runs worker threads against one SampleAllocator for a fixed
// time or operation count, checks the allocator's invariants on every operation, and reports
// throughput and latency distributions.

#include "histogram.hpp"

#include <sluice/sluice.hpp>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::stress {

struct Config {
    unsigned threads = 4;
    std::size_t buffers = 16;
    std::size_t bytes = 4096;
    std::size_t alignment = 64;
    int numa_node = -1;
    double seconds = 1.7;      // per scenario, unless ops is set (six scenarios: about 10 s)
    std::uint64_t ops = 0;     // stop after this many operations (all threads together)
    std::uint64_t seed = 1;
    // Guard bytes and poisoning in the allocator. Checked pools never park samples in the
    // per-thread caches, so by default every allocator scenario runs half its time checked and
    // half unchecked (caches in play); `alternate = false` keeps to `checked`.
    bool checked = true;
    bool alternate = true;
    bool progress = false;     // live progress line on stderr
};

struct ScenarioResult {
    std::string name;
    double seconds = 0;
    std::uint64_t ops = 0;
    Histogram get_latency;     // ns per successful get_buffer
    Histogram wake_latency;    // ns from decommit() to a waiter's return
    Histogram stop_latency;    // graph scenario: ns a Graph::stop() took
    std::uint64_t decommits = 0;
    std::vector<std::string> violations;
    AllocatorStats final_stats;
};

// The scenario names, in the order a default run plays them.
const std::vector<std::string>& scenario_names();

// Runs one scenario; never throws on an invariant violation, it reports it in the result.
ScenarioResult run_scenario(std::string_view name, const Config& config);

}  // namespace sluice::stress

// SPDX-License-Identifier: MIT
#pragma once

// Output of sluice-stress: the final table, the JSON file for scripts, the SVG latency plot.

#include "scenarios.hpp"

#include <ostream>
#include <string>
#include <vector>

namespace sluice::stress {

void print_table(std::ostream& out, const std::vector<ScenarioResult>& results);
std::string to_json(const Config& config, const std::vector<ScenarioResult>& results);
// Complementary CDFs (fraction of operations slower than x, log-log) of get_buffer latency per
// scenario and of decommit-to-wake, so the tail is visible at a glance.
std::string to_svg(const std::vector<ScenarioResult>& results);

}  // namespace sluice::stress

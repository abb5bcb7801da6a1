// SPDX-License-Identifier: MIT
// libFuzzer target: the pipeline parser and graph preparation (links, formats, pools) on any text.
#include <sluice/sluice.hpp>

#include <cstdint>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    sluice::engine::Graph graph;
    (void)sluice::nodes::build_pipeline(graph, std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
}

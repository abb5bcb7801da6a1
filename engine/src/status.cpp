// SPDX-License-Identifier: MIT
#include <sluice/engine/status.hpp>

namespace sluice::engine {
namespace {

class GraphCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "sluice.graph"; }
    std::string message(int code) const override {
        switch (static_cast<GraphErrc>(code)) {
            case GraphErrc::invalid_argument: return "invalid argument";
            case GraphErrc::parse_error: return "parse error";
            case GraphErrc::not_linked: return "pins cannot be linked";
            case GraphErrc::bad_state: return "not allowed in this state";
            case GraphErrc::io_error: return "input/output error";
            case GraphErrc::corrupt_file: return "corrupt or truncated file";
            case GraphErrc::starvation: return "a pool could run dry with every holder waiting on it";
            case GraphErrc::unsupported_format: return "unsupported media format";
            case GraphErrc::timeout: return "a graph operation timed out";
            case GraphErrc::samples_held: return "samples are still held";
            case GraphErrc::end_of_stream: return "end of stream";
        }
        return "unknown graph error " + std::to_string(code);
    }
};

}  // namespace

const std::error_category& graph_category() noexcept {
    static const GraphCategory category;
    return category;
}

}  // namespace sluice::engine

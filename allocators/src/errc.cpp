// SPDX-License-Identifier: MIT
#include <sluice/allocators/result.hpp>

#include <string>

namespace sluice {
namespace {

class SluiceCategory final : public std::error_category {
public:
    const char* name() const noexcept override { return "sluice.allocator"; }
    std::string message(int code) const override {
        switch (static_cast<Errc>(code)) {
            case Errc::not_committed: return "allocator not committed";
            case Errc::timeout: return "timed out waiting for a buffer";
            case Errc::would_block: return "no buffer free";
            case Errc::size_not_set: return "allocator properties not set";
            case Errc::already_committed: return "allocator already committed";
            case Errc::buffers_outstanding: return "samples of an earlier commit are still held";
            case Errc::invalid_properties: return "invalid allocator properties";
            case Errc::out_of_memory: return "out of memory";
            case Errc::cancelled: return "cancelled";
            case Errc::invalid_argument: return "invalid argument";
        }
        return "unknown sluice error " + std::to_string(code);
    }
};

}  // namespace

const std::error_category& error_category() noexcept {
    static const SluiceCategory category;
    return category;
}

}  // namespace sluice

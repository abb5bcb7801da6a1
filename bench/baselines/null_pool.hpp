// SPDX-License-Identifier: MIT
#pragma once

// NullPool: no allocator at all. get() returns the same non-null pointer every time, release()
// does nothing. What a scenario measures with it is the harness alone: in scenario 1 the loop
// and the validity test around get and release (the instructions every pool's figure includes),
// in scenario 2 the ring and the cache-line traffic between the two cores. Not a contender.
//
// Threading: any thread; never blocks, locks or allocates.

#include "common.hpp"

#include <cstddef>
#include <string_view>

namespace sluice::bench {

class NullPool {
public:
    using Buffer = std::byte*;
    static constexpr std::string_view kName = "null";
    static constexpr PoolKind kKind = PoolKind::heap;

    explicit NullPool(std::size_t /*buffers: none*/) noexcept {}
    [[gnu::always_inline]] Buffer get() noexcept {
        Buffer b = &dummy_;
        asm volatile("" : "+r"(b));  // an opaque pointer, so the loop around it is not folded away
        return b;
    }
    static bool valid(const Buffer& b) noexcept { return b != nullptr; }
    [[gnu::always_inline]] void release(Buffer&& b) noexcept { b = nullptr; }

private:
    std::byte dummy_{};
};

}  // namespace sluice::bench

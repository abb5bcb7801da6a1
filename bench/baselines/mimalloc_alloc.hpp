// SPDX-License-Identifier: MIT
#pragma once

// MimallocAlloc: no pool at all, one mi_malloc_aligned per get and one mi_free per release, to
// show what a pool buys over a fast general-purpose allocator (mimalloc serves a freed block
// back from the same thread-local page, so this is close to the best a heap can do).
//
// Threading: any thread; a release on another thread than the get is a mimalloc "remote free"
// (queued to the owning page with one atomic). Never blocks; allocates by definition. There is
// no buffer limit, so get() never waits and there is nothing to decommit.

#include "common.hpp"

#include <mimalloc.h>

#include <cstddef>
#include <string_view>

namespace sluice::bench {

class MimallocAlloc {
public:
    using Buffer = std::byte*;
    static constexpr std::string_view kName = "mimalloc";
    static constexpr PoolKind kKind = PoolKind::heap;

    explicit MimallocAlloc(std::size_t /*buffers: unlimited*/) noexcept {}

    [[gnu::always_inline]] Buffer get() noexcept { return static_cast<std::byte*>(::mi_malloc_aligned(kBufferBytes, kAlignment)); }
    static bool valid(const Buffer& b) noexcept { return b != nullptr; }
    [[gnu::always_inline]] void release(Buffer&& b) noexcept { ::mi_free(b); }
};

}  // namespace sluice::bench

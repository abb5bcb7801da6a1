// SPDX-License-Identifier: MIT
#pragma once

// SluicePool: ours, sluice::SampleAllocator, behind the bench interface. get() is get_buffer(),
// release() drops the SampleRef (reset(): the last reference pushes the buffer back), decommit()
// is decommit(). The adapter only unwraps the Result, which the inliner removes.
//
// Threading: as SampleAllocator: any thread; get() blocks in a futex only when the pool is empty;
// nothing allocates or makes a system call while buffers are free. Constructor allocates, maps
// the pool's memory and aborts on failure (benchmark setup).

#include "common.hpp"

#include <sluice/allocators/sample_allocator.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace sluice::bench {

class SluicePool {
public:
    using Buffer = sluice::SampleRef;
    static constexpr std::string_view kName = "sluice";
    static constexpr PoolKind kKind = PoolKind::blocking_pool;

    explicit SluicePool(std::size_t buffers) {
        // The ledger is off by default only with NDEBUG; pin it so every build measures the same.
        alloc_.set_ledger_enabled(false);
        auto granted = alloc_.set_properties({.buffers = buffers, .buffer_bytes = kBufferBytes,
                                              .alignment = kAlignment});
        std::error_code ec = granted ? alloc_.commit() : granted.error();
        if (ec) {
            std::fprintf(stderr, "SluicePool: %s\n", ec.message().c_str());
            std::abort();
        }
    }

    [[gnu::always_inline]] Buffer get() noexcept {
        auto r = alloc_.get_buffer();
        return r ? std::move(*r) : Buffer{};
    }
    static bool valid(const Buffer& b) noexcept { return static_cast<bool>(b); }
    [[gnu::always_inline]] void release(Buffer&& b) noexcept { b.reset(); }
    void decommit() noexcept { (void)alloc_.decommit(); }
    // Gets that found the pool empty and slept, so far. Any thread; takes the control mutex.
    std::uint64_t waits() const { return alloc_.stats().waits; }

private:
    sluice::SampleAllocator alloc_;
};

}  // namespace sluice::bench

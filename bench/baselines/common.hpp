// SPDX-License-Identifier: MIT
#pragma once

// What every pool in bench/ shares: the shape issue #5 fixes (64 buffers of 4096 bytes, 64-byte
// aligned; 8 for the hand-off), the payload memory of the hand-written pools, and the interface
// the scenario templates in bench_pools.cpp and count_scenario1.cpp are written against.
//
//   using Buffer = ...;                  what get() hands out; default-constructible, movable
//   static constexpr std::string_view kName;    names the pool in benchmark names and on the
//                                               command line of sluice-count-scenario1
//   static constexpr PoolKind kKind;
//   explicit Pool(std::size_t buffers);
//   Buffer get() noexcept;               waits while every buffer is out (how depends on kKind);
//                                        an invalid Buffer once decommitted
//   static bool valid(const Buffer&) noexcept;
//   void release(Buffer&&) noexcept;     any thread
//   void decommit() noexcept;            blocking pools only: every waiter returns at once with an
//                                        invalid Buffer, and so does every later get()
//
// Every get and release is the caller's real work: nothing here writes to the payload, so the
// figures are the allocator's own cost. Every adapter's get() and release() is always inlined, so
// that no pool pays a call into its adapter that another does not, whatever the inliner decides
// at -O2 (GCC 12 left ours outlined: 62 instructions a pair, against 34 for the same pair written
// straight against the API in count_api.cpp).

#include <concepts>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string_view>

namespace sluice::bench {

inline constexpr std::size_t kBuffers = 64;        // scenarios 1, 3 and 4
inline constexpr std::size_t kHandoffBuffers = 8;  // scenario 2: few, so the producer does wait
inline constexpr std::size_t kBufferBytes = 4096;
inline constexpr std::size_t kAlignment = 64;
inline constexpr std::size_t kCacheLineSize = 64;

enum class PoolKind {
    blocking_pool,  // a fixed set of buffers; get() sleeps while all are out; decommit() exists
    spinning_pool,  // a fixed set of buffers; get() spins while all are out; no decommit
    heap,           // one allocation per get(), one free per release(); never runs out
};

template <class P>
concept Pool = std::default_initializable<typename P::Buffer> && std::movable<typename P::Buffer> &&
               std::constructible_from<P, std::size_t> &&
               requires(P& pool, typename P::Buffer b) {
                   { P::kName } -> std::convertible_to<std::string_view>;
                   { P::kKind } -> std::convertible_to<PoolKind>;
                   { pool.get() } noexcept -> std::same_as<typename P::Buffer>;
                   { P::valid(b) } noexcept -> std::same_as<bool>;
                   { pool.release(std::move(b)) } noexcept;
               };

template <class P>
concept DecommittablePool = Pool<P> && P::kKind == PoolKind::blocking_pool && requires(P& pool) {
    { pool.decommit() } noexcept;
};

// The payloads of a hand-written pool: `count` buffers of kBufferBytes, each kAlignment-aligned,
// in one allocation made up front, as a committed pool's memory is. Never touched by the
// benchmarks. Constructor allocates (aborts on failure: this is benchmark setup).
class PayloadBlock {
public:
    explicit PayloadBlock(std::size_t count)
        : memory_(static_cast<std::byte*>(std::aligned_alloc(kAlignment, count * kBufferBytes))) {
        static_assert(kBufferBytes % kAlignment == 0, "consecutive payloads must keep the alignment");
        if (!memory_) std::abort();
    }
    std::byte* at(std::size_t i) const noexcept { return memory_.get() + i * kBufferBytes; }

private:
    struct Free {
        void operator()(std::byte* p) const noexcept { std::free(p); }
    };
    std::unique_ptr<std::byte, Free> memory_;
};

}  // namespace sluice::bench

// SPDX-License-Identifier: MIT
#pragma once

// LatenessHistogram: how late a clocked render presented its samples, in log-linear buckets
// (16 per power of two, so quantiles are exact to about 4%), up to 2^40 ns. One writer (the
// render's streaming thread) records without allocating or locking; any thread reads a
// snapshot. Samples presented early or on time count as 0.

#include <sluice/engine/detail/log_buckets.hpp>

#include <array>
#include <atomic>
#include <cstdint>
#include <utility>
#include <vector>

namespace sluice::engine {

class LatenessHistogram {
public:
    using Buckets = detail::LogBuckets<4, 40>;
    static constexpr int kBuckets = Buckets::kCount;

    // Any streaming thread. Never allocates.
    void record(std::int64_t lateness_ns) noexcept {
        std::atomic<std::uint64_t>& b = buckets_[bucket_of(lateness_ns < 0 ? 0 : std::uint64_t(lateness_ns))];
        // relaxed RMW: a render with two inputs (a muxer) presents from two streaming threads, so
        // a load and a store could lose counts; readers take snapshots that may lag by a sample.
        b.fetch_add(1, std::memory_order_relaxed);
    }
    void reset() noexcept {
        for (auto& b : buckets_) b.store(0, std::memory_order_relaxed);  // relaxed: no streaming thread runs
    }

    // Any thread: the smallest bucket bound below which a fraction q of the samples lies.
    std::int64_t quantile(double q) const noexcept {
        std::uint64_t total = 0;
        for (const auto& b : buckets_) total += b.load(std::memory_order_relaxed);  // relaxed: a snapshot
        if (total == 0) return 0;
        const auto want = std::uint64_t(q * double(total) + 0.5);
        std::uint64_t seen = 0;
        for (int i = 0; i < kBuckets; ++i) {
            seen += buckets_[i].load(std::memory_order_relaxed);  // relaxed: as above
            if (seen >= (want == 0 ? 1 : want)) return std::int64_t(upper_bound(i));
        }
        return std::int64_t(upper_bound(kBuckets - 1));
    }
    // Non-empty buckets as (upper bound in ns, count), for plots and JSON.
    std::vector<std::pair<std::int64_t, std::uint64_t>> buckets() const {
        std::vector<std::pair<std::int64_t, std::uint64_t>> out;
        for (int i = 0; i < kBuckets; ++i)
            if (const auto n = buckets_[i].load(std::memory_order_relaxed)) out.emplace_back(upper_bound(i), n);  // relaxed: a snapshot
        return out;
    }

private:
    static int bucket_of(std::uint64_t v) noexcept { return Buckets::index(v); }
    static std::uint64_t upper_bound(int bucket) noexcept { return Buckets::upper_bound(bucket); }

    std::array<std::atomic<std::uint64_t>, kBuckets> buckets_{};
};

}  // namespace sluice::engine

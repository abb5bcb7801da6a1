// SPDX-License-Identifier: MIT
#pragma once

// A latency histogram with log-linear buckets (as HdrHistogram does, with 3% resolution):
// fixed size, no allocation when recording, mergeable across threads.

#include <sluice/engine/detail/log_buckets.hpp>

#include <algorithm>
#include <array>
#include <cstdint>

namespace sluice::stress {

class Histogram {
public:
    using Buckets = engine::detail::LogBuckets<5>;  // 32 linear buckets per power of two
    static constexpr int kBuckets = Buckets::kCount;

    void record(std::uint64_t ns) noexcept {
        ++counts_[bucket_of(ns)];
        ++total_;
        max_ = std::max(max_, ns);
    }
    void merge(const Histogram& o) noexcept {
        for (int i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
        total_ += o.total_;
        max_ = std::max(max_, o.max_);
    }
    std::uint64_t count() const noexcept { return total_; }
    std::uint64_t max() const noexcept { return max_; }

    // The smallest value v such that at least fraction q of the samples are <= v (bucket upper
    // bound, so never understated).
    std::uint64_t quantile(double q) const noexcept {
        if (total_ == 0) return 0;
        const auto want = static_cast<std::uint64_t>(q * double(total_) + 0.5);
        std::uint64_t seen = 0;
        for (int i = 0; i < kBuckets; ++i) {
            seen += counts_[i];
            if (seen >= std::max<std::uint64_t>(want, 1)) return std::min(upper_bound(i), max_);
        }
        return max_;
    }

    // Buckets for plotting: (upper bound, count), skipping empty ones.
    template <class F>
    void for_each_bucket(F f) const {
        for (int i = 0; i < kBuckets; ++i)
            if (counts_[i] != 0) f(upper_bound(i), counts_[i]);
    }

private:
    static int bucket_of(std::uint64_t v) noexcept { return Buckets::index(v); }
    static std::uint64_t upper_bound(int bucket) noexcept { return Buckets::upper_bound(bucket); }

    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace sluice::stress

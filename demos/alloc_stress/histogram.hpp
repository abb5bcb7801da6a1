// SPDX-License-Identifier: MIT
#pragma once

// A latency histogram with log-linear buckets (as HdrHistogram does, with 3% resolution):
// fixed size, no allocation when recording, mergeable across threads.

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace sluice::stress {

class Histogram {
public:
    static constexpr int kSubBits = 5;  // 32 linear buckets per power of two
    static constexpr int kBuckets = (64 - kSubBits + 1) << kSubBits;

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
    static int bucket_of(std::uint64_t v) noexcept {
        if (v < (1u << kSubBits)) return int(v);
        const int msb = 63 - std::countl_zero(v);
        const int shift = msb - kSubBits;
        return ((shift + 1) << kSubBits) + int((v >> shift) & ((1u << kSubBits) - 1));
    }
    static std::uint64_t upper_bound(int bucket) noexcept {
        if (bucket < (1 << kSubBits)) return std::uint64_t(bucket);
        const int shift = (bucket >> kSubBits) - 1;
        const std::uint64_t sub = std::uint64_t(bucket & ((1 << kSubBits) - 1)) | (1u << kSubBits);
        return ((sub + 1) << shift) - 1;
    }

    std::array<std::uint64_t, kBuckets> counts_{};
    std::uint64_t total_ = 0;
    std::uint64_t max_ = 0;
};

}  // namespace sluice::stress

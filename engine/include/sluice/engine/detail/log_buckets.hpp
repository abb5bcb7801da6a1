// SPDX-License-Identifier: MIT
#pragma once

// Log-linear bucketing (as HdrHistogram does): values below 2^SubBits get a bucket each; above,
// every power of two is split into 2^SubBits equal buckets, so a bucket's bound is within
// 2^-SubBits of any value in it. Shared by LatenessHistogram and sluice-stress's histogram.

#include <bit>
#include <cstdint>

namespace sluice::engine::detail {

template <int SubBits, int MaxBits = 64>
struct LogBuckets {
    static constexpr int kCount = (MaxBits - SubBits + 1) << SubBits;

    static constexpr int index(std::uint64_t v) noexcept {
        if (v < (std::uint64_t(1) << SubBits)) return int(v);
        const int msb = 63 - std::countl_zero(v);
        if (msb >= MaxBits) return kCount - 1;
        const int shift = msb - SubBits;
        return ((shift + 1) << SubBits) + int((v >> shift) & ((std::uint64_t(1) << SubBits) - 1));
    }
    // The largest value that falls in `bucket`.
    static constexpr std::uint64_t upper_bound(int bucket) noexcept {
        if (bucket < (1 << SubBits)) return std::uint64_t(bucket);
        const int shift = (bucket >> SubBits) - 1;
        const std::uint64_t sub = std::uint64_t(bucket & ((1 << SubBits) - 1)) | (std::uint64_t(1) << SubBits);
        return ((sub + 1) << shift) - 1;
    }
};

}  // namespace sluice::engine::detail

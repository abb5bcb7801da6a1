// SPDX-License-Identifier: MIT
#pragma once

// Where a received RTP stream's samples sit in running time, shared by rtpsrc and rtpvrawsrc.

#include <sluice/allocators/sample.hpp>

#include <cstdint>

namespace sluice::nodes::detail {

// The first timestamp a receiver plays is anchored to a running time (its arrival plus the
// jitter latency); every later timestamp plays its distance from that one later, at the stream's
// clock rate. Timestamps wrap at 2^32, so the distance is read as a signed 32-bit difference: a
// timestamp up to 2^31 ticks behind the anchor maps to an earlier time. Streaming thread only.
class RtpTimeline {
public:
    void anchor(std::uint32_t timestamp, MediaTime running_ns) noexcept {
        base_timestamp_ = timestamp;
        base_running_ns_ = running_ns;
    }

    MediaTime running_time(std::uint32_t timestamp, std::int64_t clock_rate) const noexcept {
        const auto ticks = std::int64_t(std::int32_t(timestamp - base_timestamp_));
        return base_running_ns_ + ticks * 1'000'000'000 / clock_rate;
    }

private:
    std::uint32_t base_timestamp_ = 0;
    MediaTime base_running_ns_ = 0;
};

}  // namespace sluice::nodes::detail

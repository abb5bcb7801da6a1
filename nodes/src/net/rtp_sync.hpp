// SPDX-License-Identifier: MIT
#pragma once

// RTCP-based sync for the two RTP receivers: what a sender report says about where a stream's
// RTP time belongs on the graph's running-time line, and the rules both receivers follow when
// they move their line to it.
//
// A receiver's line starts at its first packet's arrival plus the latency. Two streams of one
// sender that took different paths (one through a slower link, a busier queue) are then out of
// step by the difference of their paths. A sender report ties the sender's RTP time to its wall
// clock; on our running-time line plus the latency, that is where the media belongs, the same for
// every stream sent at one instant. So a receiver moves its line there:
//   - once per stream: by the first report the anchored line meets (at anchoring, when one came
//     before; else the first to come after). Later reports only confirm it: a sender's reports
//     stamp wall-clock time against media time as it goes (ffmpeg's -re pacing drifts from its
//     reports by tens of ms over 5 s), and chasing them would put a gap or a skip into a stream
//     at every report;
//   - when anchoring, and while nothing has played, to wherever the SR says;
//   - once output has begun (a receiver that joined a running stream anchors by arrival before
//     the first report comes), later leaves a gap and earlier skips the media whose time has gone
//     by (output times never go back), the next output flagged as a discontinuity; and only by
//     more than kSyncToleranceNs (no step for a report's rounding);
//   - never when it would make the last packet due before it arrived (the path is slower than
//     the latency: raise latency= on every receiver of the graph to the slowest path) or later
//     than its arrival plus the latency and the tolerance (the clocks disagree: a report's line
//     is never later than that when they agree); the arrival line stays;
//   - only by a report of the stream's own sender (its SSRC), which may come before its first
//     packet.
// Wall clocks must agree for this (one machine, or machines in NTP/PTP time).

#include <sluice/allocators/sample.hpp>

#include <cstdint>

namespace sluice::nodes::detail {

// Lines closer than this are left alone: each move after output began is a gap or a skip, and
// lip sync tolerates tens of milliseconds (ITU-R BT.1359: about -125 to +45 ms detectable). A
// receiver anchored by arrival is within a millisecond or two of its sender's line on a quiet
// link; a loaded machine's scheduling must not make it skip.
inline constexpr std::int64_t kSyncToleranceNs = 10'000'000;

// Nanoseconds of a signed count of RTP ticks.
inline std::int64_t ticks_to_ns(std::int64_t ticks, int rate) noexcept {
    return std::int64_t(static_cast<__int128>(ticks) * 1'000'000'000 / rate);
}

struct SenderSync {
    bool known = false;
    std::uint32_t ssrc = 0;       // whose report
    std::uint32_t timestamp = 0;  // an RTP time of the sender's
    MediaTime running_ns = 0;     // where it belongs on our line
    MediaTime running_of(std::uint32_t ts, int rate) const noexcept {
        return running_ns + ticks_to_ns(std::int32_t(ts - timestamp), rate);
    }
    // Whether placing a packet that arrived at `arrived_running_ns` at `at` keeps the rules above.
    static bool plausible(MediaTime at, MediaTime arrived_running_ns, std::int64_t latency_ns) noexcept {
        return at >= arrived_running_ns && at <= arrived_running_ns + latency_ns + kSyncToleranceNs;
    }
};

}  // namespace sluice::nodes::detail

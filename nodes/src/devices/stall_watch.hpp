// SPDX-License-Identifier: MIT
// How long a device node's streaming thread has waited on a device that moved no samples since
// (alsasink, alsasrc, jacksink, jacksrc).
//
// A device can stop without an error: a sound server frozen or suspended (behind alsa-lib's
// plugin, or a JACK server itself), a USB device gone quiet. Waiting on it for ever would hang
// the graph until someone stops it, so after `stall-timeout=` seconds of waiting, and at least
// two periods (10 s by default; the kernel gives a blocking write on a hardware device whose
// interrupts stopped the longer of 10 s and two periods too), the node reports the stall as an
// error. Only time spent waiting counts, so a graph paused between two waits does not look
// stalled.
//
// One streaming thread owns a watch (it is not thread-safe).
#pragma once

#include "core/common.hpp"

#include <algorithm>
#include <cstdint>
#include <string>

namespace sluice::nodes::detail {

// The property, as every device node spells it. `moves`: "take (give)", "run a cycle" ...
inline PropertySpec stall_timeout_property(const std::string& moves) {
    return {"stall-timeout", "10", "seconds the device may " + moves + " no samples before that is an error; 0: wait for ever"};
}

// What it says, in nanoseconds (0: for ever; at least 1 ms otherwise).
inline std::int64_t read_stall_timeout(PropertyReader& r) {
    const double seconds = r.number("stall-timeout", 0, 3600);
    return seconds > 0 ? std::max<std::int64_t>(std::int64_t(seconds * 1e9), 1'000'000) : 0;
}

class StallWatch {
public:
    StallWatch() noexcept = default;
    StallWatch(std::int64_t limit_ns, std::int64_t period_ns) noexcept : asked_ns_(limit_ns) { period(period_ns); }
    // The device's period is now `period_ns` (JACK's buffer size can change mid-stream, with
    // jack_bufsize): the floor of two periods follows it, or a period grown past half the limit
    // would read as a stall between two cycles that came on time.
    void period(std::int64_t period_ns) noexcept { limit_ns_ = asked_ns_ > 0 ? std::max(asked_ns_, 2 * period_ns) : 0; }
    void moved() noexcept { waited_ns_ = 0; }
    // The longest the next wait may last, in ms (-1: no limit), for a poll() timeout.
    int timeout_ms() const noexcept {
        if (limit_ns_ <= 0) return -1;
        return int(std::clamp<std::int64_t>((limit_ns_ - waited_ns_ + 999'999) / 1'000'000, 0, INT32_MAX));
    }
    void waited(std::int64_t ns) noexcept { waited_ns_ += std::max<std::int64_t>(ns, 0); }
    bool stalled() const noexcept { return limit_ns_ > 0 && waited_ns_ >= limit_ns_; }
    // The end of the error's line: "for 10 s (it stalled; stall-timeout= sets how long to wait)".
    std::string for_how_long() const {
        return "for " + number_text(double(limit_ns_) / 1e9) + " s (it stalled; stall-timeout= sets how long to wait)";
    }

private:
    std::int64_t asked_ns_ = 0;  // stall-timeout= (0: for ever)
    std::int64_t limit_ns_ = 0;  // that, and at least two periods (0: for ever)
    std::int64_t waited_ns_ = 0;
};

}  // namespace sluice::nodes::detail

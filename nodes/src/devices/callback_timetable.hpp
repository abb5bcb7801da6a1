// SPDX-License-Identifier: MIT
// When a streaming thread that a device's real-time callback may not wake should look at the
// device's ring again (jacksink, jacksrc).
//
// The callback cannot signal the thread: a futex wake or an eventfd write is a system call in
// the real-time thread, which Sluice refuses (see jack.cpp). So the thread keeps time with the
// callbacks: the callback stamps when it ended, and the thread sleeps until a margin after the
// callback that will have moved what it waits for is due, counting whole periods from that
// stamp. Counting from now instead, as jacksrc once did, let its wake-ups drift behind the
// callbacks until one came a period late (bench/README.md, "Session 16").
//
// The margin. Too small, and the thread wakes before the callback ended and must look again a
// margin later; too large, and what a capture callback delivered waits that much longer in the
// ring. A capture learns it: twice the running mean of how far the callbacks' ends stray from a
// whole number of periods after the previous end it saw, between 20 us and an eighth of a
// period, starting at the eighth. (A fixed eighth, 167 us at 64 frames and 48 kHz, kept
// Sluice's recorder 0.16 - 0.19 periods behind GStreamer's, whose callback signals its thread:
// bench/README.md, "Session 18".) Playback keeps the eighth: waking sooner after a callback only
// refills the ring sooner, which takes an app's next sample sooner and lengthens its wait to be
// played (measured: 5.00 -> 5.09 periods app to app), for no safety worth having.
//
// One streaming thread owns a timetable (it is not thread-safe); the callback's stamp reaches
// it through the caller.
#pragma once

#include <sluice/engine/format.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdint>

namespace sluice::nodes::detail {

class CallbackTimetable {
public:
    enum class Side { playback, capture };
    explicit CallbackTimetable(Side side) noexcept : side_(side) {}

    // A stream starts: nothing learnt yet.
    void reset() noexcept {
        last_seen_ = spread_ns_ = ends_seen_ = 0;
        looks_ = 0;
    }

    // When a wait for `slice_frames` to move should end, on the steady clock. `last`: when the
    // latest callback ended (0: none yet); `now`: read after `last` (a callback ending between
    // the two reads is then no "future" one); `mark`: `last` as the caller read it before it
    // looked at the ring (a callback that ended since may have moved what it waits for: the
    // wait ends at once), or kNoMark. A callback that is due and not yet seen is looked for a
    // margin later, then twice that, four times, up to the eighth of a period (a late callback
    // costs a few looks, a gap in the callbacks no more than 24 as before); with none for four
    // periods (not started, a stalled server, a freewheel whose callbacks wait on a slow
    // client) the slice is timed from now, at least a quarter period.
    static constexpr std::int64_t kNoMark = -1;
    std::int64_t slice_end_ns(std::int64_t last, std::int64_t now, std::int64_t mark, std::size_t slice_frames,
                              std::uint32_t period_frames, int rate) noexcept {
        const std::uint32_t period = std::max<std::uint32_t>(period_frames, 1);
        const std::int64_t period_ns = frames_ns(period, rate);
        learn(last, period_ns);
        if (mark != kNoMark && last != mark) return now;
        if (last == 0 || now < last || now >= last + 4 * period_ns)
            return now + frames_ns(std::max<std::size_t>(slice_frames, std::max<std::uint32_t>(period / 4, 1)), rate);
        const std::int64_t margin = margin_ns(period_ns);
        if (now >= last + period_ns) {  // the next callback is due and not seen
            const std::int64_t most = period_ns / 8;
            const std::int64_t later = looks_ >= 16 || (margin << looks_) >= most ? most : margin << looks_;
            ++looks_;
            return now + later;
        }
        const std::int64_t cycles = std::max<std::int64_t>(1, std::int64_t((slice_frames + period - 1) / period));
        return last + cycles * period_ns + margin;
    }

    // How long after a callback is due the thread wakes (see the top of this file).
    std::int64_t margin_ns(std::int64_t period_ns) const noexcept {
        const std::int64_t most = period_ns / 8;
        if (side_ == Side::playback || ends_seen_ == 0) return most;
        return std::clamp(2 * spread_ns_, std::min<std::int64_t>(kLeastMarginNs, most), most);
    }

    // Callback ends learnt from so far (statistics, tests).
    std::int64_t ends_seen() const noexcept { return ends_seen_; }

private:
    static constexpr std::int64_t kLeastMarginNs = 20'000;

    static std::int64_t frames_ns(std::uint64_t frames, int rate) noexcept {
        return rate > 0 ? engine::frames_to_ns(frames, rate) : 0;
    }

    // An end seen for the first time sets the mean (the first stray) or moves it by 1/16 of
    // the difference: its stray is its distance from the previous end seen, to the nearest
    // whole number of periods (they need not be neighbours: the thread sleeps over several).
    void learn(std::int64_t last, std::int64_t period_ns) noexcept {
        if (last == 0 || last == last_seen_) return;
        looks_ = 0;
        if (side_ == Side::playback) {
            last_seen_ = last;
            return;
        }
        const std::int64_t previous = last_seen_;
        last_seen_ = last;
        if (previous == 0 || last < previous || period_ns <= 0) return;
        const std::int64_t off = (last - previous) % period_ns;
        const std::int64_t stray = std::min(off, period_ns - off);
        spread_ns_ = ends_seen_ == 0 ? stray : spread_ns_ + (stray - spread_ns_) / 16;
        ++ends_seen_;
    }

    Side side_;
    std::int64_t last_seen_ = 0;  // the latest callback end learnt from
    std::int64_t spread_ns_ = 0;  // running mean of the strays
    std::int64_t ends_seen_ = 0;
    int looks_ = 0;  // looks for a due callback since the last end seen
};

}  // namespace sluice::nodes::detail

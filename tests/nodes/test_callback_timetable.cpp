// SPDX-License-Identifier: MIT
// When jacksink's and jacksrc's streaming threads look at their rings again
// (nodes/src/devices/callback_timetable.hpp), fed with made-up callback ends: a capture learns
// how late after a callback is due to wake from how much the callbacks' ends stray, and so waits
// less than the fixed eighth of a period it waited before when they keep time; playback keeps
// the eighth. (Against a real jackd, the bench measures what it does to a recorder:
// bench/README.md, "Session 18".)
#include <doctest/doctest.h>

#include "devices/callback_timetable.hpp"

#include <cstdint>
#include <vector>

namespace {

using sluice::nodes::detail::CallbackTimetable;

constexpr int kRate = 48000;
constexpr std::uint32_t kPeriod = 64;
constexpr std::int64_t kPeriodNs = 1'333'333;  // 64 frames at 48 kHz
constexpr std::int64_t kUs = 1000;
constexpr std::int64_t kT0 = 1'000'000'000;    // the first callback's end

// Shows the timetable `count` callback ends a period apart, the k-th straying by stray(k) ns,
// each seen by a wait that starts 10 us after it; returns the last end.
template <typename Stray>
std::int64_t feed(CallbackTimetable& t, int count, Stray stray) {
    std::int64_t last = 0;
    for (int k = 0; k < count; ++k) {
        last = kT0 + k * kPeriodNs + stray(k);
        (void)t.slice_end_ns(last, last + 10 * kUs, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate);
    }
    return last;
}

}  // namespace

TEST_CASE("Jack.Timetable.CaptureWakesCloserToCallbacksThatKeepTime") {
    CallbackTimetable t(CallbackTimetable::Side::capture);
    CHECK(t.margin_ns(kPeriodNs) == kPeriodNs / 8);  // nothing seen yet: the eighth
    // Ends 5 us either side of the period: the margin comes down to its floor, 20 us.
    const std::int64_t last = feed(t, 200, [](int k) { return k % 2 ? 5 * kUs : -5 * kUs; });
    CHECK(t.ends_seen() == 199);
    CHECK(t.margin_ns(kPeriodNs) == 20 * kUs);
    // A wait for one period ends a period after the last end plus that margin.
    CHECK(t.slice_end_ns(last, last + 100 * kUs, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate) ==
          last + kPeriodNs + 20 * kUs);
    // A wait for three periods (the thread sleeps over them) is counted in whole periods.
    CHECK(t.slice_end_ns(last, last + 100 * kUs, CallbackTimetable::kNoMark, 3 * kPeriod - 10, kPeriod, kRate) ==
          last + 3 * kPeriodNs + 20 * kUs);
}

TEST_CASE("Jack.Timetable.CaptureMarginFollowsTheJitter") {
    CallbackTimetable t(CallbackTimetable::Side::capture);
    // Ends alternating 30 us early and late: consecutive ends stray 60 us from a period; the
    // margin is twice the mean stray, 120 us (under the eighth, 167 us).
    feed(t, 400, [](int k) { return k % 2 ? 30 * kUs : -30 * kUs; });
    CHECK(t.margin_ns(kPeriodNs) > 115 * kUs);
    CHECK(t.margin_ns(kPeriodNs) <= 120 * kUs);
    // Ends that stray by half a period (a stalled server, a lost cycle) raise it to the eighth and
    // no further.
    CallbackTimetable wild(CallbackTimetable::Side::capture);
    feed(wild, 100, [](int k) { return k % 2 ? kPeriodNs / 2 : 0; });
    CHECK(wild.margin_ns(kPeriodNs) == kPeriodNs / 8);
    // reset() (a new start) forgets what was learnt.
    t.reset();
    CHECK(t.ends_seen() == 0);
    CHECK(t.margin_ns(kPeriodNs) == kPeriodNs / 8);
}

TEST_CASE("Jack.Timetable.EndsSeveralPeriodsApartCount") {
    // A thread that sleeps over four periods sees every fourth end: 4 periods and 8 us apart is
    // a stray of 8 us, not of 4 periods.
    CallbackTimetable t(CallbackTimetable::Side::capture);
    for (int k = 0; k < 100; ++k) {
        const std::int64_t end = kT0 + k * (4 * kPeriodNs + 8 * kUs);
        (void)t.slice_end_ns(end, end + 10 * kUs, CallbackTimetable::kNoMark, 4 * kPeriod, kPeriod, kRate);
    }
    CHECK(t.margin_ns(kPeriodNs) == 20 * kUs);  // twice 8 us is under the floor
    // An end seen again (the thread woke with no new callback) teaches nothing.
    CallbackTimetable again(CallbackTimetable::Side::capture);
    for (int k = 0; k < 50; ++k) (void)again.slice_end_ns(kT0, kT0 + k * kUs, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate);
    CHECK(again.ends_seen() == 0);
}

TEST_CASE("Jack.Timetable.PlaybackKeepsTheEighth") {
    // Waking sooner after a callback would only refill jacksink's ring sooner (a longer wait for
    // an app's sample to play): however steady the callbacks, playback wakes an eighth late.
    CallbackTimetable t(CallbackTimetable::Side::playback);
    const std::int64_t last = feed(t, 200, [](int) { return 0; });
    CHECK(t.margin_ns(kPeriodNs) == kPeriodNs / 8);
    CHECK(t.slice_end_ns(last, last + 100 * kUs, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate) ==
          last + kPeriodNs + kPeriodNs / 8);
}

TEST_CASE("Jack.Timetable.WaitsThatEndAtOnceOrFromNow") {
    CallbackTimetable t(CallbackTimetable::Side::capture);
    const std::int64_t now = kT0 + 100 * kUs;
    // A callback ended since the caller looked at the ring: look again at once.
    CHECK(t.slice_end_ns(kT0, now, kT0 - kPeriodNs, kPeriod, kPeriod, kRate) == now);
    // No callback yet: timed from now, the slice or at least a quarter period.
    CHECK(t.slice_end_ns(0, now, CallbackTimetable::kNoMark, 8, kPeriod, kRate) == now + kPeriodNs / 4);
    CHECK(t.slice_end_ns(0, now, CallbackTimetable::kNoMark, 3 * kPeriod, kPeriod, kRate) == now + 4'000'000);  // 192 frames
    // None for four periods (a stalled server): from now too.
    CHECK(t.slice_end_ns(kT0, kT0 + 5 * kPeriodNs, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate) ==
          kT0 + 5 * kPeriodNs + kPeriodNs);
}

TEST_CASE("Jack.Timetable.ADueCallbackIsLookedForLessAndLessOften") {
    // Learnt margin 20 us; the callback after `last` is due and not seen: the thread looks again
    // 20, 40, 80, 160 us later, then every eighth of a period (167 us), and no more often until a
    // new end is seen, when it starts from the margin again. (Looking every 20 us through a gap
    // in the callbacks would have been 200 looks where the fixed eighth made 24.)
    CallbackTimetable t(CallbackTimetable::Side::capture);
    const std::int64_t last = feed(t, 100, [](int) { return 0; });
    REQUIRE(t.margin_ns(kPeriodNs) == 20 * kUs);
    std::int64_t now = last + kPeriodNs + 5 * kUs;
    std::vector<std::int64_t> gaps;
    for (int i = 0; i < 7; ++i) {
        const std::int64_t end = t.slice_end_ns(last, now, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate);
        gaps.push_back(end - now);
        now = end;
    }
    CHECK(gaps == std::vector<std::int64_t>{20 * kUs, 40 * kUs, 80 * kUs, 160 * kUs, kPeriodNs / 8, kPeriodNs / 8, kPeriodNs / 8});
    // A new end: the next due callback is looked for a margin after it again.
    const std::int64_t next = last + kPeriodNs;
    const std::int64_t due = next + kPeriodNs + 1 * kUs;
    CHECK(t.slice_end_ns(next, due, CallbackTimetable::kNoMark, kPeriod, kPeriod, kRate) == due + 20 * kUs);
}

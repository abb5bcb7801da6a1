// SPDX-License-Identifier: MIT
#pragma once

// Clock: the graph's reference clock, in *running time*: nanoseconds of the steady clock (or of a
// device's time, see DeviceTime) since the graph started running, not counting time spent paused. A sample whose start time is t is
// due when running time reaches t.
//
// Presentation waits (wait_until) block the calling streaming thread on an EventCount with an
// absolute deadline, and end early when the graph pauses, flushes or stops (interrupt()) or the caller's
// stop_token fires. They allocate nothing and take no lock, so a clocked render stays
// allocation-free; a stop never waits on a render that is waiting on the clock.
//
// Threading: now() and wait_until() from any thread; start/pause/reset/interrupt from the control
// thread (the Graph).

#include <sluice/allocators/event_count.hpp>

#include <atomic>
#include <cstdint>
#include <stop_token>

namespace sluice::engine {

// DeviceTime: the time a device keeps. A render bound to a device with a clock of its own (a
// JACK server's cycle, a sound card's crystal) counts the frames the device has consumed and
// publishes each count with the steady-clock instant it was true; the graph's Clock then follows
// the device instead of the steady clock, as a GStreamer audio sink provides the pipeline clock
// and a PipeWire driver drives its graph: media time is what the device has consumed, and every
// other clocked render (video, network) presents by it. The two clocks' rates differ by parts
// per million on real hardware; drift_ppm() measures it over the whole run.
//
// Threading: publish() from one device thread at a time, made for a real-time callback (no lock,
// no allocation, no system call: a sequence lock of plain atomics); now_ns() and drift_ppm() from
// any thread, lock-free (a reader retries while a publish is under way); start() on the control
// thread while the device does not run.
class DeviceTime {
public:
    // Forgets earlier counts: a new run of the device at `rate` frames per second.
    void start(int rate) noexcept;
    // The device has consumed `frames` in all (its own running count) as of `steady_ns`.
    void publish(std::uint64_t frames, std::int64_t steady_ns) noexcept;
    // The device will count no more in this run (its stream ended, or it turned out to keep no
    // time): from here on the time runs on at the steady clock's pace from where it stands,
    // instead of standing still, so that other clocked renders are not held. Any thread.
    void release() noexcept;
    // The device plays on between counts whether or not anyone counts: alsasink counts from the
    // thread that writes to it, which may meanwhile wait for a picture's time in a videosink fed
    // by the same source (one avsrc), and a time standing still there waited for a count only
    // the waiting thread could make (`sluice-play movie.mkv` hung). Past the hold below its time
    // then moves on at the steady clock's pace until the next count. For this run (start()
    // forgets it). Any thread.
    void plays_between_counts() noexcept;
    // The device stopped (an underrun, a drop, a pause) and starts again later: its next count
    // is a first count again, and meanwhile its time runs on at the steady clock's pace from
    // where it stands (never back). Without it the counts after the restart, behind by the
    // stop, would hold the time still for as long as the stop lasted. The one writer thread at
    // a time, as publish() (alsasink: its streaming thread, or the control thread during a
    // flush, the streaming thread parked).
    void restart() noexcept;

    // The device's time, in the steady clock's domain: equal to it at the first count, then
    // moving at the device's pace (interpolated between counts at the pace of the last second or
    // two, never backwards, and standing still when the device stops counting for longer than
    // 100 ms or two of its intervals, unless it plays between counts). The steady clock before
    // the first count (and after a restart(), from where it stood).
    std::int64_t now_ns() const noexcept;
    // How much faster the device runs than the steady clock, in parts per million, measured
    // from the first count to the last; 0 until a second has been counted.
    double drift_ppm() const noexcept;
    // Device time per steady time over the last one to two seconds (1 before there is such a
    // baseline): how long a wait for device time lasts on the steady clock.
    double pace() const noexcept;

private:
    struct Counts {
        std::uint64_t first_frames, frames, window_frames;
        std::int64_t first_ns, at_ns, window_ns, interval_ns;
        bool restarting;
        std::uint64_t base_frames;  // the run's first count, for drift_ppm(): a restart keeps it
        std::int64_t base_ns;
        std::int64_t restart_from_ns, restart_steady_ns;
    };
    // The time since a restart: from where it stood, at the steady clock's pace.
    static std::int64_t continued(const Counts& c, std::int64_t steady_ns) noexcept {
        return c.restart_from_ns + std::max<std::int64_t>(steady_ns - c.restart_steady_ns, 0);
    }
    // Raises the latest answer to `t` (never backwards) and returns the answer.
    std::int64_t answer(std::int64_t t) const noexcept;
    enum class Read { ok, none, busy };
    // A consistent set of counts: none before the first; busy if a publish stayed under way for
    // all of a bounded number of tries (the writer preempted by this reader on its core).
    Read read(Counts& c) const noexcept;
    static double pace_of(const Counts& c, double rate) noexcept;

    std::atomic<int> rate_{48000};  // written by start(), before the device thread runs
    std::atomic<std::uint32_t> seq_{0};  // odd while publish() writes
    std::atomic<bool> counting_{false};
    std::atomic<bool> released_{false};  // see release()
    std::atomic<bool> plays_on_{false};  // see plays_between_counts()
    std::atomic<bool> restarting_{false};  // restart() was called; the next count is a first one
    std::atomic<std::uint64_t> base_frames_{0};  // the run's first count (drift_ppm())
    std::atomic<std::int64_t> base_ns_{0};
    // Since restart(): the time it stood at, and the steady clock's then; it goes on from there.
    std::atomic<std::int64_t> restart_from_ns_{0}, restart_steady_ns_{0};
    std::atomic<std::uint64_t> first_frames_{0}, frames_{0};
    std::atomic<std::int64_t> first_ns_{0}, at_ns_{0};
    std::atomic<std::int64_t> interval_ns_{0};  // between the last two counts
    // The pace's baseline: a count one to two seconds old (window_), and the newest window start.
    std::atomic<std::uint64_t> window_frames_{0}, next_window_frames_{0};
    std::atomic<std::int64_t> window_ns_{0}, next_window_ns_{0};
    // Only the device thread touches these (outside the sequence lock's values).
    std::uint64_t writer_frames_ = 0;
    std::int64_t writer_at_ns_ = 0;
    mutable std::atomic<std::int64_t> latest_ns_{0};  // the latest time now_ns() answered: never go back
};

enum class ClockWait {
    due,          // the deadline has passed: present now
    interrupted,  // the graph paused or flushed: re-check state, then wait again or drop
    stopped,      // the stop_token fired
};

class PtpClock;  // ptp_clock.hpp

class Clock {
public:
    // Running time now, in ns. While paused it stands still.
    std::int64_t now() const noexcept;
    bool running() const noexcept;

    // Waits until running time reaches `running_ns`. Any thread; never allocates.
    ClockWait wait_until(std::int64_t running_ns, const std::stop_token& stop) noexcept;
    // Waits, at most `timeout_ns` of the steady clock, until the clock runs (due), changes in
    // some other way (interrupted: a flush, a pause) or the stop_token fires. The graph's
    // preroll holds a render's first sample here. Any thread; never allocates.
    ClockWait wait_until_running(std::int64_t timeout_ns, const std::stop_token& stop) noexcept;

    // Control thread.
    void start() noexcept;      // running time resumes where it stood
    void pause() noexcept;      // running time stops; waiters are interrupted
    void reset() noexcept;      // running time back to 0, paused
    void set(std::int64_t running_ns) noexcept;  // running time jumps there (a seek), running or not
    void interrupt() noexcept;  // wakes every waiter with `interrupted`

    // Runs at `device`'s pace from the next start() on (nullptr: the steady clock's). The
    // device outlives the clock's use of it. Control thread, while the clock is reset.
    void follow(const DeviceTime* device) noexcept;
    const DeviceTime* device() const noexcept;
    // The time that machines share, in ns since 1970 TAI: PTP time when the graph follows ptp4l
    // (Graph::follow_ptp), else the system's CLOCK_TAI. AES67 senders take their RTP time from it.
    // Any thread.
    std::int64_t tai_ns() const noexcept;
    // Takes tai_ns() from `ptp` (nullptr: the system's CLOCK_TAI), which outlives the clock's
    // use of it. Control thread, while the clock is reset.
    void share(const PtpClock* ptp) noexcept;

private:
    static std::int64_t steady_ns() noexcept;
    // The time base: the device's time when following one, else the steady clock.
    std::int64_t base_time_ns() const noexcept;
    std::atomic<const DeviceTime*> device_{nullptr};
    std::atomic<const PtpClock*> ptp_{nullptr};

    // Invariant: while running, now() == base_time_ns() - base_ns_; while paused, now() == paused_at_.
    std::atomic<std::int64_t> base_ns_{0};
    std::atomic<std::int64_t> paused_at_{0};
    std::atomic<bool> running_{false};
    EventCount changes_;  // notified by every state change
};

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
#pragma once
// PtpClock: the time that machines share, as linuxptp's ptp4l keeps it.
//
// AES67 and SMPTE ST 2110 senders stamp RTP time from PTP time, so that two senders locked to one
// grandmaster stamp one instant alike and a receiver can line their streams up. Sluice never
// speaks PTP on the network: ptp4l is the engine that does (hardware or software timestamps, the
// best master clock algorithm, the servo). A PtpClock asks the local ptp4l, over its management
// socket (the one `pmc -u` uses), how far this machine's clock is from the grandmaster, a few
// times a second, and answers
//
//     PTP time = CLOCK_TAI - master_offset
//
// Where ptp4l (or phc2sys after it) steers the system clock, the offset is its residual, a few
// nanoseconds to microseconds; where ptp4l measures without steering (`free_running 1`, or a
// machine whose clock others own), the correction carries the whole offset. CLOCK_TAI is the
// system clock plus the kernel's TAI offset, which phc2sys sets (-w); where nothing set it,
// CLOCK_TAI reads UTC and every machine of the network should be set up alike.
//
// A graph that follows PTP (Graph::follow_ptp) runs its clock at PTP's pace (through the same
// DeviceTime a sound card's clock uses, its drift reported as clock_drift_ppm), and its AES67
// senders take their RTP time from tai_ns(). If ptp4l stops answering, the clock holds over on
// the last offset and state() says so; it never stands still.
//
// Threading: open() and the destructor on a control thread; tai_ns(), device_time() and state()
// from any thread (tai_ns() is lock-free and makes one clock_gettime).
#include <sluice/engine/clock.hpp>
#include <sluice/engine/status.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace sluice::engine {

struct PtpOptions {
    std::string socket = "/var/run/ptp4l";   // ptp4l's uds_address
    int domain = 0;                           // ptp4l's domainNumber
    std::chrono::milliseconds wait{10'000};   // how long open() waits for a grandmaster
    std::chrono::milliseconds poll{125};      // how often ptp4l is asked
};

struct PtpState {
    std::string port_state;      // as ptp4l names it: "SLAVE", "MASTER", "UNCALIBRATED", ...
    std::string grandmaster;     // the grandmaster's clock identity, as pmc prints it
    bool grandmaster_here = false;  // this machine's ptp4l is the grandmaster (offset 0)
    bool holdover = false;       // ptp4l stopped answering: the last offset is kept
    std::int64_t offset_ns = 0;  // this machine's clock minus the grandmaster's, last measured
    std::uint64_t answers = 0;   // polls ptp4l answered
    std::uint64_t silences = 0;  // polls it did not
};

class PtpClock {
public:
    // Asks ptp4l at `options.socket` and waits up to `options.wait` until its port follows a
    // grandmaster (or is one). Refused with one line: nothing listens there (how to start
    // ptp4l), ptp4l answers but finds no grandmaster in time (its port state), a bad option.
    static Status open(const PtpOptions& options, std::unique_ptr<PtpClock>& clock);
    ~PtpClock();
    PtpClock(const PtpClock&) = delete;
    PtpClock& operator=(const PtpClock&) = delete;

    // PTP time now: nanoseconds since the PTP epoch (1970-01-01 TAI).
    std::int64_t tai_ns() const noexcept;
    // PTP time as a device clock, for Clock::follow: its count is PTP nanoseconds.
    const DeviceTime& device_time() const noexcept { return device_; }
    PtpState state() const;

private:
    class Manager;  // ptp4l's management socket
    struct Answer;  // what ptp4l said
    PtpClock(std::unique_ptr<Manager> manager, const PtpOptions& options);
    void poll_until(std::stop_token stop);
    void take(const Answer& a);
    void publish() noexcept;

    std::unique_ptr<Manager> manager_;
    PtpOptions options_;
    DeviceTime device_;
    // relaxed everywhere: one value each, read on its own (tai_ns takes the offset it sees; a
    // poll that lands between a reader's loads shifts its answer by at most the offset's change).
    std::atomic<std::int64_t> offset_ns_{0};
    std::atomic<bool> holdover_{false};
    std::atomic<std::uint64_t> answers_{0}, silences_{0};
    mutable std::mutex names_lock_;  // the poller is no real-time thread; state() is a control call
    std::string port_state_, grandmaster_;
    bool grandmaster_here_ = false;
    // The device clock's count (publish()); the poller's alone.
    bool published_ = false;
    std::uint64_t count_ = 0;
    std::int64_t last_steady_ = 0, last_ptp_ = 0;
    std::jthread poller_;
};

}  // namespace sluice::engine

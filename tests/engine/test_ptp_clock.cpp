// SPDX-License-Identifier: MIT
// PtpClock against a stand-in for ptp4l's management socket that answers what a real ptp4l on
// one machine never can: a large offset from the grandmaster (namespaces share one kernel clock,
// so the real ptp4l of tests/demos/test_ptp.cpp measures microseconds). It speaks the same
// IEEE 1588 management messages ptp4l does, and adds what a hostile or odd peer may send: short
// datagrams, an error status, two ports answering (a boundary clock), silence, and a step.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/engine/ptp_clock.hpp>

#include <atomic>
#include <array>
#include <chrono>
#include <cstring>
#include <ctime>
#include <string>
#include <thread>
#include <vector>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace {

using namespace std::chrono_literals;
using sluice::engine::PtpClock;
using sluice::engine::PtpOptions;

std::int64_t tai_now() {
    timespec t{};
    ::clock_gettime(CLOCK_TAI, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

std::int64_t steady_now() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

void put_be(std::uint8_t* p, std::uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i, v >>= 8) p[i] = std::uint8_t(v);
}

// Answers GETs of TIME_STATUS_NP and PORT_DATA_SET on a datagram socket at `path`, as ptp4l does.
class FakePtp4l {
public:
    explicit FakePtp4l(const std::string& path) : path_(path) {
        fd_ = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        timeval tv{0, 50'000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        thread_ = std::thread([this] { serve(); });
    }
    ~FakePtp4l() {
        stop_ = true;
        thread_.join();
        ::close(fd_);
        ::unlink(path_.c_str());
    }
    std::atomic<std::int64_t> offset_ns{5'000'000'000};  // local minus grandmaster
    std::atomic<bool> silent{false};
    std::atomic<int> gets{0};

private:
    void serve() {
        std::array<std::uint8_t, 1500> in{};
        while (!stop_) {
            sockaddr_un from{};
            socklen_t len = sizeof from;
            const ssize_t n = ::recvfrom(fd_, in.data(), in.size(), 0, reinterpret_cast<sockaddr*>(&from), &len);
            if (n < 54 || silent) continue;
            ++gets;
            const auto id = std::uint16_t(in[52] << 8 | in[53]);
            auto send = [&](const std::vector<std::uint8_t>& m) {
                ::sendto(fd_, m.data(), m.size(), 0, reinterpret_cast<sockaddr*>(&from), len);
            };
            // Noise first: a datagram too short to be anything, and an error status for the id.
            send({0x0D, 0x02, 0x00});
            std::vector<std::uint8_t> error = reply(id, 8);
            put_be(error.data() + 48, 0x0002, 2);  // MANAGEMENT_ERROR_STATUS
            send(error);
            if (id == 0xC000) {  // TIME_STATUS_NP
                std::vector<std::uint8_t> m = reply(id, 50);
                std::uint8_t* d = m.data() + 54;
                put_be(d, std::uint64_t(offset_ns.load()), 8);
                put_be(d + 8, std::uint64_t(tai_now()), 8);  // ingress time: a sync came
                put_be(d + 38, 1, 4);                        // gmPresent
                for (int i = 0; i < 8; ++i) d[42 + i] = std::uint8_t(0xA0 + i);  // the grandmaster
                send(m);
            } else if (id == 0x2004) {  // PORT_DATA_SET: a boundary clock, port 1 leads, port 2 follows
                for (int port : {1, 2}) {
                    std::vector<std::uint8_t> m = reply(id, 26);
                    put_be(m.data() + 54 + 8, std::uint64_t(port), 2);
                    m[54 + 10] = port == 1 ? 6 /* MASTER */ : 9 /* SLAVE */;
                    send(m);
                }
            }
        }
    }
    // A RESPONSE header and management TLV for `id` with `data` bytes of zeros.
    static std::vector<std::uint8_t> reply(std::uint16_t id, std::size_t data) {
        std::vector<std::uint8_t> m(54 + data, 0);
        m[0] = 0x0D;
        m[1] = 0x02;
        put_be(m.data() + 2, m.size(), 2);
        for (int i = 0; i < 8; ++i) m[20 + i] = std::uint8_t(0x10 + i);  // this clock's identity
        m[32] = 0x04;
        m[46] = 0x02;  // RESPONSE
        put_be(m.data() + 48, 0x0001, 2);
        put_be(m.data() + 50, 2 + data, 2);
        put_be(m.data() + 52, id, 2);
        return m;
    }

    std::string path_;
    int fd_ = -1;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

}  // namespace

TEST_CASE("PtpClock.Offset.PtpTimeIsTheLocalClockLessTheOffset" * doctest::timeout(60)) {
    test::TempDir dir;
    FakePtp4l ptp4l(dir / "ptp4l");
    std::unique_ptr<PtpClock> clock;
    const sluice::Status opened = PtpClock::open({.socket = dir / "ptp4l", .wait = 5s}, clock);
    INFO(opened.message());
    REQUIRE(opened.ok());

    // This machine is 5 s ahead of the grandmaster: PTP time is 5 s behind its CLOCK_TAI. The
    // error status and the short datagram were passed over; of the two ports, the follower
    // speaks for the clock.
    CHECK(double(tai_now() - clock->tai_ns()) / 1e9 == doctest::Approx(5.0).epsilon(0.002));
    auto state = clock->state();
    CHECK(state.offset_ns == 5'000'000'000);
    CHECK(state.port_state == "SLAVE");
    CHECK(state.grandmaster == "a0a1a2.a3a4.a5a6a7");
    CHECK_FALSE(state.grandmaster_here);
    CHECK_FALSE(state.holdover);

    // The graph's clock follows PTP's pace, from the steady clock's time at the first count.
    const std::int64_t device_before = clock->device_time().now_ns() - steady_now();
    CHECK(std::llabs(device_before) < 50'000'000);

    // A step (the grandmaster changed; this clock is now right on it): PTP time jumps 5 s, the
    // graph's running time does not.
    ptp4l.offset_ns = 0;
    REQUIRE(test::eventually([&] { return clock->state().offset_ns == 0; }, 5s));
    CHECK(std::llabs(tai_now() - clock->tai_ns()) < 50'000'000);
    std::this_thread::sleep_for(300ms);
    CHECK(std::llabs(clock->device_time().now_ns() - steady_now()) < 50'000'000);

    // ptp4l falls silent: the last offset holds, and the state says so.
    ptp4l.offset_ns = 2'000'000'000;
    REQUIRE(test::eventually([&] { return clock->state().offset_ns == 2'000'000'000; }, 5s));
    ptp4l.silent = true;
    REQUIRE(test::eventually([&] { return clock->state().holdover; }, 5s));
    CHECK(clock->state().silences > 0);
    CHECK(double(tai_now() - clock->tai_ns()) / 1e9 == doctest::Approx(2.0).epsilon(0.005));
    // It answers again: holdover ends.
    ptp4l.silent = false;
    CHECK(test::eventually([&] { return !clock->state().holdover; }, 5s));
}

TEST_CASE("PtpClock.Refusals.OneLine" * doctest::timeout(60)) {
    test::TempDir dir;
    std::unique_ptr<PtpClock> clock;
    // A socket that never answers: "does not answer", after the wait.
    {
        const std::string path = dir / "mute";
        const int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
        sockaddr_un a{};
        a.sun_family = AF_UNIX;
        std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
        const sluice::Status st = PtpClock::open({.socket = path, .domain = 3, .wait = 600ms}, clock);
        ::close(fd);
        CHECK_FALSE(st.ok());
        CHECK(st.message() == "PTP clock: ptp4l at " + path + " does not answer (is its domainNumber 3?)");
        CHECK(clock == nullptr);
    }
    const sluice::Status bad_domain = PtpClock::open({.socket = dir / "x", .domain = 256}, clock);
    CHECK(bad_domain.message() == "PTP clock: domain 256 is not 0 to 255");
    const sluice::Status bad_poll = PtpClock::open({.socket = dir / "x", .poll = 0ms}, clock);
    CHECK(bad_poll.message() == "PTP clock: poll and wait intervals must be positive");
    const sluice::Status long_path = PtpClock::open({.socket = std::string(200, 'p')}, clock);
    CHECK(long_path.message().starts_with("PTP clock: 'ppp"));
}

// SPDX-License-Identifier: MIT
// RTCP sync (issue #15): audio and video of one sender reach the receivers by paths of different
// delay (the audio and its RTCP through a relay that holds each datagram 120 ms, as a slow link
// would). With sender reports, both receivers place what was sent at one instant at one running
// time; without them (rtcp=false) they are as far apart as the paths. The samples carry their
// own position (audio: each frame's value is its index; video: each picture's luma is its
// number), so the skew is measured on the media itself.
#include "rtp_support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <deque>
#include <thread>
#include <vector>

#include <poll.h>

using namespace std::chrono_literals;
using sluice::Status;
using sluice::engine::Graph;

namespace {

constexpr int kRate = 48000, kFrames = 240, kFps = 25, kWidth = 64, kHeight = 48;
constexpr std::int64_t kRelayDelayNs = 120'000'000;

std::int64_t steady_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int bound_socket(int port) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    return fd;
}

// Forwards what comes to ports `from` and `from + 1` (RTP and RTCP) to `to` and `to + 1`, each
// datagram `kRelayDelayNs` after it came, in order.
class Relay {
public:
    Relay(int from, int to) : to_(to) {
        in_[0] = bound_socket(from);
        in_[1] = bound_socket(from + 1);
        out_ = ::socket(AF_INET, SOCK_DGRAM, 0);
        thread_ = std::thread([this] { run(); });
    }
    ~Relay() {
        done_.store(true, std::memory_order_relaxed);  // relaxed: a flag alone; join() orders the rest
        thread_.join();
        for (int fd : {in_[0], in_[1], out_}) ::close(fd);
    }

private:
    struct Held {
        std::int64_t due;
        int port;
        std::vector<std::uint8_t> bytes;
    };
    void run() {
        std::deque<Held> held;
        std::uint8_t buffer[65536];
        while (!done_.load(std::memory_order_relaxed)) {  // relaxed: see ~Relay
            pollfd p[2] = {{in_[0], POLLIN, 0}, {in_[1], POLLIN, 0}};
            (void)::poll(p, 2, 1);
            for (int i = 0; i < 2; ++i)
                if (p[i].revents & POLLIN) {
                    const ssize_t n = ::recv(in_[i], buffer, sizeof buffer, 0);
                    if (n >= 0) held.push_back({steady_ns() + kRelayDelayNs, to_ + i, {buffer, buffer + n}});
                }
            while (!held.empty() && held.front().due <= steady_ns()) {
                sockaddr_in a{};
                a.sin_family = AF_INET;
                a.sin_port = htons(std::uint16_t(held.front().port));
                a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
                (void)::sendto(out_, held.front().bytes.data(), held.front().bytes.size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
                held.pop_front();
            }
        }
    }
    int to_;
    int in_[2] = {-1, -1};
    int out_ = -1;
    std::atomic<bool> done_{false};
    std::thread thread_;
};

std::int32_t s24_at(const std::byte* p) {
    std::int32_t v = std::int32_t(std::uint8_t(p[0])) | std::int32_t(std::uint8_t(p[1])) << 8 | std::int32_t(std::uint8_t(p[2])) << 16;
    return (v & 0x800000) ? v - 0x1000000 : v;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

// The receivers' skew in ms: where they placed audio minus where they placed video, for media
// sent at one instant. `late_join`: the receivers start 1.5 s into the stream (so they anchor by
// arrival before the first report comes), and the skew is taken over their last second.
double measure_skew(bool rtcp, bool late_join, std::uint64_t& synced) {
    const int seconds = late_join ? 5 : 2;
    const std::size_t audio_wanted = late_join ? 500 : 200, video_wanted = late_join ? 60 : 20;
    const int relay_in = test::random_port() & ~1, audio = relay_in + 2, video = relay_in + 4;
    const std::string rtcp_on = rtcp ? " rtcp=true" : " rtcp=false";
    Graph rx;
    Status st = sluice::nodes::build_pipeline(
        rx, "rtpsrc name=a port=" + std::to_string(audio) + " encoding=L24 rate=48000 channels=1 latency=300" + rtcp_on +
                " ! appsink name=ao max-buffers=1000  rtpvrawsrc name=v port=" + std::to_string(video) +
                " width=64 height=48 fps=25 latency=300" + rtcp_on + " ! appsink name=vo max-buffers=100");
    REQUIRE_MESSAGE(st.ok(), st.message());
    Graph tx;
    st = sluice::nodes::build_pipeline(
        tx, "appsrc name=ai format=s24 rate=48000 channels=1 frames=240 ! rtpsink port=" + std::to_string(relay_in) +
                " encoding=L24" + rtcp_on + "  appsrc name=vi format=i420 width=64 height=48 fps=25 ! rtpvrawsink port=" +
                std::to_string(video) + rtcp_on);
    REQUIRE_MESSAGE(st.ok(), st.message());
    Relay relay(relay_in, audio);
    if (!late_join) REQUIRE(rx.run());
    REQUIRE(tx.run());
    auto* ai = sluice::nodes::appsrc(tx, "ai");
    auto* vi = sluice::nodes::appsrc(tx, "vi");
    // Frame n of the audio is the value n, picture k is all luma 16 + k.
    std::thread audio_feed([&] {
        std::vector<std::byte> buffer(kFrames * 3);
        for (int n = 0; n < seconds * kRate; n += kFrames) {
            for (int i = 0; i < kFrames; ++i)
                for (int b = 0; b < 3; ++b) buffer[std::size_t(3 * i + b)] = std::byte(std::uint8_t((n + i) >> (8 * b)));
            if (!ai->push(buffer, sluice::kNoTime, 5s).ok()) return;
        }
        (void)ai->end_of_stream();
    });
    std::thread video_feed([&] {
        std::vector<std::byte> picture(std::size_t(kWidth * kHeight * 3 / 2), std::byte(128));
        for (int k = 0; k < seconds * kFps; ++k) {
            std::fill(picture.begin(), picture.begin() + kWidth * kHeight, std::byte(std::uint8_t(16 + k)));
            if (!vi->push(picture, sluice::kNoTime, 5s).ok()) return;
        }
        (void)vi->end_of_stream();
    });
    // Where each receiver placed media that was sent at media time t: start time - t.
    std::vector<double> audio_offsets, video_offsets;
    if (late_join) {
        std::this_thread::sleep_for(1500ms);
        REQUIRE(rx.run());
    }
    std::thread audio_pull([&] {
        auto* ao = sluice::nodes::appsink(rx, "ao");
        while (audio_offsets.size() < audio_wanted) {
            auto s = ao->pull(3s);
            if (!s) return;
            if (s->size() < 3) continue;
            const std::int32_t frame = s24_at(s->data());
            if (frame <= 0) continue;  // silence (a gap), or the first frame, which is 0 anyway
            audio_offsets.push_back(double(s->start_time()) / 1e6 - double(frame) * 1000.0 / kRate);
        }
    });
    std::thread video_pull([&] {
        auto* vo = sluice::nodes::appsink(rx, "vo");
        while (video_offsets.size() < video_wanted) {
            auto s = vo->pull(3s);
            if (!s) return;
            const int k = int(std::uint8_t(s->data()[0])) - 16;
            if (k < 0 || k >= seconds * kFps) continue;  // a picture painted black: incomplete
            video_offsets.push_back(double(s->start_time()) / 1e6 - double(k) * 1000.0 / kFps);
        }
    });
    audio_pull.join();
    video_pull.join();
    (void)tx.stop();
    audio_feed.join();
    video_feed.join();
    synced = test::extra(rx, "a", "rtcp_synced") + test::extra(rx, "v", "rtcp_synced");
    (void)rx.stop();
    REQUIRE(audio_offsets.size() == audio_wanted);
    REQUIRE(video_offsets.size() == video_wanted);
    // The last 200 packets (1 s) and 20 pictures (0.8 s).
    audio_offsets.erase(audio_offsets.begin(), audio_offsets.end() - 200);
    video_offsets.erase(video_offsets.begin(), video_offsets.end() - 20);
    return median(audio_offsets) - median(video_offsets);
}

// The skew measured without RTCP and with sender reports, reported after `says`: no line is
// placed by a report without them, at least `min_synced` lines are with them. Without reports the
// skew is the paths' difference; with them, what is left is the 90 kHz and packet rounding and
// the tolerance before a line moves.
void check_skew_without_and_with_reports(bool late_join, const std::string& says, std::uint64_t min_synced) {
    std::uint64_t synced_without = 0, synced_with = 0;
    const double without = measure_skew(false, late_join, synced_without);
    const double with = measure_skew(true, late_join, synced_with);
    MESSAGE(says << without << " ms without RTCP, " << with << " ms with sender reports");
    CHECK(synced_without == 0);
    CHECK(synced_with >= min_synced);
    CHECK(without > 100);
    CHECK(std::abs(with) < 10);
}

}  // namespace

TEST_CASE("Rtcp.Sync.AudioAndVideoOverPathsOfDifferentDelay" * doctest::timeout(60)) {
    // Both lines placed by a sender report.
    check_skew_without_and_with_reports(false, "audio 120 ms behind video on the way: receivers' skew ", 2);
}

// Receivers that join running streams anchor by arrival, before the first report: the reports
// that come then move their lines (audio back: what has had its time is skipped).
TEST_CASE("Rtcp.Sync.ReceiversThatJoinARunningStream" * doctest::timeout(60)) {
    check_skew_without_and_with_reports(true, "joining 1.5 s in, audio 120 ms behind on the way: skew ", 1);
}

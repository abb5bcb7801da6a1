// SPDX-License-Identifier: MIT
// AES67 / ST 2110-30 audio (issue #15): L24 at 48 kHz in 1 ms packets, RTP time taken from the
// reference clock, the SDP's clock lines. Interop on loopback with ffmpeg both ways and with
// GStreamer's sdpdemux + rtpL24depay; media compared sample for sample with what was sent.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

using namespace test::shell;  // quote, read_file, run, TempDir, wait_for_file

int random_port() { return test::random_rtp_port(30000); }

const std::string kPlayer = SLUICE_PLAY_PATH;

// The samples of a 24-bit PCM file's first channel as 24-bit integers (through ffmpeg; the
// float path of test::decode_mono holds 24 bits exactly, and integers say so plainly).
std::vector<std::int32_t> first_channel_s24(const std::string& path) {
    const auto f = test::decode_mono(path);
    std::vector<std::int32_t> out(f.size());
    for (std::size_t i = 0; i < f.size(); ++i) out[i] = std::int32_t(std::lround(double(f[i]) * 8388608.0));
    return out;
}

// Where `part` lies inside `whole` exactly (its first 512 samples match there and then all of
// it), or -1.
long find_exact(const std::vector<std::int32_t>& whole, const std::vector<std::int32_t>& part) {
    if (part.size() < 512) return -1;
    for (std::size_t at = 0; at + part.size() <= whole.size(); ++at)
        if (std::equal(part.begin(), part.begin() + 512, whole.begin() + long(at)) &&
            std::equal(part.begin(), part.end(), whole.begin() + long(at)))
            return long(at);
    return -1;
}

std::int64_t tai_now_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_TAI, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

struct Arrival {
    std::int64_t tai_ns;
    std::uint32_t timestamp;
    std::size_t payload;
};

// The first `count` RTP packets to arrive on `port` (loopback), with when they came.
std::vector<Arrival> capture(int port, std::size_t count, std::chrono::seconds limit) {
    std::vector<Arrival> got;
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(std::uint16_t(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) return got;
    const auto until = std::chrono::steady_clock::now() + limit;
    std::uint8_t packet[2048];
    while (got.size() < count && std::chrono::steady_clock::now() < until) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 100) != 1) continue;
        const ssize_t n = ::recv(fd, packet, sizeof packet, 0);
        if (n < 12) continue;
        const std::uint32_t ts = std::uint32_t(packet[4]) << 24 | std::uint32_t(packet[5]) << 16 |
                                 std::uint32_t(packet[6]) << 8 | packet[7];
        got.push_back({tai_now_ns(), ts, std::size_t(n - 12)});
    }
    ::close(fd);
    return got;
}

}  // namespace

TEST_CASE("Aes67.Sender.OneMillisecondPacketsStampedFromTaiAndDescribed" * doctest::timeout(60)) {
    TempDir dir;
    const int port = random_port();
    const std::string sdp = dir / "aes67.sdp";
    std::vector<Arrival> got;
    std::thread receiver([&] { got = capture(port, 1000, std::chrono::seconds(20)); });
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    // 1024-frame buffers: 21 packets and a third each, so whole packets must span buffers.
    auto tx = run(kPlayer + " -q --duration 1.5 " +
                  quote("tone format=s24 channels=8 ! rtpsink profile=aes67 port=" + std::to_string(port) + " sdp=" + sdp));
    receiver.join();
    INFO(tx.output);
    REQUIRE(tx.exit_code == 0);
    const std::string text = read_file(sdp);
    INFO(text);
    for (const char* line : {"m=audio ", "a=rtpmap:96 L24/48000/8\r\n", "a=ptime:1\r\n", "a=ts-refclk:local\r\n",
                             "a=mediaclk:direct=0\r\n"})
        CHECK(text.find(line) != std::string::npos);
    REQUIRE(got.size() == 1000);
    // Every packet is 1 ms: 48 frames of 8 channels of 3 bytes, and 48 ticks after the one before.
    std::size_t whole = 0, in_step = 0, bunched = 0;
    for (std::size_t i = 0; i < got.size(); ++i) {
        whole += got[i].payload == 48 * 8 * 3;
        if (i > 0) {
            in_step += got[i].timestamp - got[i - 1].timestamp == 48;
            bunched += got[i].tai_ns - got[i - 1].tai_ns < 300'000;
        }
    }
    CHECK(whole == got.size());
    CHECK(in_step == got.size() - 1);
    // Paced, not a burst per buffer: bursts of 21 would put 20 of every 21 gaps near zero.
    CHECK(bunched < got.size() / 2);
    // RTP time is CLOCK_TAI at 48 kHz: a packet arrives (on loopback) a little after its time,
    // never before it, and never by more than the sender's scheduling delay (generous here).
    std::int64_t worst = INT64_MIN, best = INT64_MAX;
    for (const Arrival& a : got) {
        const std::uint32_t now_ticks = std::uint32_t(__int128(a.tai_ns) * 48000 / 1'000'000'000);
        const std::int64_t behind = std::int32_t(now_ticks - a.timestamp);  // ticks the packet came after its time
        worst = std::max(worst, behind);
        best = std::min(best, behind);
    }
    MESSAGE("packets arrived " << best / 48.0 << " to " << worst / 48.0 << " ms after their RTP time read as TAI");
    CHECK(best >= -48);          // not before its time (a tick's rounding aside)
    CHECK(worst < 48000 / 4);    // within 250 ms of it
}

TEST_CASE("Aes67.Interop.SluiceSendsFfmpegAndGStreamerReceiveL24SampleExact" * doctest::timeout(120)) {
    TempDir dir;
    // The same tone into a 24-bit file, for reference: a stream is that tone from wherever the
    // receiver joined. freq=441 at 0.9: 24-bit values that 16 bits could not hold.
    const std::string tone = "tone format=s24 freq=441 amplitude=0.9 channels=2";
    REQUIRE(run(kPlayer + " -q --duration 6 " + quote(tone + " ! wavsink path=" + dir / "ref.wav")).exit_code == 0);
    const auto ref = first_channel_s24(dir / "ref.wav");
    REQUIRE(ref.size() == 6 * 48000);
    std::size_t low_byte_used = 0;
    for (const std::int32_t v : ref) low_byte_used += (v & 0xFF) != 0;
    REQUIRE(low_byte_used > ref.size() / 2);  // the reference does use 24 bits
    for (const bool gstreamer : {false, true}) {
        CAPTURE(gstreamer);
        const int port = random_port();
        const std::string sdp = dir / (gstreamer ? "gst.sdp" : "ffmpeg.sdp");
        const std::string out = dir / (gstreamer ? "gst.wav" : "ffmpeg.wav");
        test::CommandResult tx;
        std::thread sender([&] {
            tx = run(kPlayer + " -q --duration 4 " +
                     quote(tone + " ! rtpsink profile=aes67 port=" + std::to_string(port) + " sdp=" + sdp));
        });
        if (!wait_for_file(sdp)) {  // a joinable thread must not meet REQUIRE's throw
            sender.join();
            FAIL("no SDP was written: " << tx.output);
        }
        auto rx = gstreamer ? run("timeout 20 gst-launch-1.0 -q filesrc location=" + quote(sdp) +
                                  " ! sdpdemux latency=100 ! rtpL24depay ! identity eos-after=1500 ! audioconvert ! "
                                  "audio/x-raw,format=S24LE ! wavenc ! filesink location=" + quote(out))
                            : run("timeout 20 ffmpeg -v error -protocol_whitelist file,udp,rtp -i " + quote(sdp) +
                                  " -t 1.5 -c:a pcm_s24le " + quote(out));
        sender.join();
        INFO(rx.output);
        INFO(tx.output);
        REQUIRE(rx.exit_code == 0);
        REQUIRE(tx.exit_code == 0);
        auto got = first_channel_s24(out);
        REQUIRE(got.size() >= 48000);
        const long at = find_exact(ref, got);
        CHECK(at >= 0);
        MESSAGE(std::string(gstreamer ? "GStreamer sdpdemux + rtpL24depay" : "ffmpeg") << " received " << got.size()
                << " samples, identical to the 24-bit tone sent from sample " << at);
    }
}

TEST_CASE("Aes67.Interop.FfmpegSendsL24SluiceReceivesFromItsSdpAlone" * doctest::timeout(120)) {
    TempDir dir;
    const int port = random_port();
    const std::string sdp = dir / "ffmpeg.sdp";
    const std::string source = "aevalsrc=0.7*sin(2*PI*440*t):s=48000:d=6";
    REQUIRE(run("ffmpeg -v error -f lavfi -i " + quote(source) + " -ac 1 -c:a pcm_s24le " + quote(dir / "ref.wav")).exit_code == 0);
    test::CommandResult tx;
    std::thread sender([&] {
        tx = run("timeout 30 ffmpeg -v error -re -f lavfi -i " + quote(source) +
                 " -ac 1 -c:a pcm_s24be -f rtp -sdp_file " + quote(sdp) + " rtp://127.0.0.1:" + std::to_string(port));
    });
    if (!wait_for_file(sdp)) {  // a joinable thread must not meet REQUIRE's throw
        sender.join();
        FAIL("no SDP was written: " << tx.output);
    }
    auto rx = run(kPlayer + " -q " + quote("rtpsrc sdp=" + sdp + " timeout=1500 ! wavsink path=" + dir / "rx.wav"));
    sender.join();
    INFO(read_file(sdp));
    INFO(rx.output);
    REQUIRE(rx.exit_code == 0);
    auto probe = run("ffprobe -v error -show_entries stream=channels,sample_rate,bits_per_sample -of csv=p=0 " +
                     quote(dir / "rx.wav"));
    CHECK(probe.output == "48000,1,24\n");
    const auto ref = first_channel_s24(dir / "ref.wav");
    auto got = first_channel_s24(dir / "rx.wav");
    REQUIRE(got.size() > 48000 * 4);
    // Trim the silence the receiver plays before the first packet and after the timeout.
    const auto first = std::find_if(got.begin(), got.end(), [](std::int32_t v) { return v != 0; });
    got.erase(got.begin(), first);
    REQUIRE(got.size() > 48000 * 3);
    got.resize(48000 * 3);
    const long at = find_exact(ref, got);
    CHECK(at >= 0);
    MESSAGE("Sluice received 3 s from ffmpeg's L24 stream identical to what ffmpeg sent, from sample " << at);
}

TEST_CASE("Aes67.RoundTrip.EightChannelsThroughSluiceAreExact" * doctest::timeout(60)) {
    TempDir dir;
    const int port = random_port();
    const std::string sdp = dir / "tx.sdp";
    const std::string tone = "tone format=s24 freq=997 amplitude=0.8 channels=8";
    REQUIRE(run(kPlayer + " -q --duration 5 " + quote(tone + " ! wavsink path=" + dir / "ref.wav")).exit_code == 0);
    test::CommandResult tx;
    std::thread sender([&] {
        tx = run(kPlayer + " -q --duration 4 " + quote(tone + " ! rtpsink profile=aes67 port=" + std::to_string(port) + " sdp=" + sdp));
    });
    if (!wait_for_file(sdp)) {  // a joinable thread must not meet REQUIRE's throw
        sender.join();
        FAIL("no SDP was written: " << tx.output);
    }
    // This compares a second sample for sample, so nothing may move the stream's line: no RTCP
    // (a receiver joining mid-stream may move it once by the first sender report: a skip, see
    // test_sdp.cpp) and a jitter buffer deep enough for a sanitizer build's stalls (a packet later
    // than latency= becomes silence). CI's ThreadSanitizer stage failed here once with neither.
    auto rx = run(kPlayer + " -q --duration 2 --stats-json " + quote(dir / "s.json") + " " +
                  quote("rtpsrc sdp=" + sdp + " rtcp=false latency=300 ! wavsink path=" + dir / "rx.wav"));
    sender.join();
    INFO(rx.output);
    REQUIRE(rx.exit_code == 0);
    REQUIRE(tx.exit_code == 0);
    auto probe = run("ffprobe -v error -show_entries stream=channels,sample_rate,bits_per_sample -of csv=p=0 " +
                     quote(dir / "rx.wav"));
    CHECK(probe.output == "48000,8,24\n");
    const auto stats = nlohmann::json::parse(read_file(dir / "s.json"));
    CHECK(stats["nodes"]["rtpsrc0"]["packets_lost"] == 0);
    INFO("receiver's counts: " << stats["nodes"]["rtpsrc0"].dump());
    auto got = first_channel_s24(dir / "rx.wav");
    const auto first = std::find_if(got.begin(), got.end(), [](std::int32_t v) { return v != 0; });
    got.erase(got.begin(), first);
    REQUIRE(got.size() > 48000);
    got.resize(48000);
    CHECK(find_exact(first_channel_s24(dir / "ref.wav"), got) >= 0);
}

TEST_CASE("Aes67.BadSettings.OneLineExitTwo") {
    for (const auto& [pipeline, why] : std::vector<std::pair<std::string, std::string>>{
             {"tone format=s24 channels=10 ! rtpsink profile=aes67", "at most 8 channels, not 10"},
             {"tone format=s24 rate=44100 ! rtpsink encoding=L24 ptime=0.3", "not a whole number of frames at 44100 Hz"},
             {"tone format=s24 channels=8 ! rtpsink encoding=L24 ptime=10", "more than mtu=1400"},
             {"tone ! rtpsink encoding=L20", "encoding"},
             {"tone ! rtpsink profile=aes76", "profile"},
             {"tone format=s24 rate=44100 ! rtpsink profile=aes67", "48000"},
             {"tone ! rtpsink encoding=L24", "s24"}}) {
        auto r = run(kPlayer + " -q --duration 0.1 " + quote(pipeline));
        INFO(pipeline);
        test::check_refused(r, why);
    }
}

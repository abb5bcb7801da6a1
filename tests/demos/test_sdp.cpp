// SPDX-License-Identifier: MIT
// SDP interop on loopback (issue #15): what Sluice sends with the description it writes is
// received by ffmpeg (audio) and GStreamer's sdpdemux (video), and what ffmpeg sends with the
// description it writes (-sdp_file) is received by Sluice configured from it alone. Media
// compared with what was sent: audio sample for sample, pictures byte for byte.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace test::shell;  // quote, read_file, run, TempDir, wait_for_file

int random_port() { return test::random_rtp_port(20000); }

const std::string kPlayer = SLUICE_PLAY_PATH;

// sluice-play sending `pipeline` for 4 s, on a thread of its own while the test receives.
test::Background send_for_4s(const std::string& pipeline) { return test::Background(kPlayer + " -q --duration 4 " + quote(pipeline)); }

// Where `part` starts inside `whole`: among the places where its first 256 samples match
// exactly, the one where most of it matches (a tone nearly repeats every few thousand samples,
// so a short window can match one period off; ffmpeg's 440 Hz at 44.1 kHz then differs by 1 LSB
// here and there); -1 if nowhere.
long find_exact(const std::vector<float>& whole, const std::vector<float>& part) {
    if (part.size() < 256) return -1;
    long best = -1;
    std::size_t best_equal = 0;
    for (std::size_t at = 0; at + 256 <= whole.size(); ++at) {
        if (!std::equal(part.begin(), part.begin() + 256, whole.begin() + long(at))) continue;
        std::size_t equal = 0;
        for (std::size_t i = 0; i < part.size() && at + i < whole.size(); ++i) equal += part[i] == whole[at + i];
        if (best < 0 || equal > best_equal) {
            best = long(at);
            best_equal = equal;
        }
    }
    return best;
}

}  // namespace

TEST_CASE("Sdp.Audio.SluiceSendsFfmpegReceivesSampleExact" * doctest::timeout(120)) {
    TempDir dir;
    const int port = random_port();
    // The same tone into a file, for reference: the stream is that tone from wherever ffmpeg joined.
    REQUIRE(run(kPlayer + " -q --duration 5 " + quote("tone freq=441 channels=2 ! wavsink path=" + dir / "ref.wav")).exit_code == 0);
    const std::string sdp = dir / "tx.sdp";
    auto sender = send_for_4s("tone freq=441 channels=2 ! rtpsink port=" + std::to_string(port) + " sdp=" + sdp);
    REQUIRE(wait_for_file(sdp));
    const std::string text = read_file(sdp);
    INFO(text);
    CHECK(text.find("a=rtpmap:96 L16/48000/2\r\n") != std::string::npos);
    CHECK(text.find("m=audio " + std::to_string(port) + " RTP/AVP 96\r\n") != std::string::npos);
    auto rx = run("timeout 20 ffmpeg -v error -protocol_whitelist file,udp,rtp -i " + quote(sdp) + " -t 1.5 -c:a pcm_s16le " +
                  quote(dir / "rx.wav"));
    const auto& tx = sender.join();
    INFO(rx.output);
    INFO(tx.output);
    REQUIRE(rx.exit_code == 0);
    REQUIRE(tx.exit_code == 0);
    const auto ref = test::decode_mono(dir / "ref.wav");
    const auto got = test::decode_mono(dir / "rx.wav");
    REQUIRE(got.size() == 72000);  // 1.5 s at 48 kHz, as the SDP said
    const long at = find_exact(ref, got);
    REQUIRE(at >= 0);
    CHECK(std::equal(got.begin(), got.end(), ref.begin() + at));
    MESSAGE("ffmpeg joined at sample " << at << " and received 72000 samples identical to the tone sent");
}

TEST_CASE("Sdp.Audio.FfmpegSendsSluiceReceivesFromItsSdpAlone" * doctest::timeout(120)) {
    TempDir dir;
    const int port = random_port();
    const std::string sdp = dir / "ffmpeg.sdp";
    // Mono at 44.1 kHz: neither is rtpsrc's default, so only the SDP can get them right (ffmpeg's
    // 2 s of mono once came out as 1 s of stereo).
    REQUIRE(run("ffmpeg -v error -f lavfi -i sine=frequency=440:sample_rate=44100:duration=6 -ac 1 -f s16le -c:a pcm_s16le " +
                quote(dir / "ref.raw")).exit_code == 0);
    test::Background sender("timeout 30 ffmpeg -v error -re -f lavfi -i sine=frequency=440:sample_rate=44100:duration=6 -ac 1 "
                            "-c:a pcm_s16be -f rtp -sdp_file " + quote(sdp) + " rtp://127.0.0.1:" + std::to_string(port));
    REQUIRE(wait_for_file(sdp));
    // rtcp=false: this compares every sample. A receiver that joins ffmpeg's stream after its
    // first sender report anchors by arrival, and ffmpeg's next report (5 s on) places the stream
    // tens of ms away (its reports stamp wall-clock time, its packets -re's media time): RTCP sync
    // then moves the line once, a skip flagged as a discontinuity (tests/demos/test_rtcp.cpp).
    auto rx = run(kPlayer + " -q --stats-json " + quote(dir / "s.json") + " " +
                  quote("rtpsrc sdp=" + sdp + " rtcp=false timeout=1500 ! wavsink path=" + dir / "rx.wav"));
    sender.join();
    INFO(read_file(sdp));
    INFO(rx.output);
    REQUIRE(rx.exit_code == 0);
    auto probe = run("ffprobe -v error -show_entries stream=channels,sample_rate -of csv=p=0 " + quote(dir / "rx.wav"));
    CHECK(probe.output == "44100,1\n");
    // The samples: ffmpeg's sine from wherever Sluice joined, identical.
    const std::string raw = read_file(dir / "ref.raw");
    std::vector<float> ref(raw.size() / 2);
    for (std::size_t i = 0; i < ref.size(); ++i)
        ref[i] = float(std::int16_t(std::uint16_t(std::uint8_t(raw[2 * i])) | std::uint16_t(std::uint8_t(raw[2 * i + 1])) << 8)) / 32768.0f;
    auto got = test::decode_mono(dir / "rx.wav");
    // Past the first discontinuity, before the last packets (the timeout's tail is silence).
    REQUIRE(got.size() > 44100 * 4);
    const long at = find_exact(ref, got);
    REQUIRE(at >= 0);
    const std::size_t n = std::min(got.size(), ref.size() - std::size_t(at));
    std::size_t same = 0, first_bad = n;
    for (std::size_t i = 0; i < n; ++i) {
        const bool equal = got[i] == ref[std::size_t(at) + i];
        same += equal;
        if (!equal && first_bad == n) first_bad = i;
    }
    // On a loaded machine a packet may come too late for the jitter buffer (its frames become
    // silence, counted); every sample of the others must be ffmpeg's.
    std::ifstream stats_file(dir / "s.json");
    const auto stats = nlohmann::json::parse(stats_file)["nodes"]["rtpsrc0"];
    const std::uint64_t gaps = stats["packets_lost"].get<std::uint64_t>() + stats["packets_late"].get<std::uint64_t>();
    // ffmpeg's packets of 44.1 kHz mono L16 hold at most 1400 / 2 samples.
    CHECK_MESSAGE(n - same <= gaps * 700, "first difference at sample " << first_bad << " of " << n << " (" << got.size()
                                                                        << " received, " << gaps << " packets lost or late)");
    if (gaps == 0) CHECK(same == n);
    MESSAGE("Sluice joined ffmpeg's stream at sample " << at << "; " << same << " of " << n << " samples identical");
}

namespace {
// The pictures videotest makes at 320x240, in order.
std::vector<std::string> reference_pictures(const TempDir& dir, int count) {
    const std::string y4m = dir / "ref.y4m";
    REQUIRE(run(kPlayer + " -q " + quote("videotest width=320 height=240 num-buffers=" + std::to_string(count) +
                                         " ! y4msink path=" + y4m)).exit_code == 0);
    const std::string ref = read_file(y4m);
    const std::size_t picture = 320 * 240 * 3 / 2;
    std::vector<std::string> sent;
    for (std::size_t at = ref.find("FRAME\n"); at != std::string::npos && at + 6 + picture <= ref.size();
         at = ref.find("FRAME\n", at + 6 + picture))
        sent.push_back(ref.substr(at + 6, picture));
    return sent;
}

// How many of the pictures in `file` are among `sent`, and whether they follow one another.
std::pair<std::size_t, bool> count_sent(const std::string& file, const std::vector<std::string>& sent, std::size_t& pictures) {
    const std::size_t picture = 320 * 240 * 3 / 2;
    const std::string got = read_file(file);
    pictures = got.size() / picture;
    std::size_t found = 0;
    bool in_order = true;
    long previous = -1;
    for (std::size_t i = 0; i < pictures; ++i) {
        const std::string p = got.substr(i * picture, picture);
        long index = -1;
        for (std::size_t k = 0; k < sent.size() && index < 0; ++k)
            if (sent[k] == p) index = long(k);
        if (index < 0) continue;
        ++found;
        in_order = in_order && (previous < 0 || index == previous + 1);
        previous = index;
    }
    return {found, in_order};
}
}  // namespace

// RFC 4175 YCbCr-4:2:0 with the SDP Sluice writes: GStreamer's sdpdemux and rtpvrawdepay receive
// every picture byte for byte. ffmpeg 5.1 receives the stream but does not reassemble it: its
// depacketizer (libavformat/rtpdec_rfc4175.c) copies the interleaved 4:2:0 pixel groups
// (Y00 Y01 Y10 Y11 Cb Cr) as they come into a picture it labels planar yuv420p. Reported here,
// not asserted: it is ffmpeg's to fix, and GStreamer is the third party that shows our stream right.
TEST_CASE("Sdp.Video.SluiceSendsGStreamerReceivesByteExact" * doctest::timeout(120)) {
    TempDir dir;
    const auto sent = reference_pictures(dir, 150);
    REQUIRE(sent.size() == 150);
    for (const bool gstreamer : {true, false}) {
        const int port = random_port();
        const std::string sdp = dir / (gstreamer ? "gst.sdp" : "ffmpeg.sdp"), out = dir / (gstreamer ? "gst.yuv" : "ffmpeg.yuv");
        auto sender = send_for_4s("videotest width=320 height=240 ! rtpvrawsink port=" + std::to_string(port) + " sdp=" + sdp);
        REQUIRE(wait_for_file(sdp));
        const std::string text = read_file(sdp);
        INFO(text);
        CHECK(text.find("a=fmtp:96 sampling=YCbCr-4:2:0; width=320; height=240; depth=8; exactframerate=30") != std::string::npos);
        auto rx = gstreamer ? run("timeout 20 gst-launch-1.0 -q filesrc location=" + quote(sdp) +
                                  " ! sdpdemux latency=100 ! rtpvrawdepay ! identity eos-after=20 ! filesink location=" + quote(out))
                            : run("timeout 20 ffmpeg -v error -protocol_whitelist file,udp,rtp -i " + quote(sdp) +
                                  " -frames:v 20 -f rawvideo -pix_fmt yuv420p " + quote(out));
        const auto& tx = sender.join();
        INFO(rx.output);
        REQUIRE(rx.exit_code == 0);
        REQUIRE(tx.exit_code == 0);
        std::size_t pictures = 0;
        const auto [found, in_order] = count_sent(out, sent, pictures);
        if (gstreamer) {
            // The first may be a picture GStreamer joined halfway through; every other one is exact.
            CHECK(pictures >= 15);
            CHECK(found >= pictures - 1);
            CHECK(in_order);
        }
        MESSAGE(std::string(gstreamer ? "GStreamer sdpdemux" : "ffmpeg 5.1") << " received " << pictures << " pictures, " << found
                                                                  << " of them byte-exact copies of those sent");
    }
}

TEST_CASE("Sdp.BadInput.OneLine") {
    TempDir dir;
    std::ofstream(dir / "video.sdp") << "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=x\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"
                                        "m=video 5004 RTP/AVP 96\r\na=rtpmap:96 raw/90000\r\n"
                                        "a=fmtp:96 sampling=YCbCr-4:2:2; width=64; height=48; depth=10\r\n";
    std::ofstream(dir / "junk.sdp") << "hello\nworld\n";
    std::ofstream(dir / "nomap.sdp") << "v=0\ns=x\nc=IN IP4 127.0.0.1\nt=0 0\nm=audio 5004 RTP/AVP 97\n";
    for (const auto& [pipeline, why] : std::vector<std::pair<std::string, std::string>>{
             {"rtpsrc sdp=" + dir / "video.sdp" + " ! nullsink", "rtpsrc receives L16 or L24 audio"},
             {"rtpvrawsrc sdp=" + dir / "video.sdp" + " ! nullsink", "sampling 'YCbCr-4:2:2' depth 10"},
             {"rtpsrc sdp=" + dir / "junk.sdp" + " ! nullsink", "line 1: 'hello' is not a type=value line"},
             {"rtpsrc sdp=" + dir / "nomap.sdp" + " ! nullsink", "no a=rtpmap for payload type 97"},
             {"rtpsrc sdp=" + dir / "missing.sdp" + " ! nullsink", "missing.sdp"},
             {"tone ! rtpsink sdp=/nonexistent/dir/x.sdp", "sdp /nonexistent/dir/x.sdp"}}) {
        auto r = run(kPlayer + " -q --duration 0.1 " + quote(pipeline));
        INFO(pipeline);
        test::check_refused(r, why);
    }
}

// SPDX-License-Identifier: MIT
// RTP raw video (RFC 4175): the payload format, sluice-to-sluice over loopback, loss and bad
// packets, prompt stop, and interoperation with GStreamer (rtpvrawpay / rtpvrawdepay) both ways.
// Pictures are compared byte for byte: raw video over RTP is lossless.
#include "../support.hpp"
#include "rtp_support.hpp"

#include <doctest/doctest.h>
#include <sluice/wire/rtp.hpp>
#include <sluice/sluice.hpp>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <thread>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;
using namespace test;  // extra, random_port, send_datagram, TempDir...

namespace {

using Picture = std::vector<std::uint8_t>;

// A render that keeps a copy of every picture, and whether it was flagged as a discontinuity.
class FrameCollector final : public Node {
public:
    FrameCollector() : Node("frames", Kind::render) { add_input("sink", {MediaFormat::video()}); }
    std::vector<Picture> frames;
    std::vector<bool> discontinuity;

private:
    Flow process(std::size_t, SampleRef&& s) override {
        const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
        frames.emplace_back(p, p + s.size());
        discontinuity.push_back(s.has(SampleFlags::discontinuity));
        return Flow::ok;
    }
};

std::unique_ptr<Node> make(const std::string& type, const std::string& name, const nodes::Properties& props) {
    std::unique_ptr<Node> n;
    const Status st = nodes::create_node(type, name, props, n);
    REQUIRE_MESSAGE(st, st.message());
    return n;
}

// What videotest paints with these properties, straight into a collector.
std::vector<Picture> videotest_frames(const nodes::Properties& props) {
    Graph g;
    Node& src = g.add(make("videotest", "videotest0", props));
    auto& frames = g.add<FrameCollector>();
    REQUIRE(g.connect(src, frames));
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(20s));
    REQUIRE(g.stop());
    return frames.frames;
}

// The pictures of a YUV4MPEG2 file, header and FRAME lines skipped.
std::vector<Picture> y4m_frames(const std::string& path, std::size_t frame_bytes) {
    std::ifstream in(path, std::ios::binary);
    const std::string d((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::vector<Picture> frames;
    std::size_t at = d.find('\n');
    while (at != std::string::npos && at + 1 < d.size()) {
        const std::size_t data = d.find('\n', at + 1);
        if (data == std::string::npos || d.size() - (data + 1) < frame_bytes) break;
        frames.emplace_back(d.begin() + std::ptrdiff_t(data + 1), d.begin() + std::ptrdiff_t(data + 1 + frame_bytes));
        at = data + frame_bytes;
    }
    return frames;
}

Picture random_picture(std::size_t bytes, unsigned seed) {
    std::mt19937 rng(seed);
    Picture p(bytes);
    for (auto& b : p) b = std::uint8_t(rng());
    return p;
}

// Every payload of one picture at `mtu`, as rtpvrawsink cuts them.
std::vector<Picture> payloads(const wire::RawVideoLayout& layout, const Picture& picture, std::size_t mtu) {
    std::vector<Picture> out;
    wire::RawVideoCursor at;
    while (!at.done(layout)) {
        Picture payload(mtu - 12);
        const std::size_t n = wire::pack_raw_video(layout, picture.data(), at, std::uint16_t(out.size()), payload);
        REQUIRE(n > 0);
        payload.resize(n);
        out.push_back(std::move(payload));
    }
    return out;
}

std::vector<std::uint8_t> rtp_packet(std::uint32_t seq, std::uint32_t ts, std::uint32_t ssrc, const Picture& payload,
                                     bool marker = false, std::uint8_t pt = 96) {
    std::vector<std::uint8_t> p(12);
    wire::write_rtp_header(p.data(), pt, marker, std::uint16_t(seq), ts, ssrc);
    p.insert(p.end(), payload.begin(), payload.end());
    p[12] = std::uint8_t(seq >> 24);  // the extended sequence number's high half
    p[13] = std::uint8_t(seq >> 16);
    return p;
}

}  // namespace

TEST_CASE("RtpVideo.Payload.RoundTripAtEveryMtu") {
    for (const MediaFormat& format : {MediaFormat::video(320, 240, PixelFormat::i420, {30, 1}),
                                      MediaFormat::video(64, 48, PixelFormat::rgba, {30, 1}),
                                      MediaFormat::video(2, 2, PixelFormat::i420, {30, 1}),
                                      MediaFormat::video(1, 1, PixelFormat::rgba, {30, 1})}) {
        const auto layout = wire::RawVideoLayout::of(format);
        REQUIRE(layout);
        const Picture sent = random_picture(format.frame_bytes(), unsigned(format.width));
        for (const std::size_t mtu : {64u, 100u, 1400u, 9000u, 65507u}) {
            CAPTURE(format.to_string());
            CAPTURE(mtu);
            Picture received(sent.size(), 0);
            std::vector<std::uint32_t> rows(std::size_t(layout->rows()), 0);
            std::size_t count = 0, bytes = 0;
            for (const Picture& payload : payloads(*layout, sent, mtu)) {
                CHECK(payload.size() <= mtu - 12);
                const auto unpacked = wire::unpack_raw_video(*layout, payload, received.data(), rows);
                REQUIRE(unpacked);
                CHECK(unpacked->extended_sequence == count);
                bytes += unpacked->bytes;
                ++count;
            }
            CHECK(received == sent);
            CHECK(bytes == sent.size());
            for (const std::uint32_t r : rows) CHECK(r == layout->row_bytes());
        }
    }
}

TEST_CASE("RtpVideo.Payload.LineHeadersAsRfc4175Says") {
    const MediaFormat format = MediaFormat::video(320, 240, PixelFormat::i420, {30, 1});
    const auto layout = wire::RawVideoLayout::of(format);
    REQUIRE(layout);
    CHECK(std::string(layout->sampling()) == "YCbCr-4:2:0");
    Picture picture(format.frame_bytes());
    for (std::size_t i = 0; i < picture.size(); ++i) picture[i] = std::uint8_t(i * 7);
    const auto p = payloads(*layout, picture, 1400);
    // A row is two lines of 160 groups of 6 bytes: 960 bytes. 1400 - 12 (RTP) - 2 (extended
    // sequence) leaves 1386: one whole row (6 + 960), then 69 groups of the next (6 + 414).
    REQUIRE(p.size() >= 2);
    const Picture& a = p[0];
    REQUIRE(a.size() == 2 + 6 + 6 + 960 + 414);
    auto at16 = [](const Picture& q, std::size_t i) { return unsigned(q[i] << 8 | q[i + 1]); };
    CHECK(at16(a, 2) == 960);       // length
    CHECK(at16(a, 4) == 0);         // line 0, first field
    CHECK(at16(a, 6) == 0x8000);    // offset 0, another header follows
    CHECK(at16(a, 8) == 414);
    CHECK(at16(a, 10) == 2);        // line 2: a row starts at every other line
    CHECK(at16(a, 12) == 0);        // offset 0, last header
    // The first group: Y(0,0) Y(0,1) Y(1,0) Y(1,1) Cb(0,0) Cr(0,0).
    const std::size_t u = 320 * 240, v = u + 160 * 120;
    const Picture first{picture[0], picture[1], picture[320], picture[321], picture[u], picture[v]};
    CHECK(Picture(a.begin() + 14, a.begin() + 20) == first);
    // The next payload goes on from pixel 138 of line 2.
    CHECK(at16(p[1], 4) == 2);
    CHECK(at16(p[1], 6) == (138 | 0x8000));
    CHECK(p.size() == 84);  // 115 200 bytes of groups in payloads of at most 1386
}

TEST_CASE("RtpVideo.Payload.MalformedIsRefusedAndWritesNothing") {
    const MediaFormat format = MediaFormat::video(8, 4, PixelFormat::i420, {30, 1});
    const auto layout = wire::RawVideoLayout::of(format);
    REQUIRE(layout);
    // One segment: length, line, offset; 12 bytes of data follow (2 groups).
    auto payload = [](unsigned length, unsigned line, unsigned offset, std::size_t data = 12) {
        Picture p{0, 0, std::uint8_t(length >> 8), std::uint8_t(length), std::uint8_t(line >> 8), std::uint8_t(line),
                  std::uint8_t(offset >> 8), std::uint8_t(offset)};
        p.insert(p.end(), data, 0xAB);
        return p;
    };
    Picture picture(format.frame_bytes(), 0);
    std::vector<std::uint32_t> rows(2, 0);
    REQUIRE(wire::unpack_raw_video(*layout, payload(12, 2, 4), picture.data(), rows));  // a good one
    std::fill(picture.begin(), picture.end(), 0);
    rows.assign(2, 0);
    const std::vector<Picture> bad{
        {},                             // empty
        {0, 0, 0, 12},                  // header cut short
        payload(12, 4, 0),              // line 4 of a 4-line picture
        payload(12, 1, 0),              // an odd line: 4:2:0 rows start on even lines
        payload(12, 0, 1),              // an offset inside a group
        payload(10, 0, 0),              // not a whole number of groups
        payload(12, 0, 6),              // runs past the right edge
        payload(12, 0x8000, 0),         // second field: interlaced
        payload(12, 0, 0, 11),          // data shorter than announced
        payload(12, 0, 0x8000),         // says another header follows, then none does
    };
    for (std::size_t i = 0; i < bad.size(); ++i) {
        CAPTURE(i);
        CHECK_FALSE(wire::unpack_raw_video(*layout, bad[i], picture.data(), rows));
    }
    CHECK(std::all_of(picture.begin(), picture.end(), [](std::uint8_t b) { return b == 0; }));
    CHECK(rows == std::vector<std::uint32_t>(2, 0));
    // Formats RFC 4175 cannot carry here.
    CHECK_FALSE(wire::RawVideoLayout::of(MediaFormat::video(7, 4, PixelFormat::i420, {30, 1})));
    CHECK_FALSE(wire::RawVideoLayout::of(MediaFormat::video(40000, 4, PixelFormat::rgba, {30, 1})));
    CHECK_FALSE(wire::RawVideoLayout::of(MediaFormat::audio(48000, 2, SampleFormat::s16)));
}

TEST_CASE("RtpVideo.Loopback.PicturesArriveExact" * doctest::timeout(120)) {
    for (const std::string format : {"i420", "rgba"}) {
        CAPTURE(format);
        const nodes::Properties picture{{"width", "320"}, {"height", "240"}, {"format", format}};
        nodes::Properties source = picture;
        source["num-buffers"] = "20";
        const auto expected = videotest_frames(source);
        REQUIRE(expected.size() == 20);

        const int port = random_port();
        Graph rx;
        nodes::Properties rx_props = picture;
        rx_props["port"] = std::to_string(port);
        rx_props["timeout"] = "500";
        Node& rtp_in = rx.add(make("rtpvrawsrc", "rtpvrawsrc0", rx_props));
        auto& frames = rx.add<FrameCollector>();
        REQUIRE(rx.connect(rtp_in, frames));
        REQUIRE(rx.run());

        Graph tx;
        Node& src = tx.add(make("videotest", "videotest0", source));
        Node& rtp_out = tx.add(make("rtpvrawsink", "rtpvrawsink0", {{"port", std::to_string(port)}}));
        rtp_out.set_clocked(true);  // paced like a live sender
        REQUIRE(tx.connect(src, rtp_out));
        REQUIRE(tx.run());
        REQUIRE(tx.wait_until_ended(20s));
        REQUIRE(tx.stop());
        REQUIRE(rx.wait_until_ended(20s));  // ends by the receive timeout
        REQUIRE(rx.stop());

        MESSAGE(format << ": sent " << extra(tx, "rtpvrawsink0", "packets_sent") << " packets, received "
                       << extra(rx, "rtpvrawsrc0", "packets_received") << ", lost "
                       << extra(rx, "rtpvrawsrc0", "packets_lost"));
        CHECK(extra(tx, "rtpvrawsink0", "frames_sent") == 20);
        CHECK(extra(rx, "rtpvrawsrc0", "packets_received") == extra(tx, "rtpvrawsink0", "packets_sent"));
        CHECK(extra(rx, "rtpvrawsrc0", "packets_lost") == 0);
        CHECK(extra(rx, "rtpvrawsrc0", "frames_incomplete") == 0);
        REQUIRE(frames.frames.size() == 20);
        for (std::size_t i = 0; i < 20; ++i) {
            CAPTURE(i);
            CHECK(frames.frames[i] == expected[i]);
            CHECK_FALSE(frames.discontinuity[i]);
        }
    }
}

TEST_CASE("RtpVideo.Receive.LossLateForeignAndMalformedCounted" * doctest::timeout(60)) {
    // 32x8 RGBA at an MTU of one row (128 bytes + 6 + 2 + 12): 8 packets a picture.
    const MediaFormat format = MediaFormat::video(32, 8, PixelFormat::rgba, {30, 1});
    const auto layout = wire::RawVideoLayout::of(format);
    REQUIRE(layout);
    const Picture a = random_picture(format.frame_bytes(), 1), b = random_picture(format.frame_bytes(), 2);
    const auto pa = payloads(*layout, a, 148), pb = payloads(*layout, b, 148);
    REQUIRE(pa.size() == 8);

    const int port = random_port();
    Graph rx;
    Node& rtp_in = rx.add(make("rtpvrawsrc", "rtpvrawsrc0",
                               {{"port", std::to_string(port)}, {"width", "32"}, {"height", "8"}, {"format", "rgba"},
                                {"pt", "96"}, {"latency", "200"}, {"timeout", "500"}}));
    auto& frames = rx.add<FrameCollector>();
    REQUIRE(rx.connect(rtp_in, frames));
    REQUIRE(rx.run());
    std::this_thread::sleep_for(50ms);
    const std::uint32_t ssrc = 77, ta = 90000, tb = 93000;
    auto send = [&](const std::vector<std::uint8_t>& packet) {
        send_datagram(port, packet);
        std::this_thread::sleep_for(2ms);
    };
    for (std::uint32_t s = 0; s < 8; ++s)
        if (s != 3) send(rtp_packet(s, ta, ssrc, pa[s], s == 7));  // row 3 of picture a is lost
    send(rtp_packet(8, tb, ssrc, pb[0]));                           // b begins: a goes out as it is
    send(rtp_packet(8, tb, ssrc, pb[0]));                           // a duplicate
    send(rtp_packet(16, ta, ssrc, pa[3]));                          // a's row 3, too late
    send(rtp_packet(17, tb, 999, pb[1]));                           // another sender
    send(rtp_packet(18, tb, ssrc, pb[1], false, 97));               // another payload type: filtered
    Picture outside = pb[1];
    outside[5] = 8;                                                 // line 8 of an 8-line picture
    send(rtp_packet(19, tb, ssrc, outside));
    send({1, 2, 3});                                                // not RTP
    for (std::uint32_t s = 1; s < 8; ++s) send(rtp_packet(8 + s, tb, ssrc, pb[s], s == 7));
    REQUIRE(rx.wait_until_ended(10s));
    REQUIRE(rx.stop());

    CHECK(extra(rx, "rtpvrawsrc0", "packets_received") == 16);  // 7 of a, 8 of b, the late one
    CHECK(extra(rx, "rtpvrawsrc0", "packets_lost") == 1);       // sequence 3 (17..19 were dropped as bad)
    CHECK(extra(rx, "rtpvrawsrc0", "packets_late") == 1);
    CHECK(extra(rx, "rtpvrawsrc0", "packets_duplicate") == 1);
    CHECK(extra(rx, "rtpvrawsrc0", "packets_foreign") == 1);
    CHECK(extra(rx, "rtpvrawsrc0", "packets_malformed") == 2);  // line 8, and not RTP
    CHECK(extra(rx, "rtpvrawsrc0", "packets_filtered") == 1);   // payload type 97
    CHECK(extra(rx, "rtpvrawsrc0", "frames_incomplete") == 1);
    REQUIRE(frames.frames.size() == 2);
    CHECK(frames.discontinuity[0]);
    CHECK_FALSE(frames.discontinuity[1]);
    CHECK(frames.frames[1] == b);
    // Picture a: every row as sent but row 3, which is opaque black.
    const std::size_t row = 32 * 4;
    for (std::size_t r = 0; r < 8; ++r) {
        CAPTURE(r);
        const Picture got(frames.frames[0].begin() + std::ptrdiff_t(r * row), frames.frames[0].begin() + std::ptrdiff_t((r + 1) * row));
        if (r != 3) {
            CHECK(got == Picture(a.begin() + std::ptrdiff_t(r * row), a.begin() + std::ptrdiff_t((r + 1) * row)));
        } else {
            for (std::size_t x = 0; x < row; x += 4) CHECK(got[x] + got[x + 1] + got[x + 2] == 0);
            for (std::size_t x = 0; x < row; x += 4) CHECK(got[x + 3] == 255);
        }
    }
}

TEST_CASE("RtpVideo.Stop.PromptWhileBlockedInReceive" * doctest::timeout(30)) {
    test::check_prompt_stop_while_receiving("rtpvrawsrc port=" + std::to_string(random_port()) + " ! nullsink");
}

TEST_CASE("RtpVideo.Errors.SizesRfc4175CannotCarry") {
    Graph a;
    Status st = nodes::build_pipeline(a, "rtpvrawsrc width=321 ! nullsink");
    CHECK(st.message().find("I420 needs an even width and height") != std::string::npos);
    Graph b;
    st = nodes::build_pipeline(b, "videotest width=320 height=239 ! rtpvrawsink");
    CHECK(st.message().find("RFC 4175 cannot carry video/I420 320x239") != std::string::npos);
    Graph c;
    st = nodes::build_pipeline(c, "tone ! rtpvrawsink");
    CHECK(st.message().find("cannot link tone0.src to rtpvrawsink0.sink") != std::string::npos);
    Graph d;
    REQUIRE(nodes::build_pipeline(d, "videotest ! rtpvrawsink host=nowhere"));
    CHECK(d.run().message().find("'nowhere' is not an IP address") != std::string::npos);
}

namespace {
constexpr const char* kGstVideo = "video/x-raw,format=I420,width=320,height=240,framerate=30/1";
constexpr const char* kGstRtpCaps =
    "application/x-rtp,media=video,clock-rate=90000,encoding-name=RAW,sampling=YCbCr-4:2:0,depth=(string)8,"
    "width=(string)320,height=(string)240,colorimetry=(string)BT601-5,payload=96";
}  // namespace

TEST_CASE("RtpVideo.Interop.GStreamerSendsSluiceRecords" * doctest::timeout(120)) {
    REQUIRE(have_gst_element("rtpvrawpay"));
    REQUIRE(have_gst_element("y4menc"));
    TempDir dir;
    // What GStreamer's moving-ball pattern looks like, written by GStreamer itself.
    const std::string reference = dir / "gst.y4m";
    REQUIRE(test::run("gst-launch-1.0 -q videotestsrc num-buffers=30 pattern=ball ! " + std::string(kGstVideo) +
                      " ! y4menc ! filesink location=" + reference)
                .exit_code == 0);
    const int port = random_port();
    Graph rx;
    REQUIRE(nodes::build_pipeline(rx, "rtpvrawsrc port=" + std::to_string(port) + " timeout=500 ! y4msink path=" +
                                          (dir / "rx.y4m")));
    REQUIRE(rx.run());
    const auto sent = test::run("gst-launch-1.0 -q videotestsrc num-buffers=30 pattern=ball is-live=true ! " +
                                std::string(kGstVideo) + " ! rtpvrawpay ! udpsink host=127.0.0.1 port=" +
                                std::to_string(port));
    REQUIRE(sent.exit_code == 0);
    REQUIRE(rx.wait_until_ended(20s));
    REQUIRE(rx.stop());
    MESSAGE("GStreamer -> sluice: " << packet_counts(rx, "rtpvrawsrc0") << ", incomplete pictures "
                                    << extra(rx, "rtpvrawsrc0", "frames_incomplete"));
    CHECK(extra(rx, "rtpvrawsrc0", "packets_lost") == 0);
    const std::size_t frame = MediaFormat::video(320, 240, PixelFormat::i420, {30, 1}).frame_bytes();
    const auto expected = y4m_frames(reference, frame), got = y4m_frames(dir / "rx.y4m", frame);
    REQUIRE(expected.size() == 30);
    REQUIRE(got.size() == 30);
    for (std::size_t i = 0; i < 30; ++i) {
        CAPTURE(i);
        CHECK(got[i] == expected[i]);
    }
    CHECK(expected[0] != expected[15]);  // the ball moves: the comparison sees every picture
}

TEST_CASE("RtpVideo.Interop.SluiceSendsGStreamerRecords" * doctest::timeout(120)) {
    REQUIRE(have_gst_element("rtpvrawdepay"));
    REQUIRE(have_gst_element("y4menc"));
    TempDir dir;
    const auto expected = videotest_frames({{"num-buffers", "30"}});
    REQUIRE(expected.size() == 30);
    const int port = random_port();
    const std::string recorded = dir / "gst.y4m";
    // GStreamer records until EOS; -e turns our SIGINT into one. A big receive buffer rides out
    // each picture's burst of 84 packets.
    const std::string gst = "gst-launch-1.0 -q -e udpsrc buffer-size=4000000 port=" + std::to_string(port) + " caps=\"" +
                            kGstRtpCaps + "\" ! rtpjitterbuffer latency=100 ! rtpvrawdepay ! y4menc ! filesink location=" +
                            recorded;
    record_while_sending(gst, "videotest num-buffers=30 ! rtpvrawsink port=" + std::to_string(port), 20s);
    const auto got = y4m_frames(recorded, MediaFormat::video(320, 240, PixelFormat::i420, {30, 1}).frame_bytes());
    MESSAGE("sluice -> GStreamer: " << got.size() << " pictures recorded of 30 sent");
    REQUIRE(got.size() == 30);
    for (std::size_t i = 0; i < 30; ++i) {
        CAPTURE(i);
        CHECK(got[i] == expected[i]);
    }
}

// Pacing: a picture's packets leave spread over a share of its interval, not in one burst.
TEST_CASE("RtpVideo.Pacing.PacketsSpreadOverTheInterval" * doctest::timeout(60)) {
    // A plain UDP socket records when each packet arrives, per RTP timestamp (per picture).
    const int port = random_port();
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    REQUIRE(fd >= 0);
    const int big = 8 << 20;
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    sockaddr_in at{};
    at.sin_family = AF_INET;
    at.sin_port = htons(std::uint16_t(port));
    at.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&at), sizeof at) == 0);
    timeval wait{0, 300'000};
    (void)::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait);

    // 640x480 at 10 fps: 100 ms a picture, about 330 packets; pacing 0.5 spreads them over ~50 ms.
    std::thread sender([port] {
        test::send_paced("videotest width=640 height=480 fps=10 num-buffers=3 ! rtpvrawsink pacing=0.5 pt=111 port=" +
                             std::to_string(port),
                         20s);
    });
    // Per picture (RTP timestamp) of our stream (payload type 111, which no other test sends):
    // when its first and last packets came, and how many. A datagram of another test's stream
    // (ctest runs two at once, on random ports that can meet) is counted apart instead of
    // passing for a fourth picture.
    struct Arrivals {
        std::int64_t first = 0, last = 0;
        std::size_t packets = 0;
    };
    std::map<std::pair<std::uint32_t, std::uint32_t>, Arrivals> pictures;  // by SSRC and timestamp
    std::size_t foreign = 0;
    std::vector<std::uint8_t> datagram(65536);
    for (;;) {
        const auto n = ::recv(fd, datagram.data(), datagram.size(), 0);
        if (n <= 0) break;  // 300 ms of silence: the sender is done
        const auto packet = wire::parse_rtp_packet({datagram.data(), std::size_t(n)});
        if (!packet || packet->payload_type != 111) {
            ++foreign;
            continue;
        }
        const std::int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
        Arrivals& a = pictures[{packet->ssrc, packet->timestamp}];
        if (a.packets++ == 0) a.first = now;
        a.last = now;
    }
    sender.join();
    ::close(fd);
    MESSAGE("datagrams of other streams: " << foreign);
    for (const auto& [key, a] : pictures) {
        const double ms = double(a.last - a.first) / 1e6;
        MESSAGE("picture at " << key.second << ": " << a.packets << " packets spread over " << ms << " ms");
        CHECK(a.packets >= 300);
        CHECK(ms >= 40.0);  // the last packet is due at (1 - one packet's share) * 50 ms
    }
    CHECK(pictures.size() == 3);
}

// ---- Hostile streams (issue #17, shared/repro/hostile/net/rtp_video_hostile.py)

namespace {
// Ten 32x8 RGBA pictures of 8 packets each (one row a packet), with a distinct first byte.
struct Stream {
    std::optional<wire::RawVideoLayout> layout = wire::RawVideoLayout::of(MediaFormat::video(32, 8, PixelFormat::rgba, {30, 1}));
    std::vector<Picture> pictures;
    std::vector<std::vector<Picture>> rows;
    Stream() {
        for (int f = 0; f < 10; ++f) {
            Picture p(32 * 8 * 4, std::uint8_t(20 + 7 * f));
            pictures.push_back(p);
            rows.push_back(payloads(*layout, p, 148));
        }
    }
};
struct VideoRun {
    Graph graph;
    FrameCollector* frames = nullptr;
    std::uint64_t count(const char* name) { return extra(graph, "rtpvrawsrc0", name); }
};
void receive_video(VideoRun& run, const std::vector<std::vector<std::uint8_t>>& packets) {
    const int port = random_port();
    Node& in = run.graph.add(make("rtpvrawsrc", "rtpvrawsrc0",
                                  {{"port", std::to_string(port)}, {"width", "32"}, {"height", "8"}, {"format", "rgba"},
                                   {"latency", "100"}, {"timeout", "400"}}));
    run.frames = &run.graph.add<FrameCollector>();
    REQUIRE(run.graph.connect(in, *run.frames));
    REQUIRE(run.graph.run());
    std::this_thread::sleep_for(50ms);
    for (const auto& p : packets) {
        send_datagram(port, p);
        std::this_thread::sleep_for(1ms);
    }
    REQUIRE(run.graph.wait_until_ended(20s));
    REQUIRE(run.graph.stop());
}
}  // namespace

// A malformed packet with a new timestamp, in the middle of a picture or between two, used to
// push the picture out early, add a black phantom picture and mark the real one late. It is
// judged before it can act.
TEST_CASE("RtpVideo.Receive.MalformedPacketNeverEndsAPicture" * doctest::timeout(60)) {
    Stream s;
    for (const std::size_t at : {5 * 8 + 3, 5 * 8}) {  // inside picture 5, and between 4 and 5
        CAPTURE(at);
        std::vector<std::vector<std::uint8_t>> pk;
        for (std::uint32_t f = 0; f < 10; ++f)
            for (std::uint32_t r = 0; r < 8; ++r) pk.push_back(rtp_packet(f * 8 + r, f * 3000, 7, s.rows[f][r], r == 7));
        Picture bad = s.rows[5][0];
        bad[5] = 8;  // line 8 of an 8-line picture
        pk.insert(pk.begin() + std::ptrdiff_t(at), rtp_packet(9000, 50 * 3000, 7, bad));
        VideoRun run;
        receive_video(run, pk);
        CHECK(run.count("packets_malformed") == 1);
        CHECK(run.count("frames_incomplete") == 0);
        CHECK(run.count("packets_late") == 0);
        REQUIRE(run.frames->frames.size() == 10);
        for (std::size_t f = 0; f < 10; ++f) CHECK(run.frames->frames[f] == s.pictures[f]);
    }
}

// A sender restarted with the same SSRC: its timestamps go back (numbers go on). Every later
// picture used to be dropped as late; now the stream starts again there.
TEST_CASE("RtpVideo.Receive.TimestampsBackwardsRestartTheStream" * doctest::timeout(60)) {
    Stream s;
    std::vector<std::vector<std::uint8_t>> pk;
    for (std::uint32_t f = 0; f < 10; ++f)
        for (std::uint32_t r = 0; r < 8; ++r)
            pk.push_back(rtp_packet(f * 8 + r, (f < 5 ? f : f - 10) * 3000u, 7, s.rows[f][r], r == 7));
    VideoRun run;
    receive_video(run, pk);
    REQUIRE(run.frames->frames.size() == 10);
    for (std::size_t f = 0; f < 10; ++f) CHECK(run.frames->frames[f] == s.pictures[f]);
    CHECK(run.frames->discontinuity[5]);
    CHECK(run.count("frames_incomplete") == 0);
}

// One packet with a far sequence number inflated `lost` for good; and a zero-byte datagram was
// counted nowhere.
TEST_CASE("RtpVideo.Receive.FarSequenceAndEmptyDatagramCounted" * doctest::timeout(60)) {
    Stream s;
    std::vector<std::vector<std::uint8_t>> pk;
    for (std::uint32_t f = 0; f < 10; ++f)
        for (std::uint32_t r = 0; r < 8; ++r) pk.push_back(rtp_packet(f * 8 + r, f * 3000, 7, s.rows[f][r], r == 7));
    pk[43] = rtp_packet(900000, 5 * 3000, 7, s.rows[5][3]);  // picture 5's row 3, a wild number
    pk.insert(pk.begin() + 60, std::vector<std::uint8_t>{});
    VideoRun run;
    receive_video(run, pk);
    CHECK(run.count("packets_out_of_sequence") == 1);
    CHECK(run.count("packets_lost") == 1);  // number 43 never came
    CHECK(run.count("packets_malformed") == 1);
    REQUIRE(run.frames->frames.size() == 10);
    CHECK(run.frames->frames[5] == s.pictures[5]);  // the row itself was good and is used
}

// SPDX-License-Identifier: MIT
// RTCP beside the RTP streams (issue #15): Sluice's senders and receivers exchange sender and
// receiver reports both ways, and a receiver reads the sender reports of ffmpeg's RTP muxer.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace {

using namespace test::shell;  // quote, read_file, run, TempDir, wait_for_file

int random_port() { return test::random_rtp_port(40000); }

const std::string kPlayer = SLUICE_PLAY_PATH;

nlohmann::json node_stats(const std::string& path, const std::string& node) {
    return nlohmann::json::parse(read_file(path))["nodes"][node];
}

}  // namespace

TEST_CASE("Rtcp.Loopback.ReportsBothWaysForAudioAndVideo" * doctest::timeout(60)) {
    TempDir dir;
    const int audio = random_port(), video = audio + 2;
    // Receivers first, then a sender of both for 3 s: reports about once a second each way.
    test::CommandResult rx;
    std::thread receiver([&] {
        rx = run(kPlayer + " -q --stats-json " + quote(dir / "rx.json") + " " +
                 quote("rtpsrc port=" + std::to_string(audio) + " timeout=3000 ! nullsink  rtpvrawsrc port=" +
                       std::to_string(video) + " width=160 height=120 timeout=3000 ! nullsink"));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    auto tx = run(kPlayer + " -q --duration 3 --stats-json " + quote(dir / "tx.json") + " " +
                  quote("tone ! rtpsink port=" + std::to_string(audio) + "  videotest width=160 height=120 ! rtpvrawsink port=" +
                        std::to_string(video)));
    receiver.join();
    INFO(tx.output);
    INFO(rx.output);
    REQUIRE(tx.exit_code == 0);
    REQUIRE(rx.exit_code == 0);
    for (const auto& [sink, src] : {std::pair{"rtpsink0", "rtpsrc0"}, std::pair{"rtpvrawsink0", "rtpvrawsrc0"}}) {
        CAPTURE(sink);
        const auto sent = node_stats(dir / "tx.json", sink), got = node_stats(dir / "rx.json", src);
        INFO(sent.dump());
        INFO(got.dump());
        // One SR at the first packet, one a second after, one with the BYE at the end.
        CHECK(sent["rtcp_sr_sent"].get<int>() >= 3);
        CHECK(got["rtcp_sr_received"].get<int>() >= 3);
        CHECK(got["rtcp_rr_sent"].get<int>() >= 2);
        CHECK(sent["rtcp_rr_received"].get<int>() >= 2);
        CHECK(sent["rtcp_rr_packets_lost"] == 0);
        CHECK(got["packets_lost"] == 0);
        // The round trip on loopback: measured (LSR and DLSR came back), well under a second.
        CHECK(sent["rtcp_round_trip_us"].get<std::int64_t>() > 0);
        CHECK(sent["rtcp_round_trip_us"].get<std::int64_t>() < 500'000);
        MESSAGE(std::string(sink) << ": " << sent["rtcp_sr_sent"] << " SRs sent, " << sent["rtcp_rr_received"] << " RRs back, round trip "
                     << sent["rtcp_round_trip_us"] << " us; receiver jitter " << got["jitter"] << " ticks");
    }
}

TEST_CASE("Rtcp.Interop.SluiceReadsFfmpegsSenderReports" * doctest::timeout(60)) {
    TempDir dir;
    const int port = random_port();
    test::CommandResult tx;
    std::thread sender([&] {
        tx = run("timeout 30 ffmpeg -v error -re -f lavfi -i sine=frequency=440:sample_rate=48000:duration=7 -ac 2 "
                 "-c:a pcm_s16be -f rtp rtp://127.0.0.1:" + std::to_string(port));
    });
    auto rx = run(kPlayer + " -q --stats-json " + quote(dir / "rx.json") + " " +
                  quote("rtpsrc port=" + std::to_string(port) + " timeout=3000 ! nullsink"));
    sender.join();
    INFO(rx.output);
    REQUIRE(rx.exit_code == 0);
    const auto got = node_stats(dir / "rx.json", "rtpsrc0");
    INFO(got.dump());
    CHECK(got["packets_received"].get<int>() > 100);
    // ffmpeg's muxer sends an SR at its first packet and then every few seconds to port + 1.
    CHECK(got["rtcp_sr_received"].get<int>() >= 1);  // a receiver that starts late misses the first
    // The line moves once per stream at most: ffmpeg's later reports drift from its media by
    // tens of ms (its -re pacing), and following them would skip or gap the audio each time.
    CHECK(got["rtcp_synced"].get<int>() <= 1);
}

TEST_CASE("Rtcp.Off.NoReportsAndBadPortsAreOneLine" * doctest::timeout(60)) {
    TempDir dir;
    const int port = random_port();
    std::thread receiver([&] {
        (void)run(kPlayer + " -q --stats-json " + quote(dir / "rx.json") + " " +
                  quote("rtpsrc port=" + std::to_string(port) + " rtcp=false timeout=3000 ! nullsink"));
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    auto tx = run(kPlayer + " -q --duration 1 --stats-json " + quote(dir / "tx.json") + " " +
                  quote("tone ! rtpsink port=" + std::to_string(port) + " rtcp=false"));
    receiver.join();
    REQUIRE(tx.exit_code == 0);
    CHECK(node_stats(dir / "tx.json", "rtpsink0")["rtcp_sr_sent"] == 0);
    CHECK(node_stats(dir / "rx.json", "rtpsrc0")["rtcp_sr_received"] == 0);
    CHECK(node_stats(dir / "rx.json", "rtpsrc0")["packets_received"].get<int>() > 0);
    // The RTCP port taken (here by the node's own RTP socket), and one out of range.
    for (const auto& [pipeline, says] : std::vector<std::pair<std::string, std::string>>{
             {"rtpsrc port=" + std::to_string(port) + " rtcp-port=" + std::to_string(port) + " ! nullsink",
              "cannot listen on UDP port " + std::to_string(port)},
             {"tone ! rtpsink rtcp-port=70000", "rtcp-port"},
             {"tone ! rtpsink port=65535", "port 65535 leaves no port + 1 for RTCP"}}) {
        CAPTURE(pipeline);
        auto r = run(kPlayer + " -q --duration 0.1 " + quote(pipeline));
        INFO(r.output);
        CHECK(r.exit_code != 0);
        CHECK(r.output.find(says) != std::string::npos);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    }
}

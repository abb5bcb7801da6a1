// SPDX-License-Identifier: MIT
#pragma once

// The skeleton rtpsrc and rtpvrawsrc share: a UDP socket, the properties every RTP receiver
// takes, and the streaming loop. The loop plays whatever is due, ends the stream after `timeout`
// without packets (counted from the start when none ever came), at the graph's media duration
// (running time is media time for a live source; past it by the latency, nothing on its way can
// still count) or after num-buffers, and otherwise waits up to 10 ms for a datagram and files it.
// Stop and flush cut the wait short (unblock()). The payload format lives in the subclass.

#include "core/common.hpp"
#include "net/rtcp_session.hpp"
#include "net/udp.hpp"

#include <sluice/wire/sdp.hpp>

#include <sluice/engine/node.hpp>
#include <sluice/nodes/registry.hpp>

#include <chrono>
#include <cstring>
#include <ctime>
#include <optional>

#include <unistd.h>

namespace sluice::nodes::detail {

class RtpReceiveNode : public engine::Node {
protected:
    RtpReceiveNode(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        if (const std::string path = r.text("sdp"); !path.empty()) sdp_ = read_sdp(r, path);
        port_ = std::uint16_t(from_sdp(r, "port", 1, 65535, sdp_ ? sdp_->port : 0));
        address_ = r.text("address");
        // A description of a multicast stream names the group to join (its c= line), as ffmpeg's
        // and GStreamer's receivers read it; address= given still wins.
        if (sdp_ && !r.given("address") && is_multicast(sdp_->address)) address_ = sdp_->address;
        multicast_ = read_receiver_multicast(r);
        latency_ns_ = r.integer("latency", 0, 10'000) * 1'000'000;
        timeout_ns_ = r.integer("timeout", 0, 3'600'000) * 1'000'000;
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        rtcp_port_ = read_rtcp_port(r);
    }

    // What the subclass does: put out what is due at `now` (`ending`: nothing more will come, so
    // all that is held goes now), returning the push's Flow, or nullopt when nothing was due;
    // file one datagram; say when the last packet came (0: never).
    virtual std::optional<engine::Flow> play_due(std::int64_t now_ns, bool ending) = 0;
    virtual engine::Flow file(std::span<const std::uint8_t> datagram) = 0;
    virtual std::int64_t last_packet_ns() const noexcept = 0;
    // The stream's RTP clock rate (for the jitter RTCP reports).
    virtual int rtp_clock_rate() const noexcept = 0;
    // A sender report says the sender's RTP time `timestamp` belongs at `running_ns` on our
    // line (its wall-clock time there, plus the latency): RTCP sync (rtp_sync.hpp).
    virtual void sync_to_sender(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept = 0;
    // The SSRC of the stream the receiver follows, if any (RTCP reports on it alone).
    virtual std::optional<std::uint32_t> stream_ssrc() const noexcept = 0;

    Status start() override {
        if (Status st = open_rtp_and_rtcp(udp_, rtcp_, address_, port_, rtcp_port_, multicast_); !st) return st;
        started_ns_ = steady_now_ns();
        limit_.produced = 0;
        return {};
    }
    void stop() override {
        udp_.close();
        rtcp_.close();
    }
    void unblock() override { udp_.unblock(); }

    engine::Flow produce() override {
        using engine::Flow;
        for (;;) {
            if (stop_token().stop_requested()) return Flow::stopped;
            if (limit_reached(limit_, kNoTime)) return Flow::end_of_stream;
            const std::int64_t now = steady_now_ns();
            const std::int64_t last = last_packet_ns();
            const bool timed_out = timeout_ns_ > 0 && now - (last != 0 ? last : started_ns_) > timeout_ns_;
            const std::int64_t media = media_limit_ns();
            const bool ending = timed_out || (media >= 0 && clock().now() >= media + latency_ns_);
            if (const auto sr = rtcp_.poll(now)) {
                // The SR's wall-clock instant on the running-time line: the clock runs with the
                // wall clock here (a device clock's drift over a second is well inside the
                // tolerance), so their difference now is their difference then.
                timespec wall{};
                ::clock_gettime(CLOCK_REALTIME, &wall);
                const std::int64_t wall_now = std::int64_t(wall.tv_sec) * 1'000'000'000 + wall.tv_nsec;
                const MediaTime running = wire::unix_ns_of_ntp(sr->info.ntp) - (wall_now - clock().now());
                sync_to_sender(sr->ssrc, sr->info.rtp_timestamp, running + latency_ns_);
            }
            if (const std::optional<Flow> played = play_due(now, ending)) return *played;
            if (ending) return Flow::end_of_stream;
            if (const auto datagram = udp_.receive(std::chrono::milliseconds(10))) {
                const std::int64_t arrival = steady_now_ns();
                const auto packet = wire::parse_rtp_packet(*datagram);
                if (const Flow f = file(*datagram); f != Flow::ok) return f;
                // Reported on: packets of the stream the receiver follows, not strays.
                if (packet && stream_ssrc() == packet->ssrc) rtcp_.received(*packet, arrival, rtp_clock_rate());
            }
        }
    }

    std::int64_t latency_ns() const noexcept { return latency_ns_; }

    // A property the pipeline gave, else the stream description's value (sdp=FILE; `sdp_value`,
    // when there is one), else the default.
    std::int64_t from_sdp(PropertyReader& r, std::string_view key, std::int64_t min, std::int64_t max,
                          std::optional<std::int64_t> sdp_value) {
        if (!r.given(key) && sdp_ && sdp_value) return *sdp_value;
        return r.integer(key, min, max);
    }
    // The description read from sdp=FILE, if one was given and it parsed.
    std::optional<wire::SdpStream> sdp_;
    RtcpReceiver rtcp_;
    engine::StreamLimit limit_;  // the subclass counts what it pushes in limit_.produced

private:
    static std::optional<wire::SdpStream> read_sdp(PropertyReader& r, const std::string& path) {
        std::string error;
        const int fd = open_regular_file(path, error);
        if (fd < 0) {
            r.fail(make_error_code(engine::GraphErrc::io_error), "sdp " + path + ": " + error);
            return std::nullopt;
        }
        std::string text(64 * 1024 + 1, '\0');
        const std::int64_t n = read_fully(fd, text.data(), text.size());
        ::close(fd);
        if (n < 0) {
            r.fail(make_error_code(engine::GraphErrc::io_error), "sdp " + path + ": " + std::strerror(int(-n)));
            return std::nullopt;
        }
        text.resize(std::size_t(n));
        wire::SdpStream stream;
        if (const auto bad = wire::parse_sdp(text, stream)) {
            r.fail(make_error_code(engine::GraphErrc::corrupt_file),
                   "sdp " + path + (bad->line > 0 ? ": line " + std::to_string(bad->line) : std::string()) + ": " + bad->what);
            return std::nullopt;
        }
        return stream;
    }

    std::uint16_t port_ = 5004;
    std::string address_ = "0.0.0.0";
    Multicast multicast_;
    std::int64_t latency_ns_ = 50'000'000;
    std::int64_t timeout_ns_ = 0;
    std::int64_t started_ns_ = 0;
    std::int64_t rtcp_port_ = 0;  // -1: no RTCP; 0: port + 1
    UdpReceiver udp_;
};

// The properties every RTP receiver takes, after the UDP ones.
inline std::vector<PropertySpec> rtp_receiver_properties(const char* latency_help) {
    return with(with(udp_receiver_properties(), rtcp_properties()),
                {{"sdp", "", "configure port, payload type and format from this SDP file (a sender's, e.g. ffmpeg "
                             "-sdp_file); properties given too take precedence"},
                 {"pt", "-1", "accept only this payload type (-1: any)"},
                 {"latency", "50", latency_help},
                 {"timeout", "0", "end the stream after this many ms without packets, from the start if none ever came "
                                  "(0: never)"}});
}

}  // namespace sluice::nodes::detail

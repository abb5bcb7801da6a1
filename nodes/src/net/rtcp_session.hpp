// SPDX-License-Identifier: MIT
#pragma once

// RTCP beside one RTP stream (RFC 3550 section 6), for the four RTP nodes. A sender sends a
// sender report (SR) about once a second to the stream's host at the RTCP port and reads the
// receiver reports (RR) that come back to its socket; a receiver listens on the RTCP port, learns
// from each SR where the sender's RTP time stands in wall-clock time, and answers the SR's
// sender with an RR about once a second (loss, highest sequence, jitter, and the SR it last
// heard, from which the sender measures the round trip). What the other side reported becomes
// statistics.
//
// One report a second: RFC 3550 6.2 allows a minimum interval of 360 / (session bandwidth in
// kbit/s) seconds, well under a second for every stream these nodes carry, and a second is what
// A/V sync and a loss display need. Hand-written rather than taken from a library: it runs on the
// streaming thread between packets, polls its socket without waiting, and allocates nothing after
// open().

#include "net/udp.hpp"

#include <sluice/wire/rtcp.hpp>
#include <sluice/wire/rtp.hpp>

#include <atomic>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sluice::nodes::detail {

// The RTCP port of a stream on `port` unless `rtcp_port` says otherwise (RFC 3550 11: the next
// one up; port 65535 has none).
inline Status rtcp_port_of(std::uint16_t port, std::int64_t rtcp_port, std::uint16_t& out) {
    if (rtcp_port <= 0 && port == 65535)
        return {engine::GraphErrc::invalid_argument, "port 65535 leaves no port + 1 for RTCP: give rtcp-port= or rtcp=false"};
    out = rtcp_port > 0 ? std::uint16_t(rtcp_port) : std::uint16_t(port + 1);
    return {};
}

// rtcp-port= as the RTP nodes read it: -1 for none, 0 for port + 1.
inline std::int64_t read_rtcp_port(PropertyReader& r) { return r.flag("rtcp") ? r.integer("rtcp-port", 0, 65535) : -1; }
inline std::vector<PropertySpec> rtcp_properties() {
    return {{"rtcp", "true", "send and receive RTCP reports (RFC 3550) beside the stream"},
            {"rtcp-port", "0", "the RTCP port (0: the RTP port + 1)"}};
}

// Opens a stream's RTP socket and, unless `rtcp_port` is -1 (rtcp=false), its RTCP socket beside
// it; when either fails, neither stays open. `Udp` and `Rtcp` are UdpSender and RtcpSender, or
// UdpReceiver and RtcpReceiver. Control thread (start).
template <class Udp, class Rtcp>
Status open_rtp_and_rtcp(Udp& udp, Rtcp& rtcp, const std::string& host, std::uint16_t port, std::int64_t rtcp_port,
                         const Multicast& multicast) {
    if (Status st = udp.open(host, port, multicast); !st) return st;
    if (rtcp_port < 0) return {};
    Status st = rtcp.open(host, port, rtcp_port, multicast);
    if (!st) udp.close();
    return st;
}

class RtcpSender {
public:
    // Beside a stream to host:port; `rtcp_port` as read_rtcp_port() gives it (0: port + 1).
    Status open(const std::string& host, std::uint16_t port, std::int64_t rtcp_port, const Multicast& multicast);
    void close() noexcept;

    // Streaming thread, after each RTP packet sent: its payload size. Reads any RR that came
    // back (every 5 ms at most). True when a sender report is due: then call report() with the
    // stream's RTP time at this moment (worked out only then, about once a second).
    bool sent(std::uint32_t ssrc, std::size_t payload_bytes) noexcept;
    // Sends the SR, tying `rtp_time_now` to the wall clock now. A send that fails is counted,
    // never fatal: RTCP is advice.
    void report(std::uint32_t rtp_time_now) noexcept { send_report(rtp_time_now, false); }
    // The stream ends: a last SR with a BYE (RFC 3550 6.6).
    void goodbye(std::uint32_t rtp_time_now) noexcept;

    std::vector<std::pair<std::string, std::uint64_t>> stats() const;

private:
    void send_report(std::uint32_t rtp_time_now, bool bye) noexcept;
    void read_reports() noexcept;

    UdpSender socket_;
    bool open_ = false;
    std::string cname_;
    std::uint32_t ssrc_ = 0, packets_ = 0, octets_ = 0;
    std::int64_t next_report_ns_ = 0, next_read_ns_ = 0;
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(1500);
    // relaxed, all: statistics, each read on its own.
    std::atomic<std::uint64_t> sr_sent_{0}, rr_received_{0}, rr_lost_{0}, rr_fraction_lost_{0}, rr_jitter_{0}, rtt_us_{0};
};

class RtcpReceiver {
public:
    // Listens beside a stream on `port` at `address` (a group: joined as the RTP socket joins
    // it); `rtcp_port` as read_rtcp_port() gives it (0: port + 1).
    Status open(const std::string& address, std::uint16_t port, std::int64_t rtcp_port, const Multicast& multicast);
    void close() noexcept;

    // Streaming thread: an RTP packet of the stream arrived at `arrival_ns` (steady clock), for
    // the loss and jitter an RR reports (RFC 3550 A.1, A.3, A.8). A new SSRC starts afresh.
    void received(const wire::RtpPacket& packet, std::int64_t arrival_ns, int clock_rate) noexcept;
    // Streaming thread, now and then: reads SRs (within 5 ms of their coming: a system call per
    // RTP packet would be waste), sends an RR when one is due. Returns the
    // newest SR of the current sender (any sender, before the first RTP packet) when one came
    // since the last call.
    struct SenderReport {
        std::uint32_t ssrc = 0;
        wire::RtcpSenderInfo info;
    };
    std::optional<SenderReport> poll(std::int64_t now_ns) noexcept;

    std::vector<std::pair<std::string, std::uint64_t>> stats() const;

private:
    void send_report(std::int64_t now_ns) noexcept;

    UdpReceiver socket_;
    bool open_ = false;
    std::string cname_;
    // The source: RFC 3550 A.1's sequence state and A.8's jitter.
    bool have_source_ = false;
    std::uint32_t ssrc_ = 0, own_ssrc_ = 0;
    std::uint16_t max_sequence_ = 0;
    std::uint32_t cycles_ = 0, base_sequence_ = 0, received_ = 0;
    std::uint32_t expected_prior_ = 0, received_prior_ = 0;
    std::uint32_t last_transit_ = 0;
    bool have_transit_ = false;
    double jitter_ = 0;  // in RTP ticks
    // The last SR: its instant in both clocks, when it came, who sent it.
    bool have_sr_ = false;
    std::uint32_t sr_ssrc_ = 0;
    wire::RtcpSenderInfo sr_{};
    std::int64_t sr_arrival_ns_ = 0;
    asio::ip::udp::endpoint sr_from_;
    std::int64_t next_report_ns_ = 0;
    std::int64_t next_read_ns_ = 0;  // SRs are read every 5 ms, not on every RTP packet
    std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(1500);
    // relaxed, all: statistics, each read on its own.
    std::atomic<std::uint64_t> sr_received_{0}, rr_sent_{0}, jitter_ticks_{0};
};

}  // namespace sluice::nodes::detail

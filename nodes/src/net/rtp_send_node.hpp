// SPDX-License-Identifier: MIT
#pragma once

// The skeleton rtpsink and rtpvrawsink share, as rtp_receive_node.hpp is the receivers': the
// properties every RTP sender takes, the UDP and RTCP sockets, the stream's random SSRC, sequence
// and timestamp, its SDP file, the pacing wait between packets, sending a packet (with a sender
// report about once a second), and the BYE at the end of the stream. The payload format lives in
// the subclass. `Base` is the node base the subclass needs: engine::Node, or VideoNode for the
// video error paths.

#include "core/common.hpp"
#include "net/rtcp_session.hpp"
#include "net/udp.hpp"

#include <sluice/wire/rtp.hpp>
#include <sluice/wire/sdp.hpp>

#include <sluice/engine/node.hpp>
#include <sluice/nodes/registry.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::nodes::detail {

template <class Base>
class RtpSendNode : public Base {
public:
    // packets_sent, then RTCP's counters. Any thread; allocates.
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override { return sender_stats({}); }

protected:
    // Reads where every sender sends: host, port, multicast, sync and mtu. The subclass reads its
    // payload's properties next, then calls read_sdp_and_rtcp(): properties are read in the order
    // the node's help lists them, so that of two bad ones the first is the one named (a
    // PropertyReader keeps its first error). Control thread.
    RtpSendNode(std::string name, PropertyReader& r) : Base(std::move(name), engine::Node::Kind::render) {
        host_ = r.text("host");
        port_ = std::uint16_t(r.integer("port", 1, 65535));
        multicast_ = read_sender_multicast(r);
        sync_ = r.flag("sync");
        mtu_ = std::size_t(r.integer("mtu", 64, 65507));
        packet_.resize(mtu_);
    }
    // sdp=, rtcp= and rtcp-port=. Control thread.
    void read_sdp_and_rtcp(PropertyReader& r) {
        sdp_path_ = r.text("sdp");
        rtcp_port_ = read_rtcp_port(r);
    }

    // The stream's RTP time at this moment, for the sender reports. Streaming thread.
    virtual std::uint32_t rtp_time_now() const = 0;
    // Fills in the media part of the SDP description (media, payload type, encoding, clock rate
    // and the format's lines); the session name, address, TTL and port are filled in here.
    // Control thread (start), and only when sdp= was given.
    virtual void describe(wire::SdpStream& sdp) const = 0;

    // Opens the sockets, draws the stream's random starting numbers (RFC 3550 5.1 and 8.1: so that
    // streams and restarts of one differ) and writes the SDP file. A subclass that resets state of
    // its own does that first, then calls this. Control thread.
    Status start() override {
        if (Status st = open_rtp_and_rtcp(udp_, rtcp_, host_, port_, rtcp_port_, multicast_); !st) return st;
        this->set_clocked(sync_);  // the node's own choice, whatever the app set for renders at large
        std::random_device random;
        ssrc_ = random();
        sequence_ = random();
        timestamp_origin_ = random();
        if (sdp_path_.empty()) return {};
        wire::SdpStream sdp;
        sdp.session = "Sluice " + this->name();
        sdp.address = host_;
        sdp.ttl = is_multicast(host_) ? multicast_.ttl : 0;
        sdp.port = port_;
        describe(sdp);
        return write_text_file(sdp_path_, wire::write_sdp(sdp), "sdp");
    }
    std::vector<engine::Node::FileUse> file_uses() const override {
        if (sdp_path_.empty()) return {};
        return {{sdp_path_, true}};
    }
    void stop() override {
        udp_.close();
        rtcp_.close();
    }
    // The stream ends: RTCP's last report and BYE go before the end is passed on.
    void end_of_stream(std::size_t input) override {
        rtcp_.goodbye(rtp_time_now());
        Base::end_of_stream(input);
    }

    // Streaming thread: waits until `due` on the graph's clock before the next packet leaves (a
    // wait shorter than kPacingSlackNs is not worth a sleep). Flow::ok to send on; stopped or
    // flushing to return. A pause cuts the wait short and clears `pacing`: what is left of the
    // sample then goes at once. Allocates nothing.
    engine::Flow pace_until(MediaTime due, bool& pacing) {
        if (due - this->clock().now() <= kPacingSlackNs) return engine::Flow::ok;
        const engine::ClockWait w = this->clock().wait_until(due, this->stop_token());
        if (w == engine::ClockWait::stopped) return engine::Flow::stopped;
        if (w == engine::ClockWait::interrupted) {
            if (this->flushing()) return engine::Flow::flushing;
            pacing = false;  // paused meanwhile
        }
        return engine::Flow::ok;
    }

    // Streaming thread: writes the RTP header before the `payload_bytes` of payload the subclass
    // put in packet_ (the next sequence number, this stream's SSRC) and sends the packet; then, about
    // once a second, a sender report. Flow::ok, or Flow::error with a failure reported as
    // "`who`: send to host:port failed: ...". Allocates only to report an error.
    engine::Flow send_rtp(std::uint8_t payload_type, bool marker, std::uint32_t timestamp, std::size_t payload_bytes,
                          std::string_view who) {
        wire::write_rtp_header(packet_.data(), payload_type, marker, std::uint16_t(sequence_++), timestamp, ssrc_);
        if (const std::error_code ec = udp_.send({packet_.data(), kRtpHeader + payload_bytes}))
            return this->report_error(ec, std::string(who) + ": send to " + host_ + ":" + std::to_string(port_) +
                                              " failed: " + ec.message());
        packets_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        if (rtcp_.sent(ssrc_, payload_bytes)) rtcp_.report(rtp_time_now());
        return engine::Flow::ok;
    }

    // packets_sent, then the subclass's `own` counters, then RTCP's. Any thread; allocates.
    std::vector<std::pair<std::string, std::uint64_t>> sender_stats(std::vector<std::pair<std::string, std::uint64_t>> own) const {
        own.insert(own.begin(), {"packets_sent", packets_.load(std::memory_order_relaxed)});  // relaxed: a statistic
        for (auto& s : rtcp_.stats()) own.push_back(std::move(s));
        return own;
    }

    static constexpr std::size_t kRtpHeader = 12;
    static constexpr std::int64_t kPacingSlackNs = 100'000;  // shorter waits are not worth a sleep
    std::size_t mtu_ = 1400;
    std::vector<std::uint8_t> packet_;  // mtu_ bytes: the header, then the payload the subclass writes
    // The next packet's sequence number in the low 16 bits; RFC 4175's extended sequence number
    // counts the wraps above them. Random at start.
    std::uint32_t sequence_ = 0;
    std::uint32_t timestamp_origin_ = 0;  // the stream's RTP time origin, random at start

private:
    std::string host_;
    std::uint16_t port_ = 5004;
    Multicast multicast_;
    bool sync_ = true;
    std::string sdp_path_;        // sdp=: where to describe the stream, or empty
    std::int64_t rtcp_port_ = 0;  // -1: no RTCP; 0: port + 1
    UdpSender udp_;
    RtcpSender rtcp_;
    std::uint32_t ssrc_ = 0;
    std::atomic<std::uint64_t> packets_{0};
};

// The properties every RTP sender takes, but sdp= (each sender describes what its file holds).
inline std::vector<PropertySpec> rtp_sender_properties(const char* mtu_help) {
    return with(with(udp_sender_properties(), rtcp_properties()), {{"mtu", "1400", mtu_help}});
}

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
// RTP over UDP with Asio: `rtpsink` sends L16 audio (RFC 3550/3551), `rtpsrc` receives it into a
// small jitter buffer that reorders, counts lost and late packets, and turns gaps into silence
// flagged as a discontinuity, never a stall. Interoperates with GStreamer's rtpL16pay/depay.
#include <sluice/nodes/rtp.hpp>

#include "common.hpp"
#include "rtp_timeline.hpp"
#include "specs.hpp"
#include "udp.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

namespace sluice::nodes {

std::optional<RtpPacket> parse_rtp_packet(std::span<const std::uint8_t> d) noexcept {
    if (d.size() < 12) return std::nullopt;
    if ((d[0] >> 6) != 2) return std::nullopt;  // version
    const bool padding = (d[0] & 0x20) != 0, extension = (d[0] & 0x10) != 0;
    const std::size_t csrc = d[0] & 0x0F;
    std::size_t header = 12 + 4 * csrc;
    if (d.size() < header) return std::nullopt;
    if (extension) {
        if (d.size() < header + 4) return std::nullopt;
        const std::size_t words = std::size_t(d[header + 2]) << 8 | d[header + 3];
        header += 4 + 4 * words;
        if (d.size() < header) return std::nullopt;
    }
    std::size_t end = d.size();
    if (padding) {
        const std::size_t pad = d[end - 1];
        if (pad == 0 || pad > end - header) return std::nullopt;
        end -= pad;
    }
    RtpPacket p;
    p.marker = (d[1] & 0x80) != 0;
    p.payload_type = d[1] & 0x7F;
    p.sequence = std::uint16_t(d[2] << 8 | d[3]);
    p.timestamp = std::uint32_t(d[4]) << 24 | std::uint32_t(d[5]) << 16 | std::uint32_t(d[6]) << 8 | d[7];
    p.ssrc = std::uint32_t(d[8]) << 24 | std::uint32_t(d[9]) << 16 | std::uint32_t(d[10]) << 8 | d[11];
    p.payload = d.subspan(header, end - header);
    return p;
}

void write_rtp_header(std::uint8_t* out, std::uint8_t payload_type, bool marker, std::uint16_t sequence,
                      std::uint32_t timestamp, std::uint32_t ssrc) noexcept {
    out[0] = 0x80;  // version 2, no padding, no extension, no CSRC
    out[1] = std::uint8_t((marker ? 0x80 : 0) | (payload_type & 0x7F));
    out[2] = std::uint8_t(sequence >> 8);
    out[3] = std::uint8_t(sequence);
    for (int i = 0; i < 4; ++i) out[4 + i] = std::uint8_t(timestamp >> (24 - 8 * i));
    for (int i = 0; i < 4; ++i) out[8 + i] = std::uint8_t(ssrc >> (24 - 8 * i));
}

namespace {

using engine::BufferNeeds;
using engine::Flow;
using engine::MediaFormat;
using engine::SampleFormat;

using detail::kMaxDatagram;

// RFC 3551's static L16 payload types are 44.1 kHz only; everything else uses a dynamic one.
int static_payload_type(int rate, int channels) {
    if (rate == 44100 && channels == 2) return 10;
    if (rate == 44100 && channels == 1) return 11;
    return -1;
}

class RtpSink final : public Node {
public:
    RtpSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
        host_ = r.text("host");
        port_ = std::uint16_t(r.integer("port", 1, 65535));
        mtu_ = std::size_t(r.integer("mtu", 64, 65507));
        pt_ = int(r.integer("pt", -1, 127));
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16)});
        packet_.resize(mtu_);
    }
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"packets_sent", packets_.load(std::memory_order_relaxed)}};  // relaxed: a statistic
    }

private:
    Status start() override {
        if (Status st = udp_.open(host_, port_); !st) return st;
        const MediaFormat& f = input(0).format();
        payload_type_ = std::uint8_t(pt_ >= 0 ? pt_ : std::max(static_payload_type(f.rate, f.channels), 96));
        std::random_device random;
        ssrc_ = random();
        sequence_ = std::uint16_t(random());
        timestamp_ = random();
        first_ = true;
        return {};
    }
    void stop() override { udp_.close(); }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        const std::size_t frame = input(0).format().frame_bytes();
        const std::size_t per_packet = std::max<std::size_t>((mtu_ - 12) / frame, 1) * frame;
        const auto* pcm = reinterpret_cast<const std::uint8_t*>(s.data());
        for (std::size_t done = 0; done < s.size();) {
            const std::size_t n = std::min(per_packet, s.size() - done);
            write_rtp_header(packet_.data(), payload_type_, first_, sequence_++, timestamp_, ssrc_);
            for (std::size_t i = 0; i + 1 < n; i += 2) {  // L16 is big-endian
                packet_[12 + i] = pcm[done + i + 1];
                packet_[12 + i + 1] = pcm[done + i];
            }
            if (const std::error_code ec = udp_.send({packet_.data(), 12 + n}))
                return report_error(ec, "rtpsink: send to " + host_ + ":" + std::to_string(port_) + " failed: " + ec.message());
            packets_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
            timestamp_ += std::uint32_t(n / frame);
            first_ = false;
            done += n;
        }
        return Flow::ok;
    }

    std::string host_;
    std::uint16_t port_ = 5004;
    std::size_t mtu_ = 1400;
    int pt_ = -1;
    std::uint8_t payload_type_ = 96;
    detail::UdpSender udp_;
    std::vector<std::uint8_t> packet_;
    std::uint32_t ssrc_ = 0, timestamp_ = 0;
    std::uint16_t sequence_ = 0;
    bool first_ = true;
    std::atomic<std::uint64_t> packets_{0};
};

// Receives L16 packets on a UDP port. The jitter buffer holds up to kSlots packets by sequence
// number; packets are emitted in order; a missing one is given up after `latency` ms (or when
// the buffer is full) and replaced by silence flagged as a discontinuity. Packets from another
// sender than the first, of another payload type, malformed or of an odd size are counted and
// dropped. The stream ends after `timeout` ms without packets (once some have arrived).
class RtpSrc final : public Node {
public:
    RtpSrc(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        port_ = std::uint16_t(r.integer("port", 1, 65535));
        address_ = r.text("address");
        const int rate = int(r.integer("rate", 1, 384000));
        const int channels = int(r.integer("channels", 1, 64));
        pt_ = int(r.integer("pt", -1, 127));
        latency_ns_ = r.integer("latency", 0, 10'000) * 1'000'000;
        timeout_ns_ = r.integer("timeout", 0, 3'600'000) * 1'000'000;
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        add_output("src", {MediaFormat::audio(rate, channels, SampleFormat::s16)});
        for (auto& slot : slots_) slot.data.resize(kMaxDatagram);
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override { return counters_.snapshot(); }

private:

    static constexpr std::size_t kSlots = 64;
    struct Slot {
        bool full = false;
        std::uint16_t sequence = 0;
        std::uint32_t timestamp = 0;
        std::size_t bytes = 0;
        std::int64_t arrived_ns = 0;
        std::vector<std::uint8_t> data;
    };

    BufferNeeds output_buffers(std::size_t) const override { return {kMaxDatagram, 1}; }

    Status start() override {
        if (Status st = udp_.open(address_, port_); !st) return st;
        for (auto& slot : slots_) slot.full = false;
        have_sender_ = false;
        have_next_ = false;
        last_packet_ns_ = 0;
        last_frames_ = 0;
        limit_.produced = 0;
        return {};
    }
    void stop() override { udp_.close(); }
    // Stop and flush: cancel the pending receive.
    void unblock() override { udp_.unblock(); }

    Flow produce() override {
        for (;;) {
            if (stop_token().stop_requested()) return Flow::stopped;
            if (limit_.reached(0, -1)) return Flow::end_of_stream;
            if (Slot* ready = next_ready()) return emit(*ready);
            if (have_next_ && give_up_on_next()) return emit_silence();
            const std::int64_t now = detail::steady_now_ns();
            if (timeout_ns_ > 0 && last_packet_ns_ != 0 && now - last_packet_ns_ > timeout_ns_) return drain_or_end();
            if (auto datagram = udp_.receive(std::chrono::milliseconds(10)); !datagram.empty()) file(datagram);
        }
    }

    void file(std::span<const std::uint8_t> datagram) {
        const auto packet = parse_rtp_packet(datagram);
        const std::size_t frame = output(0).format().frame_bytes();
        // relaxed everywhere below: statistics.
        if (!packet || packet->payload.empty() || packet->payload.size() % frame != 0 ||
            (pt_ >= 0 && packet->payload_type != pt_)) {
            counters_.malformed.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (!have_sender_) {
            have_sender_ = true;
            ssrc_ = packet->ssrc;
        } else if (packet->ssrc != ssrc_) {
            counters_.foreign.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        last_packet_ns_ = detail::steady_now_ns();
        counters_.received.fetch_add(1, std::memory_order_relaxed);
        if (!have_next_) {
            have_next_ = true;
            next_ = packet->sequence;
            next_timestamp_ = packet->timestamp;
            timeline_.anchor(packet->timestamp, clock().now() + latency_ns_);
        }
        const auto ahead = std::uint16_t(packet->sequence - next_);
        if (ahead >= 0x8000) {  // behind what was already played
            counters_.late.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        if (ahead >= kSlots) {  // too far ahead to wait for what is missing: start again from here
            counters_.lost.fetch_add(ahead, std::memory_order_relaxed);
            for (auto& slot : slots_) slot.full = false;
            next_ = packet->sequence;
            next_timestamp_ = packet->timestamp;
            gap_ = true;
        }
        Slot& slot = slots_[packet->sequence % kSlots];
        if (slot.full && slot.sequence == packet->sequence) {
            counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        slot.full = true;
        slot.sequence = packet->sequence;
        slot.timestamp = packet->timestamp;
        slot.bytes = packet->payload.size();
        slot.arrived_ns = last_packet_ns_;
        std::memcpy(slot.data.data(), packet->payload.data(), slot.bytes);
    }

    Slot* next_ready() {
        if (!have_next_) return nullptr;
        Slot& slot = slots_[next_ % kSlots];
        return slot.full && slot.sequence == next_ ? &slot : nullptr;
    }

    // Whether the packet we wait for is overdue: a later one has waited longer than the latency.
    bool give_up_on_next() const {
        const std::int64_t now = detail::steady_now_ns();
        for (const Slot& s : slots_)
            if (s.full && now - s.arrived_ns > latency_ns_) return true;
        return false;
    }

    Flow emit(Slot& slot) {
        auto s = get_buffer(0);
        if (!s) return detail::flow_of_get_error(s.error());
        const std::size_t n = std::min(slot.bytes, s->capacity());
        auto* out = reinterpret_cast<std::uint8_t*>(s->data());
        for (std::size_t i = 0; i + 1 < n; i += 2) {  // L16 big-endian to s16 native
            out[i] = slot.data[i + 1];
            out[i + 1] = slot.data[i];
        }
        (void)s->set_size(n);
        stamp(*s, slot.timestamp, n / output(0).format().frame_bytes());
        if (gap_) s->add_flags(SampleFlags::discontinuity);
        gap_ = false;
        slot.full = false;
        last_frames_ = n / output(0).format().frame_bytes();
        next_timestamp_ = slot.timestamp + std::uint32_t(last_frames_);
        ++next_;
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    // The packet `next_` is lost: play silence of the length the timestamps say is missing.
    Flow emit_silence() {
        counters_.lost.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        const std::size_t frame = output(0).format().frame_bytes();
        std::size_t frames = last_frames_;
        for (std::uint16_t k = 1; k < kSlots; ++k) {  // the next packet we hold tells where the gap ends
            const Slot& s = slots_[std::uint16_t(next_ + k) % kSlots];
            if (s.full && s.sequence == std::uint16_t(next_ + k)) {
                frames = std::uint32_t(s.timestamp - next_timestamp_) / k;
                break;
            }
        }
        ++next_;
        gap_ = true;
        if (frames == 0 || frames * frame > kMaxDatagram) return Flow::ok;  // nothing sensible to fill
        auto s = get_buffer(0);
        if (!s) return detail::flow_of_get_error(s.error());
        std::memset(s->data(), 0, frames * frame);
        (void)s->set_size(frames * frame);
        stamp(*s, next_timestamp_, frames);
        s->add_flags(SampleFlags::discontinuity);
        next_timestamp_ += std::uint32_t(frames);
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    // No packet for `timeout`: play out what is buffered, then end the stream.
    Flow drain_or_end() {
        if (Slot* ready = next_ready()) return emit(*ready);
        if (std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.full; })) return emit_silence();
        return Flow::end_of_stream;
    }

    void stamp(SampleRef& s, std::uint32_t timestamp, std::size_t frames) const {
        const int rate = output(0).format().rate;
        const MediaTime start = timeline_.running_time(timestamp, rate);
        s.set_times(start, start + std::int64_t(frames) * 1'000'000'000 / rate);
    }

    std::uint16_t port_ = 5004;
    std::string address_ = "0.0.0.0";
    int pt_ = -1;
    std::int64_t latency_ns_ = 50'000'000;
    std::int64_t timeout_ns_ = 0;
    detail::StreamLimit limit_;
    detail::UdpReceiver udp_;
    std::array<Slot, kSlots> slots_;
    bool have_sender_ = false, have_next_ = false, gap_ = false;
    std::uint32_t ssrc_ = 0, next_timestamp_ = 0;
    std::uint16_t next_ = 0;
    detail::RtpTimeline timeline_;
    std::int64_t last_packet_ns_ = 0;
    std::size_t last_frames_ = 0;
    detail::PacketCounters counters_;
};

}  // namespace

NodeSpec rtpsink_spec() {
    return {"rtpsink", Node::Kind::render, "sends s16 audio as RTP L16 (RFC 3550/3551) over UDP",
            detail::with(detail::udp_sender_properties(),
                         {{"mtu", "1400", "largest datagram in bytes (packets are cut to whole frames below it)"},
                          {"pt", "-1", "payload type (-1: 10/11 for 44.1 kHz stereo/mono, else 96)"}}),
            [](std::string name, PropertyReader& r) { return std::make_unique<RtpSink>(std::move(name), r); }};
}

NodeSpec rtpsrc_spec() {
    return {"rtpsrc", Node::Kind::source,
            "receives RTP L16 audio over UDP; reorders, counts lost/late packets, fills gaps with silence",
            detail::with(detail::udp_receiver_properties(),
                         {{"rate", "48000", "sample rate of the stream (RTP clock rate)"},
                          {"channels", "2", "channel count of the stream"},
                          {"pt", "-1", "accept only this payload type (-1: any)"},
                          {"latency", "50", "jitter buffer: ms a packet may wait for one missing before it"},
                          {"timeout", "0", "end the stream after this many ms without packets (0: never)"},
                          detail::num_buffers_property()}),
            [](std::string name, PropertyReader& r) { return std::make_unique<RtpSrc>(std::move(name), r); }};
}

}  // namespace sluice::nodes

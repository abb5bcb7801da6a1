// SPDX-License-Identifier: MIT
// RTP over UDP with Asio: `rtpsink` sends L16 audio (RFC 3550/3551), `rtpsrc` receives it into a
// small jitter buffer that reorders, counts lost and late packets, and turns gaps into silence
// flagged as a discontinuity, never a stall. Interoperates with GStreamer's rtpL16pay/depay.
#include <sluice/wire/rtp.hpp>
#include <sluice/wire/sdp.hpp>

#include "core/common.hpp"
#include "net/rtp_audio_receiver.hpp"
#include "net/rtp_receive_node.hpp"
#include <sluice/nodes/registry.hpp>
#include "net/udp.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstring>
#include <random>
#include <vector>

namespace sluice::nodes {

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
        multicast_ = detail::read_sender_multicast(r);
        sync_ = r.flag("sync");
        mtu_ = std::size_t(r.integer("mtu", 64, 65507));
        pt_ = int(r.integer("pt", -1, 127));
        sdp_path_ = r.text("sdp");
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16)});
        packet_.resize(mtu_);
    }
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"packets_sent", packets_.load(std::memory_order_relaxed)}};  // relaxed: a statistic
    }

private:
    // A packet carries whole frames and never more than `mtu` bytes: a frame that does not fit
    // is refused here rather than sent oversized (or written past the packet buffer).
    Status configure() override {
        const std::size_t frame = input(0).format().frame_bytes();
        if (frame + 12 > mtu_)
            return {engine::GraphErrc::invalid_argument, "mtu=" + std::to_string(mtu_) + " cannot carry one frame of " +
                                                input(0).format().to_string() + " (" + std::to_string(frame) +
                                                " bytes after the 12-byte RTP header); raise mtu or use fewer channels"};
        return {};
    }
    Status start() override {
        if (Status st = udp_.open(host_, port_, multicast_); !st) return st;
        set_clocked(sync_);  // the node's own choice, whatever the app set for renders at large
        const MediaFormat& f = input(0).format();
        payload_type_ = std::uint8_t(pt_ >= 0 ? pt_ : std::max(static_payload_type(f.rate, f.channels), 96));
        std::random_device random;
        ssrc_ = random();
        sequence_ = std::uint16_t(random());
        timestamp_ = random();
        first_ = true;
        if (sdp_path_.empty()) return {};
        // The description a receiver needs (ffmpeg -i FILE, ffplay, GStreamer's sdpdemux): L16
        // at our rate and channels, and the packet time that mtu= makes.
        const std::size_t frames_per_packet = (mtu_ - 12) / f.frame_bytes();
        wire::SdpStream sdp;
        sdp.media = wire::SdpStream::Media::audio;
        sdp.session = "Sluice " + name();
        sdp.address = host_;
        sdp.ttl = detail::is_multicast(host_) ? multicast_.ttl : 0;
        sdp.port = port_;
        sdp.payload_type = payload_type_;
        sdp.encoding = "L16";
        sdp.clock_rate = f.rate;
        sdp.channels = f.channels;
        sdp.ptime_ms = 1000.0 * double(frames_per_packet) / f.rate;
        return detail::write_text_file(sdp_path_, wire::write_sdp(sdp), "sdp");
    }
    std::vector<FileUse> file_uses() const override {
        if (sdp_path_.empty()) return {};
        return {{sdp_path_, true}};
    }
    void stop() override { udp_.close(); }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        const std::size_t frame = input(0).format().frame_bytes();
        const std::size_t per_packet = (mtu_ - 12) / frame * frame;  // >= one frame: see configure()
        const auto* pcm = reinterpret_cast<const std::uint8_t*>(s.data());
        for (std::size_t done = 0; done < s.size();) {
            const std::size_t n = std::min(per_packet, s.size() - done);
            wire::write_rtp_header(packet_.data(), payload_type_, first_, sequence_++, timestamp_, ssrc_);
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
    detail::Multicast multicast_;
    bool sync_ = true;
    std::size_t mtu_ = 1400;
    int pt_ = -1;
    std::string sdp_path_;  // sdp=: where to describe the stream, or empty
    std::uint8_t payload_type_ = 96;
    detail::UdpSender udp_;
    std::vector<std::uint8_t> packet_;
    std::uint32_t ssrc_ = 0, timestamp_ = 0;
    std::uint16_t sequence_ = 0;
    bool first_ = true;
    std::atomic<std::uint64_t> packets_{0};
};

// Receives L16 packets on a UDP port into an RtpAudioReceiver (rtp_audio_receiver.hpp says what
// it does with each datagram) and plays what it gives, in order: packets converted to native s16,
// silence (flagged as a discontinuity) for packets given up on. The stream ends after `timeout`
// ms without packets (counted from the start when none ever came), and at the graph's media
// duration: running time is media time for a live source, so that holds without any packet too.
class RtpSrc final : public detail::RtpReceiveNode {
public:
    RtpSrc(std::string name, PropertyReader& r) : RtpReceiveNode(std::move(name), r), receiver_(config_of(r)) {
        add_output("src", {MediaFormat::audio(rate_, channels_, SampleFormat::s16)});
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return receiver_.counters().snapshot();
    }

private:
    detail::RtpAudioReceiver::Config config_of(PropertyReader& r) {
        if (sdp_ && (sdp_->media != wire::SdpStream::Media::audio || sdp_->encoding != "L16"))
            r.fail(make_error_code(engine::GraphErrc::unsupported_format),
                   "the SDP describes " + std::string(sdp_->media == wire::SdpStream::Media::audio ? "audio" : "video") +
                       " '" + detail::printable(sdp_->encoding) + "', and rtpsrc receives L16 audio");
        rate_ = int(from_sdp(r, "rate", 1, 384000, sdp_ ? std::optional<std::int64_t>(sdp_->clock_rate) : std::nullopt));
        channels_ = int(from_sdp(r, "channels", 1, 64, sdp_ ? std::optional<std::int64_t>(sdp_->channels) : std::nullopt));
        const int pt = int(from_sdp(r, "pt", -1, 127, sdp_ ? std::optional<std::int64_t>(sdp_->payload_type) : std::nullopt));
        return {.frame_bytes = std::size_t(channels_) * 2, .rate = rate_, .payload_type = pt, .latency_ns = latency_ns()};
    }

    BufferNeeds output_buffers(std::size_t) const override { return {kMaxDatagram, 1}; }

    Status start() override {
        receiver_.reset();
        warned_misfit_ = false;
        return RtpReceiveNode::start();
    }

    std::int64_t last_packet_ns() const noexcept override { return receiver_.last_packet_ns(); }

    std::optional<Flow> play_due(std::int64_t now, bool ending) override {
        const auto ready = receiver_.next(now, ending);
        if (ready.kind == detail::RtpAudioReceiver::Ready::Kind::none) return std::nullopt;
        if (limit_reached(limit_, ready.start)) return Flow::end_of_stream;
        return play(ready);
    }

    Flow file(std::span<const std::uint8_t> datagram) override {
        receiver_.receive(datagram, detail::steady_now_ns(), clock().now());
        if (const std::size_t bytes = receiver_.misfit_payload_bytes(); bytes != 0 && !warned_misfit_) {
            warned_misfit_ = true;
            report_warning("a payload of " + std::to_string(bytes) + " bytes is not whole frames of " +
                           output(0).format().to_string() + " (" + std::to_string(output(0).format().frame_bytes()) +
                           " bytes each): check rate= and channels= against the sender; such packets are counted as "
                           "malformed");
        }
        return Flow::ok;
    }

    Flow play(const detail::RtpAudioReceiver::Ready& ready) {
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        const std::size_t frame = output(0).format().frame_bytes();
        const std::size_t n = std::min(ready.frames * frame, s->capacity() / frame * frame);
        auto* out = reinterpret_cast<std::uint8_t*>(s->data());
        if (ready.kind == detail::RtpAudioReceiver::Ready::Kind::audio) {
            wire::l16_to_native(ready.payload.data(), out, n);
        } else {
            std::memset(out, 0, n);
        }
        (void)s->set_size(n);
        s->set_times(ready.start, ready.start + engine::frames_to_ns(n / frame, rate_));
        if (ready.discontinuity) s->add_flags(SampleFlags::discontinuity);
        receiver_.consume();
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    int rate_ = 48000, channels_ = 2;
    bool warned_misfit_ = false;
    detail::RtpAudioReceiver receiver_;
};

}  // namespace

NodeSpec rtpsink_spec() {
    return {"rtpsink", Node::Kind::render, "sends s16 audio as RTP L16 (RFC 3550/3551) over UDP",
            detail::with(detail::udp_sender_properties(),
                         {{"mtu", "1400", "largest datagram in bytes (packets are cut to whole frames below it)"},
                          {"sdp", "", "write the stream's SDP description to this file at start (for ffmpeg, ffplay, sdpdemux)"},
                          {"pt", "-1", "payload type (-1: 10/11 for 44.1 kHz stereo/mono, else 96)"}}),
            factory<RtpSink>()};
}

NodeSpec rtpsrc_spec() {
    return {"rtpsrc", Node::Kind::source,
            "receives RTP L16 audio over UDP; reorders, counts lost/late packets, fills gaps with silence",
            detail::with(detail::rtp_receiver_properties("jitter buffer: ms a packet may wait for one missing before it"),
                         {{"rate", "48000", "sample rate of the stream (RTP clock rate)"},
                          {"channels", "2", "channel count of the stream"},
                          detail::num_buffers_property()}),
            factory<RtpSrc>()};
}

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
// RTP over UDP with Asio: `rtpsink` sends L16 or L24 audio (RFC 3550/3551/3190, AES67's profile), `rtpsrc` receives it into a
// small jitter buffer that reorders, counts lost and late packets, and turns gaps into silence
// flagged as a discontinuity, never a stall. Interoperates with GStreamer's rtpL16pay/depay.
#include <sluice/wire/rtp.hpp>
#include <sluice/wire/sdp.hpp>

#include "core/common.hpp"
#include "net/rtp_audio_receiver.hpp"
#include "net/rtp_receive_node.hpp"
#include "net/rtcp_session.hpp"
#include "net/rtp_send_node.hpp"
#include <sluice/nodes/registry.hpp>
#include "net/udp.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <ctime>
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

// The two PCM payloads (RFC 3551 L16, RFC 3190 L24) and the native sample format each carries.
enum class Pcm { l16, l24 };
const std::vector<std::string> kPcmNames{"L16", "L24"};
SampleFormat sample_format_of(Pcm pcm) { return pcm == Pcm::l24 ? SampleFormat::s24 : SampleFormat::s16; }

class RtpSink final : public detail::RtpSendNode<Node> {
public:
    RtpSink(std::string name, PropertyReader& r) : RtpSendNode(std::move(name), r) {
        pt_ = int(r.integer("pt", -1, 127));
        read_sdp_and_rtcp(r);
        // AES67 (and ST 2110-30's level A): 48 kHz, L24 unless L16 is asked for, 1 ms packets,
        // at most 8 channels, RTP time taken from the reference clock, and the SDP says so.
        aes67_ = r.choice("profile", {"none", "aes67"}) == 1;
        pcm_ = aes67_ && !r.given("encoding") ? Pcm::l24 : Pcm(r.choice("encoding", kPcmNames));
        ptime_ms_ = aes67_ && !r.given("ptime") ? 1.0 : r.number("ptime", 0, 1000);
        ts_refclk_ = r.text("ts-refclk");
        if (ts_refclk_.find_first_of("\r\n") != std::string::npos)
            r.fail(make_error_code(engine::GraphErrc::invalid_argument), this->name() + ": ts-refclk= is one SDP line's value");
        add_input("sink", {MediaFormat::audio(aes67_ ? 48000 : 0, 0, sample_format_of(pcm_))});
    }

private:
    // A packet carries whole frames and never more than `mtu` bytes: a frame (or a ptime's worth
    // of them) that does not fit is refused here rather than sent oversized.
    Status configure() override {
        const MediaFormat& f = input(0).format();
        const std::size_t frame = f.frame_bytes();
        auto refuse = [&](const std::string& why) { return Status{engine::GraphErrc::invalid_argument, name() + ": " + why}; };
        if (aes67_ && f.channels > 8)
            return refuse("profile=aes67 carries at most 8 channels, not " + std::to_string(f.channels) +
                          " (send more as several streams)");
        frames_per_packet_ = (mtu_ - std::min<std::size_t>(mtu_, 12)) / frame;
        if (ptime_ms_ > 0) {
            const double exact = f.rate * ptime_ms_ / 1000.0;
            const auto frames = std::size_t(std::llround(exact));
            // AES67's 0.333 ms is 16 frames at 48 kHz: a packet time within 1% of whole frames.
            if (frames < 1 || std::abs(double(frames) - exact) > 0.01 * exact)
                return refuse("ptime=" + detail::number_text(ptime_ms_) + " ms is not a whole number of frames at " +
                              std::to_string(f.rate) + " Hz (" + detail::number_text(exact) + ")");
            if (frames > frames_per_packet_)
                return refuse("ptime=" + detail::number_text(ptime_ms_) + " ms of " + f.to_string() + " is " +
                              std::to_string(frames * frame + 12) + " bytes a packet, more than mtu=" +
                              std::to_string(mtu_) + "; raise mtu or shorten ptime");
            frames_per_packet_ = frames;
        }
        if (frames_per_packet_ == 0)
            return refuse("mtu=" + std::to_string(mtu_) + " cannot carry one frame of " + f.to_string() + " (" +
                          std::to_string(frame) + " bytes after the 12-byte RTP header); raise mtu or use fewer channels");
        return {};
    }
    Status start() override {
        const MediaFormat& f = input(0).format();
        payload_type_ = std::uint8_t(pt_ >= 0 ? pt_ : std::max(pcm_ == Pcm::l16 ? static_payload_type(f.rate, f.channels) : -1, 96));
        first_ = true;
        stamped_ = false;
        pending_ = 0;
        return RtpSendNode::start();
    }
    // The description a receiver needs (ffmpeg -i FILE, ffplay, GStreamer's sdpdemux): the
    // encoding at our rate and channels, and the packet time.
    void describe(wire::SdpStream& sdp) const override {
        const MediaFormat& f = input(0).format();
        sdp.media = wire::SdpStream::Media::audio;
        sdp.payload_type = payload_type_;
        sdp.encoding = kPcmNames[std::size_t(pcm_)];
        sdp.clock_rate = f.rate;
        sdp.channels = f.channels;
        sdp.ptime_ms = ptime_ms_ > 0 ? ptime_ms_ : 1000.0 * double(frames_per_packet_) / f.rate;
        if (aes67_) {
            sdp.ts_refclk = ts_refclk_;
            sdp.mediaclk = "direct=0";  // RTP time is reference time at the clock rate: see first_timestamp()
        }
    }

    // AES67's RTP time is the reference clock's time (since its epoch) times the rate, so that
    // two senders locked to one PTP grandmaster stamp the same instant alike. Our reference is
    // the graph clock's tai_ns(): PTP time where the graph follows ptp4l (sluice-play --clock
    // ptp), else CLOCK_TAI, which phc2sys keeps on PTP where it runs. The sample's first frame
    // is placed by how far before now its running time lies.
    std::uint32_t first_timestamp(const SampleRef& s) {
        if (!aes67_) return timestamp_origin_;
        std::int64_t at_ns = clock().tai_ns();
        if (s.start_time() != kNoTime) at_ns -= clock().now() - s.start_time();
        const auto rate = std::uint64_t(input(0).format().rate);
        const auto ns = std::uint64_t(at_ns);
        return std::uint32_t(ns / 1'000'000'000 * rate + ns % 1'000'000'000 * rate / 1'000'000'000);
    }

    // With ptime= every packet holds exactly its packet time (AES67 receivers count on it): frames
    // that do not fill a packet wait in it for the next buffer (a 1024-frame buffer is 21 packets
    // of 48 and a third). Without, each buffer's last packet carries what is left of it.
    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        if (!stamped_) {
            timestamp_ = first_timestamp(s);
            stamped_ = true;
            stamp_running_ = s.start_time() != kNoTime ? s.start_time() : clock().now();
            stamp_timestamp_ = timestamp_;
        }
        const MediaFormat& format = input(0).format();
        const std::size_t frame = format.frame_bytes();
        const std::size_t per_packet = frames_per_packet_ * frame;  // >= one frame: see configure()
        const auto* pcm = reinterpret_cast<const std::uint8_t*>(s.data());
        bool pacing = clocked() && s.start_time() != kNoTime;
        for (std::size_t done = 0;;) {
            const std::size_t take = std::min(per_packet - pending_, (s.size() - done) / frame * frame);
            if (take == 0) break;  // the buffer is used up (a torn last frame is not sent)
            // A packet that begins in this buffer leaves at its own time (ten packets of a 10 ms
            // buffer at 1 ms ptime go a millisecond apart, as AES67 receivers expect), not in a burst.
            if (pacing && pending_ == 0 && done > 0) {
                const MediaTime due = s.start_time() + engine::frames_to_ns(done / frame, format.rate);
                if (const Flow f = pace_until(due, pacing); f != Flow::ok) return f;
            }
            std::uint8_t* payload = packet_.data() + kRtpHeader + pending_;
            if (pcm_ == Pcm::l24) wire::native_to_l24(pcm + done, payload, take);
            else wire::native_to_l16(pcm + done, payload, take);
            pending_ += take;
            done += take;
            if (pending_ == per_packet || ptime_ms_ == 0)
                if (const Flow f = send_packet(); f != Flow::ok) return f;
        }
        return Flow::ok;
    }

    // The last packet of the stream may be short: better than frames never sent.
    void end_of_stream(std::size_t input) override {
        if (pending_ > 0) (void)send_packet();  // a failure is reported on the bus
        RtpSendNode::end_of_stream(input);
    }

    // The stream's RTP time at this moment, for the SR: running time maps to RTP time as it did
    // at the first buffer (a live stream's media time runs with the clock).
    std::uint32_t rtp_time_now() const override {
        if (!stamped_) return timestamp_origin_;
        const std::int64_t elapsed = clock().now() - stamp_running_;
        return stamp_timestamp_ + std::uint32_t(std::int64_t(static_cast<__int128>(elapsed) * input(0).format().rate / 1'000'000'000));
    }
    void flush() override { pending_ = 0; }  // what waited belongs before the seek

    // Sends what is pending as one packet. An SR may go with it (send_rtp()): rtp_time_now() reads
    // only what the first buffer stamped, so timestamp_ may move on after the send.
    Flow send_packet() {
        const std::size_t bytes = std::exchange(pending_, 0);
        if (const Flow f = send_rtp(payload_type_, first_, timestamp_, bytes, "rtpsink"); f != Flow::ok) return f;
        timestamp_ += std::uint32_t(bytes / input(0).format().frame_bytes());
        first_ = false;
        return Flow::ok;
    }

    int pt_ = -1;
    bool aes67_ = false;
    Pcm pcm_ = Pcm::l16;
    double ptime_ms_ = 0;    // 0: as many frames as mtu= allows
    std::string ts_refclk_;  // profile=aes67: the SDP's a=ts-refclk value
    std::size_t frames_per_packet_ = 1;
    std::uint8_t payload_type_ = 96;
    std::uint32_t timestamp_ = 0;
    bool first_ = true;     // the next packet is the stream's first (RTP's marker bit)
    bool stamped_ = false;  // timestamp_ holds the next frame's RTP time
    MediaTime stamp_running_ = 0;      // the running time of the first frame sent
    std::uint32_t stamp_timestamp_ = 0;  // and its RTP time
    std::size_t pending_ = 0;  // payload bytes in packet_ not yet sent
};

// Receives L16 or L24 packets on a UDP port into an RtpAudioReceiver (rtp_audio_receiver.hpp says what
// it does with each datagram) and plays what it gives, in order: packets converted to native s16 or s24,
// silence (flagged as a discontinuity) for packets given up on. The stream ends after `timeout`
// ms without packets (counted from the start when none ever came), and at the graph's media
// duration: running time is media time for a live source, so that holds without any packet too.
class RtpSrc final : public detail::RtpReceiveNode {
public:
    RtpSrc(std::string name, PropertyReader& r) : RtpReceiveNode(std::move(name), r), receiver_(config_of(r)) {
        add_output("src", {MediaFormat::audio(rate_, channels_, sample_format_of(pcm_))});
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        auto stats = receiver_.counters().snapshot();
        for (auto& s : rtcp_.stats()) stats.push_back(std::move(s));
        return stats;
    }

private:
    detail::RtpAudioReceiver::Config config_of(PropertyReader& r) {
        const auto sdp_pcm = sdp_ ? std::find(kPcmNames.begin(), kPcmNames.end(), sdp_->encoding) : kPcmNames.end();
        if (sdp_ && (sdp_->media != wire::SdpStream::Media::audio || sdp_pcm == kPcmNames.end()))
            r.fail(make_error_code(engine::GraphErrc::unsupported_format),
                   "the SDP describes " + std::string(sdp_->media == wire::SdpStream::Media::audio ? "audio" : "video") +
                       " '" + detail::printable(sdp_->encoding) + "', and rtpsrc receives L16 or L24 audio");
        pcm_ = sdp_ && !r.given("encoding") && sdp_pcm != kPcmNames.end() ? Pcm(sdp_pcm - kPcmNames.begin())
                                                                          : Pcm(r.choice("encoding", kPcmNames));
        rate_ = int(from_sdp(r, "rate", 1, 384000, sdp_ ? std::optional<std::int64_t>(sdp_->clock_rate) : std::nullopt));
        channels_ = int(from_sdp(r, "channels", 1, 64, sdp_ ? std::optional<std::int64_t>(sdp_->channels) : std::nullopt));
        const int pt = int(from_sdp(r, "pt", -1, 127, sdp_ ? std::optional<std::int64_t>(sdp_->payload_type) : std::nullopt));
        return {.frame_bytes = std::size_t(channels_) * (pcm_ == Pcm::l24 ? 3 : 2), .rate = rate_, .payload_type = pt, .latency_ns = latency_ns()};
    }

    BufferNeeds output_buffers(std::size_t) const override { return {kMaxDatagram, 1}; }

    Status start() override {
        receiver_.reset();
        warned_misfit_ = false;
        return RtpReceiveNode::start();
    }

    std::int64_t last_packet_ns() const noexcept override { return receiver_.last_packet_ns(); }
    int rtp_clock_rate() const noexcept override { return rate_; }
    void sync_to_sender(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept override {
        receiver_.sync(ssrc, timestamp, running_ns);
    }
    std::optional<std::uint32_t> stream_ssrc() const noexcept override { return receiver_.ssrc(); }

    std::optional<Flow> play_due(std::int64_t now, bool ending) override {
        const auto ready = receiver_.next(now, ending || receiver_.crowded());
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
            if (pcm_ == Pcm::l24) wire::l24_to_native(ready.payload.data(), out, n);
            else wire::l16_to_native(ready.payload.data(), out, n);
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

    Pcm pcm_ = Pcm::l16;
    int rate_ = 48000, channels_ = 2;
    bool warned_misfit_ = false;
    detail::RtpAudioReceiver receiver_;
};

}  // namespace

NodeSpec rtpsink_spec() {
    return {"rtpsink", Node::Kind::render, "sends audio as RTP L16 or L24 (RFC 3550/3551/3190; AES67 with profile=aes67) over UDP",
            detail::with(detail::rtp_sender_properties("largest datagram in bytes (packets are cut to whole frames below it)"),
                         {{"encoding", "L16", "payload: L16 (s16 in) or L24 (s24 in; AES67, ST 2110-30)"},
                          {"ptime", "0", "packet time in ms, e.g. 1 or 0.125 (0: as many frames as mtu allows)"},
                          {"profile", "none", "aes67: 48 kHz, L24 (unless encoding= says L16), ptime=1, at most 8 "
                                              "channels, RTP time from CLOCK_TAI, SDP clock lines (none: plain RTP)"},
                          {"ts-refclk", "local", "profile=aes67: the SDP's reference clock (RFC 7273), e.g. "
                                                 "ptp=IEEE1588-2008:39-A7-94-FF-FE-07-CB-D0:0 where ptp4l and "
                                                 "phc2sys keep CLOCK_TAI on PTP"},
                          {"sdp", "", "write the stream's SDP description to this file at start (for ffmpeg, ffplay, sdpdemux)"},
                          {"pt", "-1", "payload type (-1: 10/11 for 44.1 kHz stereo/mono, else 96)"}}),
            factory<RtpSink>()};
}

NodeSpec rtpsrc_spec() {
    return {"rtpsrc", Node::Kind::source,
            "receives RTP L16 or L24 audio over UDP; reorders, counts lost/late packets, fills gaps with silence",
            detail::with(detail::rtp_receiver_properties("jitter buffer: ms a packet may wait for one missing before it"),
                         {{"encoding", "L16", "payload: L16 (s16 out) or L24 (s24 out; AES67, ST 2110-30)"},
                          {"rate", "48000", "sample rate of the stream (RTP clock rate)"},
                          {"channels", "2", "channel count of the stream"},
                          detail::num_buffers_property()}),
            factory<RtpSrc>()};
}

}  // namespace sluice::nodes

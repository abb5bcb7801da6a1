// SPDX-License-Identifier: MIT
// Raw video over RTP (RFC 4175): `rtpvrawsink` cuts each picture into payloads under an MTU,
// `rtpvrawsrc` puts them back together straight into a pool buffer. Interoperates with
// GStreamer's rtpvrawpay/rtpvrawdepay for I420 ("YCbCr-4:2:0") and RGBA.
#include <sluice/wire/rtp.hpp>
#include <sluice/wire/sdp.hpp>

#include "core/common.hpp"
#include "net/rtcp_session.hpp"
#include "net/rtp_receive_node.hpp"
#include "net/rtp_send_node.hpp"
#include "net/rtp_video_receiver.hpp"
#include <sluice/nodes/registry.hpp>
#include "net/udp.hpp"
#include "video/video_node.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <vector>

namespace sluice::nodes {

using engine::PixelFormat;

namespace {

using detail::kMaxDatagram;
using engine::BufferNeeds;
using engine::Fraction;
using engine::Flow;
using engine::MediaFormat;

constexpr std::uint32_t kVideoClock = 90000;  // RFC 4175: timestamps count a 90 kHz clock

std::uint32_t to_video_clock(MediaTime ns) noexcept {
    return std::uint32_t(static_cast<__int128>(ns) * kVideoClock / 1'000'000'000);
}

// Sends each picture as the RTP packets of RFC 4175, the last one marked.
class RtpVrawSink final : public detail::RtpSendNode<detail::VideoNode> {
public:
    RtpVrawSink(std::string name, PropertyReader& r) : RtpSendNode(std::move(name), r) {
        pt_ = std::uint8_t(r.integer("pt", 96, 127));
        pacing_ = r.number("pacing", 0, 1);
        read_sdp_and_rtcp(r);
        add_input("sink", {MediaFormat::video(0, 0, PixelFormat::i420), MediaFormat::video(0, 0, PixelFormat::rgba)});
    }
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return sender_stats({{"frames_sent", frames_.load(std::memory_order_relaxed)}});  // relaxed: a statistic
    }

private:
    Status configure() override {
        const MediaFormat& f = input(0).format();
        layout_ = wire::RawVideoLayout::of(f);
        if (!layout_)
            return {engine::GraphErrc::invalid_argument, "RFC 4175 cannot carry " + f.to_string() +
                                                (f.pixel_format == PixelFormat::i420 ? " (I420 needs an even width and height)"
                                                                                     : " (sides are at most 32767)")};
        return {};
    }
    // RFC 4175's description as SMPTE ST 2110-20 writes it: the sampling, size, depth and
    // rate, and the colorimetry our pictures carry (BT.601; BT.709 for HD formats that say so).
    void describe(wire::SdpStream& sdp) const override {
        const MediaFormat& f = input(0).format();
        sdp.media = wire::SdpStream::Media::video;
        sdp.payload_type = pt_;
        sdp.encoding = "raw";
        sdp.clock_rate = 90000;
        sdp.sampling = wire::sdp_sampling(f.pixel_format);
        sdp.width = f.width;
        sdp.height = f.height;
        sdp.depth = 8;
        sdp.exactframerate = f.fps;
        sdp.colorimetry = f.matrix == engine::ColourMatrix::bt709 ? "BT709-2" : "BT601-5";
    }
    // The stream's RTP time at this moment (for the SR): pictures are stamped by running time.
    std::uint32_t rtp_time_now() const override { return timestamp_origin_ + to_video_clock(clock().now()); }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        const std::size_t expected = input(0).format().frame_bytes();
        if (s.size() < expected) return short_sample(s.size(), expected);
        const Fraction fps = input(0).format().fps;
        const MediaTime start = s.start_time() != kNoTime ? s.start_time() : detail::frame_start(fps, sent_frames_);
        const std::uint32_t timestamp = timestamp_origin_ + to_video_clock(start);
        const auto* picture = reinterpret_cast<const std::uint8_t*>(s.data());
        const std::span<std::uint8_t> payload(packet_.data() + kRtpHeader, packet_.size() - kRtpHeader);
        // Pacing: the packets of a picture leave spread over `pacing` of its interval, so that a
        // receiver with an ordinary socket buffer is not flooded (a 1280x720 picture is about a
        // thousand packets). A packet goes when the share of the picture sent so far is due.
        const std::int64_t spread_ns = std::int64_t(pacing_ * 1e9 * fps.den / fps.num);
        const std::int64_t began = clock().now();
        bool pacing = spread_ns > 0;
        std::size_t sent_bytes = 0;
        for (wire::RawVideoCursor at; !at.done(*layout_);) {
            const std::size_t n = wire::pack_raw_video(*layout_, picture, at, std::uint16_t(sequence_ >> 16), payload);
            if (n == 0) return report_error(make_error_code(engine::GraphErrc::invalid_argument), name() + ": mtu too small for one pixel group");
            if (pacing) {
                const std::int64_t due = began + std::int64_t(static_cast<__int128>(spread_ns) * sent_bytes / expected);
                if (const Flow f = pace_until(due, pacing); f != Flow::ok) return f;
            }
            sent_bytes += n;
            if (const Flow f = send_rtp(pt_, at.done(*layout_), timestamp, n, name()); f != Flow::ok) return f;
        }
        ++sent_frames_;
        frames_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        return Flow::ok;
    }

    std::uint8_t pt_ = 96;
    double pacing_ = 0.5;
    std::optional<wire::RawVideoLayout> layout_;
    std::uint64_t sent_frames_ = 0;
    std::atomic<std::uint64_t> frames_{0};
};

// Receives RFC 4175 packets into an RtpVideoReceiver (rtp_video_receiver.hpp says what it does
// with each datagram), which assembles each picture straight into a pool buffer. A picture goes
// out once all of it has arrived, when a packet of a later picture arrives, or when it has waited
// `latency` ms for its missing parts (rows that never came painted black, a discontinuity). The
// stream ends after `timeout` ms without packets (from the start when none came) and at the
// graph's media duration (running time, for a live source).
class RtpVrawSrc final : public detail::RtpReceiveNode {
public:
    RtpVrawSrc(std::string name, PropertyReader& r) : RtpReceiveNode(std::move(name), r) {
        const MediaFormat format = sdp_ ? format_from_sdp(r) : detail::read_video_format(r);
        const int pt = int(from_sdp(r, "pt", -1, 127, sdp_ ? std::optional<std::int64_t>(sdp_->payload_type) : std::nullopt));
        const auto layout = wire::RawVideoLayout::of(format);
        if (!layout)
            r.fail(make_error_code(engine::GraphErrc::invalid_argument),
                   "RFC 4175 cannot carry " + format.to_string() + " (I420 needs an even width and height)");
        else
            receiver_.emplace(detail::RtpVideoReceiver::Config{*layout, format.fps, pt, latency_ns()});
        add_output("src", {format});
        held_.resize(kMaxDatagram);
    }

    // The picture the description announces; properties given too take precedence.
    MediaFormat format_from_sdp(PropertyReader& r) {
        const wire::SdpStream& d = *sdp_;
        const PixelFormat pixels = wire::pixel_format_of_sampling(d.sampling);
        if (d.media != wire::SdpStream::Media::video || d.encoding != "raw" || pixels == PixelFormat::any || d.depth != 8) {
            r.fail(make_error_code(engine::GraphErrc::unsupported_format),
                   "the SDP describes " + std::string(d.media == wire::SdpStream::Media::video ? "video" : "audio") + " '" +
                       detail::printable(d.encoding) + "' sampling '" + detail::printable(d.sampling) + "' depth " +
                       std::to_string(d.depth) + "; rtpvrawsrc receives raw video (RFC 4175) YCbCr-4:2:0 or RGBA, 8 bits");
            return detail::read_video_format(r);
        }
        MediaFormat f = detail::read_video_format(r);  // checks what was given; the SDP fills the rest
        if (!r.given("width")) f.width = d.width;
        if (!r.given("height")) f.height = d.height;
        if (!r.given("fps") && d.exactframerate.num > 0) f.fps = d.exactframerate;
        if (!r.given("format")) f.pixel_format = pixels;
        if (f.width <= 0 || f.height <= 0)
            r.fail(make_error_code(engine::GraphErrc::corrupt_file), "the SDP gives no picture size (fmtp width and height)");
        detail::check_area(r, f.width, f.height);
        f.matrix = d.colorimetry == "BT709-2" ? engine::ColourMatrix::bt709 : engine::ColourMatrix::bt601;
        f.range = engine::is_rgb(f.pixel_format) ? engine::ColourRange::full : engine::ColourRange::limited;
        return f;
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        if (!receiver_) return {};
        auto stats = receiver_->counters().snapshot();
        stats.emplace_back("frames_incomplete", receiver_->incomplete());
        for (auto& s : rtcp_.stats()) stats.push_back(std::move(s));
        return stats;
    }

private:
    Status start() override {
        receiver_->reset();
        frame_.reset();
        held_bytes_ = 0;
        return RtpReceiveNode::start();
    }
    void stop() override {
        frame_.reset();
        receiver_->reset();
        RtpReceiveNode::stop();
    }
    void flush() override {
        frame_.reset();
        receiver_->reset();
        held_bytes_ = 0;
    }

    std::int64_t last_packet_ns() const noexcept override { return receiver_->last_packet_ns(); }
    int rtp_clock_rate() const noexcept override { return int(kVideoClock); }
    void sync_to_sender(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept override {
        receiver_->sync(ssrc, timestamp, running_ns);
    }
    std::optional<std::uint32_t> stream_ssrc() const noexcept override { return receiver_->ssrc(); }

    std::optional<Flow> play_due(std::int64_t now, bool ending) override {
        if (receiver_->picture_due(now) || (ending && receiver_->has_picture())) return emit();
        if (held_bytes_ != 0) {  // the first packet of the next picture, kept while the last went out
            const std::size_t n = std::exchange(held_bytes_, 0);
            return file({held_.data(), n});
        }
        return std::nullopt;
    }

    // Offers one datagram to the receiver and does what it asks.
    Flow file(std::span<const std::uint8_t> datagram) override {
        using Action = detail::RtpVideoReceiver::Action;
        for (;;) {
            switch (receiver_->offer(datagram, detail::steady_now_ns(), clock().now())) {
                case Action::none:
                    return Flow::ok;
                case Action::start_picture: {
                    auto s = get_buffer(0);
                    if (!s) return buffer_failed(s.error());
                    frame_ = std::move(*s);
                    receiver_->begin(reinterpret_cast<std::uint8_t*>(frame_.data()));
                    continue;  // offered again, into the new picture
                }
                case Action::finish_first:
                    std::memcpy(held_.data(), datagram.data(), datagram.size());
                    held_bytes_ = datagram.size();
                    return emit();
            }
        }
    }

    Flow emit() {
        const MediaFormat& f = output(0).format();
        const auto done = receiver_->finish();
        if (done.behind) {  // its time went by when RTCP sync moved the line back
            frame_.reset();
            count_drop();
            return Flow::ok;
        }
        if (limit_reached(limit_, done.start)) {
            frame_.reset();
            return Flow::end_of_stream;
        }
        frame_.set_times(done.start, done.stop);
        if (done.discontinuity) frame_.add_flags(SampleFlags::discontinuity);
        (void)frame_.set_size(f.frame_bytes());
        ++limit_.produced;
        return push(0, std::move(frame_));
    }

    std::optional<detail::RtpVideoReceiver> receiver_;  // empty only when the format was refused
    SampleRef frame_;  // the picture being assembled, empty between pictures
    std::vector<std::uint8_t> held_;
    std::size_t held_bytes_ = 0;
};

}  // namespace

NodeSpec rtpvrawsink_spec() {
    return {"rtpvrawsink", Node::Kind::render,
            "sends I420 or RGBA pictures as RTP raw video (RFC 4175) over UDP",
            detail::with(detail::rtp_sender_properties("largest datagram in bytes"),
                         {{"sdp", "", "write the stream's SDP description (RFC 4175, ST 2110-20 style) to this file at start"},
                          {"pt", "96", "payload type (dynamic: 96-127)"},
                          {"pacing", "0.5", "share of a picture's interval its packets are spread over (0: at once)"}}),
            factory<RtpVrawSink>()};
}

NodeSpec rtpvrawsrc_spec() {
    return {"rtpvrawsrc", Node::Kind::source,
            "receives RTP raw video (RFC 4175) over UDP; reassembles pictures, counts lost/late packets",
            detail::with(detail::rtp_receiver_properties("ms a picture waits for its missing packets"),
                         // The picture: i420 travels as sampling YCbCr-4:2:0, rgba as RGBA.
                         detail::with(detail::video_format_properties(), {detail::num_buffers_property()})),
            factory<RtpVrawSrc>()};
}

}  // namespace sluice::nodes

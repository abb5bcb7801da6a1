// SPDX-License-Identifier: MIT
// libFuzzer target: the RTP receivers' state machines (rtpsrc's jitter buffer, rtpvrawsrc's
// picture assembler) fed sequences of datagrams, not one at a time. The input is a list of
// records: [1 byte: time step in ms, bit 7 = play out now] [2 bytes: length] [datagram]. A
// datagram may be given as a tiny "template" (length 0xFFFF - n) that the target expands into a
// well-formed packet of a small stream, so that the fuzzer reaches deep states (reordering,
// restarts, jumps) quickly, and mixes them with raw bytes.
// Checks: nothing is read or written out of bounds (ASan); audio output is whole frames within
// the payload; output times never go backwards; every picture written stays inside its buffer.
#include "net/rtp_audio_receiver.hpp"
#include "net/rtp_video_receiver.hpp"

#include <sluice/wire/rtp.hpp>

#include <cstdint>
#include <cstdlib>
#include <vector>

namespace {
using namespace sluice;
using sluice::nodes::detail::RtpAudioReceiver;
using sluice::nodes::detail::RtpVideoReceiver;

// A well-formed packet from a few bytes of the input: sequence, timestamp steps, SSRC choice,
// payload type choice, and (for video) which rows the payload covers.
std::vector<std::uint8_t> expand(const std::uint8_t* t, std::size_t n, bool video, const wire::RawVideoLayout& layout) {
    std::uint8_t b[8] = {};
    for (std::size_t i = 0; i < n && i < 8; ++i) b[i] = t[i];
    const std::uint16_t seq = std::uint16_t(b[0] | b[1] << 8);
    const std::uint32_t ts = std::uint32_t(b[2] | b[3] << 8) * (video ? 3000u : 48u);
    const std::uint32_t ssrc = 0x1000u + (b[4] & 3);
    const std::uint8_t pt = (b[4] & 4) ? 97 : 96;
    std::vector<std::uint8_t> p(12);
    wire::write_rtp_header(p.data(), pt, (b[5] & 1) != 0, seq, ts, ssrc);
    if (!video) {
        p.resize(12 + std::size_t(1 + (b[5] >> 4)) * 4, std::uint8_t(b[6]));
        return p;
    }
    std::vector<std::uint8_t> picture(std::size_t(layout.rows()) * layout.row_bytes() * 2, b[6]);
    wire::RawVideoCursor at;
    at.row = b[7] % layout.rows();
    std::vector<std::uint8_t> payload(64 + (b[5] >> 2) * 16);
    const std::size_t bytes = wire::pack_raw_video(layout, picture.data(), at, std::uint16_t(b[1] >> 4), payload);
    p.insert(p.end(), payload.begin(), payload.begin() + std::ptrdiff_t(bytes));
    return p;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto format = engine::MediaFormat::video(16, 8, engine::PixelFormat::i420, {30, 1});
    const auto layout = wire::RawVideoLayout::of(format);
    if (!layout) std::abort();
    RtpAudioReceiver audio({.frame_bytes = 4, .rate = 48000, .payload_type = (size & 1) ? 96 : -1, .latency_ns = 20'000'000});
    RtpVideoReceiver video({*layout, format.fps, (size & 2) ? 96 : -1, 20'000'000});
    std::vector<std::uint8_t> picture(format.frame_bytes());  // exactly its size: ASan sees overruns
    std::int64_t now = 1'000'000'000;
    MediaTime audio_stop = kNoTime, video_stop = kNoTime;

    auto play_audio = [&](bool draining) {
        for (int guard = 0; guard < 200; ++guard) {
            const auto r = audio.next(now, draining);
            if (r.kind == RtpAudioReceiver::Ready::Kind::none) return;
            if (r.kind == RtpAudioReceiver::Ready::Kind::audio && r.payload.size() != r.frames * 4) std::abort();
            if (audio_stop != kNoTime && r.start < audio_stop - 21'000) std::abort();  // one frame of slack
            audio_stop = r.start + engine::frames_to_ns(r.frames, 48000);
            audio.consume();
        }
    };
    auto finish_video = [&] {
        const auto f = video.finish();
        if (video_stop != kNoTime && f.start < video_stop - 16'666'667) std::abort();  // half a picture: rounding
        if (f.stop <= f.start) std::abort();
        video_stop = f.stop;
    };

    std::size_t i = 0;
    while (i + 3 <= size) {
        const std::uint8_t step = data[i];
        const std::size_t length = std::size_t(data[i + 1]) | std::size_t(data[i + 2]) << 8;
        i += 3;
        now += std::int64_t(step & 0x7F) * 1'000'000;
        std::vector<std::uint8_t> datagram;
        if (length >= 0xFFF0) {  // a template of 8 bytes
            const std::size_t n = std::min<std::size_t>(8, size - i);
            datagram = expand(data + i, n, (length & 1) != 0, *layout);
            i += n;
        } else {
            const std::size_t n = std::min(length, size - i);
            datagram.assign(data + i, data + i + n);
            i += n;
        }
        audio.receive(datagram, now, now);
        play_audio((step & 0x80) != 0);
        for (int guard = 0; guard < 4; ++guard) {
            switch (video.offer(datagram, now, now)) {
                case RtpVideoReceiver::Action::none: guard = 4; break;
                case RtpVideoReceiver::Action::start_picture: video.begin(picture.data()); break;
                case RtpVideoReceiver::Action::finish_first: finish_video(); break;
            }
        }
        if (video.picture_due(now)) finish_video();
    }
    now += 1'000'000'000;
    play_audio(true);
    if (video.has_picture()) finish_video();
    return 0;
}

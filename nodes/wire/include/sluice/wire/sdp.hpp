// SPDX-License-Identifier: MIT
#pragma once

// SDP (RFC 8866) for one RTP stream: what rtpsink and rtpvrawsink write with sdp=FILE so that
// ffmpeg, ffplay, VLC and GStreamer's sdpdemux can receive them, and what rtpsrc and rtpvrawsrc
// read to configure themselves from a sender's description (ffmpeg's -sdp_file among them).
// Audio: L16 and L24 (RFC 3551 and 3190, rtpmap "L24/48000/2"), with AES67's clock lines. Video: RFC 4175 raw video (rtpmap
// "raw/90000", fmtp sampling, width, height, depth, exactframerate, colorimetry), as SMPTE ST
// 2110-20 writes it. Public for tests and fuzzing.

#include <sluice/engine/format.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::wire {

struct SdpStream {
    enum class Media { audio, video };
    Media media = Media::audio;
    std::string session = "Sluice";  // s=
    std::string address;             // c=IN IP4 ... (the destination)
    int ttl = 0;                     // a multicast address's TTL (c=IN IP4 group/ttl); 0: unicast
    std::uint16_t port = 0;          // m=... <port>
    int payload_type = 96;
    std::string encoding;   // rtpmap's encoding name: "L16", "L24", "raw"
    int clock_rate = 0;     // rtpmap's clock rate (audio: the sample rate; video: 90000)
    int channels = 1;       // audio: rtpmap's encoding parameters
    double ptime_ms = 0;    // audio: a=ptime (0: not given)
    // RFC 7273 clock signalling, as AES67 and ST 2110 require it: the reference clock the RTP
    // timestamps follow ("ptp=IEEE1588-2008:<grandmaster>:<domain>", "local") and how the media
    // clock relates to it ("direct=0": the RTP timestamp is reference time times the clock rate).
    // Empty: not given. Read at session or media level.
    std::string ts_refclk, mediaclk;
    // Video (RFC 4175 fmtp).
    std::string sampling;   // "YCbCr-4:2:0", "YCbCr-4:2:2", "RGBA"...
    int width = 0, height = 0, depth = 8;
    engine::Fraction exactframerate{0, 1};
    std::string colorimetry;  // "BT601-5", "BT709-2"...
};

struct SdpParseError {
    int line = 0;  // 1-based line of the description where it goes wrong (0: the whole text)
    std::string what;
};

// The description of `stream`, CRLF line ends as RFC 8866 asks. Allocates.
std::string write_sdp(const SdpStream& stream);

// Reads the first audio or video RTP stream of a description. Refused: no m= line for RTP/AVP,
// an m= line without an rtpmap for its first payload type (a static type 10/11 is L16
// 44100/2 and /1 as RFC 3551 fixes them), a port or rate out of range, lines longer than 4 KiB, a
// text of more than 64 KiB. Any thread; allocates.
std::optional<SdpParseError> parse_sdp(std::string_view text, SdpStream& out);

// The SDP sampling name of a pixel format RFC 4175 carries ("YCbCr-4:2:0" for I420, "RGBA" for
// RGBA), or nullptr.
const char* sdp_sampling(engine::PixelFormat f) noexcept;
// The reverse, for 8-bit depth; PixelFormat::any when not carried.
engine::PixelFormat pixel_format_of_sampling(std::string_view sampling) noexcept;

}  // namespace sluice::wire

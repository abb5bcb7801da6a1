// SPDX-License-Identifier: MIT
#pragma once

// RTP (RFC 3550) packet parsing behind `rtpsrc` and `rtpvrawsrc`, and the RFC 4175 raw-video
// payload format behind `rtpvrawsink` and `rtpvrawsrc`, public for tests and fuzzing. The audio
// nodes carry L16 (RFC 3551: big-endian 16-bit PCM, interleaved) and L24 (RFC 3190: big-endian
// 24-bit PCM, the AES67 and ST 2110-30 format).

#include <sluice/engine/format.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace sluice::wire {

struct RtpPacket {
    std::uint8_t payload_type = 0;
    bool marker = false;
    std::uint16_t sequence = 0;
    std::uint32_t timestamp = 0;
    std::uint32_t ssrc = 0;
    std::span<const std::uint8_t> payload;  // within the parsed datagram
};

// Parses one datagram: version 2, CSRC list, header extension and padding honoured. nullopt for
// anything malformed or truncated. Reads only within `datagram`; never allocates. Any thread.
std::optional<RtpPacket> parse_rtp_packet(std::span<const std::uint8_t> datagram) noexcept;

// L16 (big-endian 16-bit PCM) to native s16 and back: the same byte swap. `bytes` even.
void l16_to_native(const std::uint8_t* l16, std::uint8_t* out, std::size_t bytes) noexcept;
inline void native_to_l16(const std::uint8_t* native, std::uint8_t* out, std::size_t bytes) noexcept {
    l16_to_native(native, out, bytes);
}

// L24 (big-endian 24-bit PCM, 3 bytes a sample) to native packed s24 and back: each sample's bytes
// reversed. `bytes` a multiple of 3.
void l24_to_native(const std::uint8_t* l24, std::uint8_t* out, std::size_t bytes) noexcept;
inline void native_to_l24(const std::uint8_t* native, std::uint8_t* out, std::size_t bytes) noexcept {
    l24_to_native(native, out, bytes);
}

// Writes a 12-byte RTP header (no CSRC, no extension) at `out`.
void write_rtp_header(std::uint8_t* out, std::uint8_t payload_type, bool marker, std::uint16_t sequence,
                      std::uint32_t timestamp, std::uint32_t ssrc) noexcept;

// RFC 4175: a raw picture cut into RTP payloads. Each payload is a 2-byte extended sequence
// number (the high half of a 32-bit one), then 6-byte line headers (length in bytes, line number,
// pixel offset, and a bit that says another header follows), then the pixel groups they describe.
// Pictures are tightly packed, as MediaFormat::frame_bytes() counts them. I420 travels as
// "YCbCr-4:2:0": groups of 2x2 pixels in 6 bytes (Y00 Y01 Y10 Y11 Cb Cr), so a line header covers
// two picture lines and width and height must be even. RGBA travels as "RGBA", a pixel a group.
class RawVideoLayout {
public:
    // nullopt when the format cannot travel: another pixel format, an odd I420 size, or a side
    // longer than the 15 bits a line header holds.
    static std::optional<RawVideoLayout> of(const engine::MediaFormat& format) noexcept;

    // The sampling's name in SDP and in GStreamer's caps ("YCbCr-4:2:0", "RGBA").
    const char* sampling() const noexcept;
    // Line headers count in rows: a row is `lines_per_row` picture lines.
    int rows() const noexcept { return height_ / lines_per_row_; }
    // Bytes of pixel groups in one whole row.
    std::size_t row_bytes() const noexcept { return std::size_t(width_ / pixels_per_group_) * group_bytes_; }

    int width() const noexcept { return width_; }
    int height() const noexcept { return height_; }
    int lines_per_row() const noexcept { return lines_per_row_; }
    int pixels_per_group() const noexcept { return pixels_per_group_; }
    std::size_t group_bytes() const noexcept { return group_bytes_; }
    engine::PixelFormat pixel_format() const noexcept { return format_; }

private:
    engine::PixelFormat format_ = engine::PixelFormat::any;
    int width_ = 0, height_ = 0;
    int lines_per_row_ = 1, pixels_per_group_ = 1;
    std::size_t group_bytes_ = 4;
};

// Where the next payload of a picture starts.
struct RawVideoCursor {
    int row = 0;
    int pixel = 0;  // offset within the row, in pixels
    bool done(const RawVideoLayout& layout) const noexcept { return row >= layout.rows(); }
};

// Writes one payload of `picture` into `out`, from `at` on, as many whole pixel groups as fit, and
// moves `at` past them. Returns the payload's size; 0 when `out` cannot hold even one group.
// Never allocates. Any thread.
std::size_t pack_raw_video(const RawVideoLayout& layout, const std::uint8_t* picture, RawVideoCursor& at,
                           std::uint16_t extended_sequence, std::span<std::uint8_t> out) noexcept;

struct RawVideoPayload {
    std::uint16_t extended_sequence = 0;
    std::size_t bytes = 0;      // of pixel groups written into the picture
    std::size_t new_bytes = 0;  // of those, bytes of rows not yet complete (a row sent twice counts once)
};

// Reads one payload into `picture` and adds the bytes each row received to `row_bytes_filled`
// (rows() entries; never past row_bytes(), so a row sent twice is not counted twice). Every line header is checked against the picture and the payload before
// anything is written: nullopt, and nothing written, when one points outside, is not a whole
// number of groups, or the payload is truncated. With `picture` null it only checks (and says
// how many bytes it would write). Never allocates. Any thread.
std::optional<RawVideoPayload> unpack_raw_video(const RawVideoLayout& layout, std::span<const std::uint8_t> payload,
                                                std::uint8_t* picture,
                                                std::span<std::uint32_t> row_bytes_filled) noexcept;

}  // namespace sluice::wire

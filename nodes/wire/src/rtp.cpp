// SPDX-License-Identifier: MIT
// RTP (RFC 3550) headers and the L16 payload (RFC 3551).
#include <sluice/wire/rtp.hpp>

namespace sluice::wire {

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

void l16_to_native(const std::uint8_t* l16, std::uint8_t* out, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i + 1 < bytes; i += 2) {
        out[i] = l16[i + 1];
        out[i + 1] = l16[i];
    }
}

void l24_to_native(const std::uint8_t* l24, std::uint8_t* out, std::size_t bytes) noexcept {
    for (std::size_t i = 0; i + 2 < bytes; i += 3) {
        const std::uint8_t high = l24[i];  // l24 may be out itself
        out[i] = l24[i + 2];
        out[i + 1] = l24[i + 1];
        out[i + 2] = high;
    }
}

}  // namespace sluice::wire

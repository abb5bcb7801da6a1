// SPDX-License-Identifier: MIT
#pragma once

// RTP (RFC 3550) packet parsing behind `rtpsrc`, public for tests and fuzzing. The nodes carry
// audio as L16 (RFC 3551: big-endian 16-bit PCM, interleaved).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

namespace sluice::nodes {

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

// Writes a 12-byte RTP header (no CSRC, no extension) at `out`.
void write_rtp_header(std::uint8_t* out, std::uint8_t payload_type, bool marker, std::uint16_t sequence,
                      std::uint32_t timestamp, std::uint32_t ssrc) noexcept;

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
#pragma once

// RTCP (RFC 3550 section 6): the reports an RTP sender and its receivers exchange beside the
// stream. A sender report (SR) ties the sender's RTP time to wall-clock (NTP) time and says how
// much it sent; a receiver report (RR) says what arrived: loss, the highest sequence number, and
// the interarrival jitter. Every report travels in a compound packet with an SDES CNAME, as RFC
// 3550 6.1 requires. Public for tests and fuzzing.

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace sluice::wire {

// One report block: what a receiver says about one source.
struct RtcpReportBlock {
    std::uint32_t ssrc = 0;              // the source reported on
    std::uint8_t fraction_lost = 0;      // of the packets expected since the last report, in 1/256
    std::int32_t cumulative_lost = 0;    // since the start (24 bits, signed: duplicates can make it negative)
    std::uint32_t highest_sequence = 0;  // extended: cycles << 16 | the highest sequence number
    std::uint32_t jitter = 0;            // interarrival jitter, in RTP clock ticks
    std::uint32_t last_sr = 0;           // the middle 32 bits of the last SR's NTP time (0: none)
    std::uint32_t delay_since_last_sr = 0;  // in 1/65536 s
};

// What a sender report adds: an instant in both clocks, and the counts so far.
struct RtcpSenderInfo {
    std::uint64_t ntp = 0;  // NTP time (RFC 5905: seconds since 1900 << 32 | fraction)
    std::uint32_t rtp_timestamp = 0;  // the same instant in the stream's RTP clock
    std::uint32_t packets = 0, octets = 0;  // sent since the start (octets: payload only)
};

// The first SR or RR of a compound packet, and whether a BYE came with it.
struct RtcpReport {
    std::uint32_t ssrc = 0;  // the reporter's
    std::optional<RtcpSenderInfo> sender;  // an SR's
    std::array<RtcpReportBlock, 31> blocks{};
    std::size_t block_count = 0;
    bool bye = false;
};

// Parses a compound RTCP packet: version 2, each packet's length within the datagram, the first
// an SR or RR (RFC 3550 6.1) — or a lone BYE. nullopt for anything else. Reads only within
// `datagram`; never allocates. Any thread.
std::optional<RtcpReport> parse_rtcp(std::span<const std::uint8_t> datagram) noexcept;

// Writes a compound packet into `out`: an SR (with `sender`) or an RR (without), its `blocks`
// (at most 31), then an SDES with `cname` (at most 255 bytes), then a BYE when `bye`. Returns
// its size, 0 when `out` is too small. Never allocates.
std::size_t write_rtcp(std::span<std::uint8_t> out, std::uint32_t ssrc, const RtcpSenderInfo* sender,
                       std::span<const RtcpReportBlock> blocks, std::string_view cname, bool bye = false) noexcept;

// NTP time of a wall-clock time in nanoseconds since 1970 (CLOCK_REALTIME), and back.
std::uint64_t ntp_of_unix_ns(std::int64_t unix_ns) noexcept;
std::int64_t unix_ns_of_ntp(std::uint64_t ntp) noexcept;
// The middle 32 bits of an NTP time, as report blocks carry the last SR's time.
inline std::uint32_t ntp_middle(std::uint64_t ntp) noexcept { return std::uint32_t(ntp >> 16); }

}  // namespace sluice::wire

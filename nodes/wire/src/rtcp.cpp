// SPDX-License-Identifier: MIT
#include <sluice/wire/rtcp.hpp>

#include <cstring>

namespace sluice::wire {

namespace {

constexpr std::uint8_t kSenderReport = 200, kReceiverReport = 201, kSourceDescription = 202, kGoodbye = 203;
constexpr std::size_t kBlockBytes = 24;

std::uint32_t get32(const std::uint8_t* p) noexcept {
    return std::uint32_t(p[0]) << 24 | std::uint32_t(p[1]) << 16 | std::uint32_t(p[2]) << 8 | p[3];
}
void put32(std::uint8_t* p, std::uint32_t v) noexcept {
    for (int i = 0; i < 4; ++i) p[i] = std::uint8_t(v >> (24 - 8 * i));
}
// A packet's common header: version 2, `count` in the low five bits, length in 32-bit words - 1.
void put_header(std::uint8_t* p, std::size_t count, std::uint8_t type, std::size_t bytes) noexcept {
    p[0] = std::uint8_t(0x80 | (count & 0x1F));
    p[1] = type;
    const std::size_t words = bytes / 4 - 1;
    p[2] = std::uint8_t(words >> 8);
    p[3] = std::uint8_t(words);
}

RtcpReportBlock read_block(const std::uint8_t* p) noexcept {
    RtcpReportBlock b;
    b.ssrc = get32(p);
    b.fraction_lost = p[4];
    std::uint32_t lost = std::uint32_t(p[5]) << 16 | std::uint32_t(p[6]) << 8 | p[7];
    if (lost & 0x800000) lost |= 0xFF000000;  // 24-bit two's complement
    b.cumulative_lost = std::int32_t(lost);
    b.highest_sequence = get32(p + 8);
    b.jitter = get32(p + 12);
    b.last_sr = get32(p + 16);
    b.delay_since_last_sr = get32(p + 20);
    return b;
}

void write_block(std::uint8_t* p, const RtcpReportBlock& b) noexcept {
    put32(p, b.ssrc);
    // Clamped to what 24 signed bits hold, as RFC 3550 6.4.1 says.
    const std::int32_t lost = b.cumulative_lost > 0x7FFFFF ? 0x7FFFFF : b.cumulative_lost < -0x800000 ? -0x800000 : b.cumulative_lost;
    put32(p + 4, std::uint32_t(b.fraction_lost) << 24 | (std::uint32_t(lost) & 0xFFFFFF));
    put32(p + 8, b.highest_sequence);
    put32(p + 12, b.jitter);
    put32(p + 16, b.last_sr);
    put32(p + 20, b.delay_since_last_sr);
}

}  // namespace

std::optional<RtcpReport> parse_rtcp(std::span<const std::uint8_t> d) noexcept {
    RtcpReport report;
    bool have_report = false;
    for (std::size_t at = 0; at < d.size();) {
        if (d.size() - at < 4) return std::nullopt;
        const std::uint8_t* p = d.data() + at;
        if ((p[0] >> 6) != 2) return std::nullopt;
        const std::size_t count = p[0] & 0x1F;
        const std::uint8_t type = p[1];
        const std::size_t bytes = (std::size_t(p[2]) << 8 | p[3]) * 4 + 4;
        if (bytes > d.size() - at) return std::nullopt;
        if (at == 0 && type != kSenderReport && type != kReceiverReport && type != kGoodbye) return std::nullopt;
        if ((type == kSenderReport || type == kReceiverReport) && !have_report) {
            const std::size_t fixed = type == kSenderReport ? 28 : 8;
            if (bytes < fixed + count * kBlockBytes) return std::nullopt;
            report.ssrc = get32(p + 4);
            if (type == kSenderReport) {
                RtcpSenderInfo s;
                s.ntp = std::uint64_t(get32(p + 8)) << 32 | get32(p + 12);
                s.rtp_timestamp = get32(p + 16);
                s.packets = get32(p + 20);
                s.octets = get32(p + 24);
                report.sender = s;
            }
            report.block_count = count;
            for (std::size_t i = 0; i < count; ++i) report.blocks[i] = read_block(p + fixed + i * kBlockBytes);
            have_report = true;
        } else if (type == kGoodbye) {
            if (bytes < 4 + 4 * count) return std::nullopt;
            report.bye = true;
            if (!have_report && count > 0) report.ssrc = get32(p + 4);
        }
        at += bytes;
    }
    if (!have_report && !report.bye) return std::nullopt;
    return report;
}

std::size_t write_rtcp(std::span<std::uint8_t> out, std::uint32_t ssrc, const RtcpSenderInfo* sender,
                       std::span<const RtcpReportBlock> blocks, std::string_view cname, bool bye) noexcept {
    if (blocks.size() > 31 || cname.size() > 255) return 0;
    const std::size_t report = (sender ? 28 : 8) + blocks.size() * kBlockBytes;
    // SDES: header, SSRC, CNAME item (type, length, text), then at least one zero octet ending
    // the item list, padded to a 32-bit boundary.
    const std::size_t sdes = (4 + 4 + 2 + cname.size() + 1 + 3) / 4 * 4;
    const std::size_t total = report + sdes + (bye ? 8 : 0);
    if (out.size() < total) return 0;
    std::uint8_t* p = out.data();
    std::memset(p, 0, total);
    put_header(p, blocks.size(), sender ? kSenderReport : kReceiverReport, report);
    put32(p + 4, ssrc);
    if (sender) {
        put32(p + 8, std::uint32_t(sender->ntp >> 32));
        put32(p + 12, std::uint32_t(sender->ntp));
        put32(p + 16, sender->rtp_timestamp);
        put32(p + 20, sender->packets);
        put32(p + 24, sender->octets);
    }
    for (std::size_t i = 0; i < blocks.size(); ++i) write_block(p + (sender ? 28 : 8) + i * kBlockBytes, blocks[i]);
    p += report;
    put_header(p, 1, kSourceDescription, sdes);
    put32(p + 4, ssrc);
    p[8] = 1;  // CNAME
    p[9] = std::uint8_t(cname.size());
    std::memcpy(p + 10, cname.data(), cname.size());  // the zero octets after it were set above
    p += sdes;
    if (bye) {
        put_header(p, 1, kGoodbye, 8);
        put32(p + 4, ssrc);
    }
    return total;
}

// NTP counts from 1900; Unix time from 1970: 70 years, 17 of them leap.
constexpr std::int64_t kNtpUnixOffsetSeconds = 2'208'988'800;

std::uint64_t ntp_of_unix_ns(std::int64_t unix_ns) noexcept {
    const std::int64_t seconds = unix_ns / 1'000'000'000 + kNtpUnixOffsetSeconds;
    const std::uint64_t nanos = std::uint64_t(unix_ns % 1'000'000'000);
    return std::uint64_t(seconds) << 32 | ((nanos << 32) / 1'000'000'000);
}

std::int64_t unix_ns_of_ntp(std::uint64_t ntp) noexcept {
    const std::int64_t seconds = std::int64_t(ntp >> 32) - kNtpUnixOffsetSeconds;
    const std::uint64_t fraction = ntp & 0xFFFFFFFFULL;
    return seconds * 1'000'000'000 + std::int64_t((fraction * 1'000'000'000) >> 32);
}

}  // namespace sluice::wire

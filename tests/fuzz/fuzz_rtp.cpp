// SPDX-License-Identifier: MIT
// libFuzzer target: the RTCP parser (what it accepts writes back and reads the same), the RTP
// packet parser, then the RFC 4175 payload reader on what it returns,
// into small pictures of both samplings. The payload must lie within the datagram; the reader
// must stay inside the picture (ASan watches) and account for every byte it writes.
#include <sluice/wire/rtcp.hpp>
#include <sluice/wire/rtp.hpp>

#include <array>
#include <cstdint>
#include <cstdlib>
#include <numeric>
#include <vector>

namespace {
using sluice::engine::MediaFormat;
using sluice::engine::PixelFormat;

void unpack_into(const MediaFormat& format, std::span<const std::uint8_t> payload) {
    const auto layout = sluice::wire::RawVideoLayout::of(format);
    if (!layout) std::abort();
    // Exactly the picture's size on the heap, so ASan sees a write one byte past it.
    std::vector<std::uint8_t> picture(format.frame_bytes());
    std::vector<std::uint32_t> rows(std::size_t(layout->rows()), 0);
    const auto unpacked = sluice::wire::unpack_raw_video(*layout, payload, picture.data(), rows);
    const std::uint64_t filled = std::accumulate(rows.begin(), rows.end(), std::uint64_t(0));
    if (unpacked ? filled != unpacked->new_bytes || filled > unpacked->bytes : filled != 0) std::abort();
}
}  // namespace

static void rtcp(const std::uint8_t* data, std::size_t size) {
    const auto report = sluice::wire::parse_rtcp({data, size});
    if (!report) return;
    if (report->block_count > report->blocks.size()) std::abort();
    std::array<std::uint8_t, 1024> out{};
    const std::size_t n = sluice::wire::write_rtcp(out, report->ssrc, report->sender ? &*report->sender : nullptr,
                                                   {report->blocks.data(), report->block_count}, "fuzz", report->bye);
    const auto again = sluice::wire::parse_rtcp({out.data(), n});
    if (n == 0 || !again || again->ssrc != report->ssrc || again->block_count != report->block_count ||
        again->bye != report->bye || again->sender.has_value() != report->sender.has_value())
        std::abort();
    for (std::size_t i = 0; i < report->block_count; ++i)
        if (again->blocks[i].highest_sequence != report->blocks[i].highest_sequence ||
            again->blocks[i].cumulative_lost != report->blocks[i].cumulative_lost)
            std::abort();
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    rtcp(data, size);
    const auto p = sluice::wire::parse_rtp_packet({data, size});
    if (!p) return 0;
    if (p->payload.data() < data || p->payload.data() + p->payload.size() > data + size) std::abort();
    unpack_into(MediaFormat::video(16, 8, PixelFormat::i420, {30, 1}), p->payload);
    unpack_into(MediaFormat::video(6, 4, PixelFormat::rgba, {30, 1}), p->payload);
    return 0;
}

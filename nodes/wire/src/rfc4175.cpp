// SPDX-License-Identifier: MIT
// RFC 4175 raw video payloads: a picture cut into line segments, and put back together.
#include <sluice/wire/rtp.hpp>

#include <algorithm>
#include <cstring>

namespace sluice::wire {

using engine::PixelFormat;

std::optional<RawVideoLayout> RawVideoLayout::of(const engine::MediaFormat& format) noexcept {
    if (format.kind != engine::MediaKind::video || !format.fixed()) return std::nullopt;
    constexpr int kMaxLine = 0x7FFF;  // 15 bits of line number and of pixel offset
    if (format.width > kMaxLine || format.height > kMaxLine) return std::nullopt;
    RawVideoLayout l;
    l.format_ = format.pixel_format;
    l.width_ = format.width;
    l.height_ = format.height;
    switch (format.pixel_format) {
    case PixelFormat::i420:
        if (format.width % 2 != 0 || format.height % 2 != 0) return std::nullopt;
        l.lines_per_row_ = 2;
        l.pixels_per_group_ = 2;
        l.group_bytes_ = 6;
        return l;
    case PixelFormat::rgba:
        l.lines_per_row_ = 1;
        l.pixels_per_group_ = 1;
        l.group_bytes_ = 4;
        return l;
    default:
        return std::nullopt;
    }
}

const char* RawVideoLayout::sampling() const noexcept {
    return format_ == PixelFormat::i420 ? "YCbCr-4:2:0" : "RGBA";
}

namespace {

constexpr std::size_t kLineHeader = 6;
constexpr std::size_t kPayloadHeader = 2;  // the extended sequence number

// The next line segment from `at` with `space` bytes left: how many groups (0: none fits).
int groups_that_fit(const RawVideoLayout& l, const RawVideoCursor& at, std::size_t space) noexcept {
    if (at.done(l) || space < kLineHeader + l.group_bytes()) return 0;
    const int left_in_row = (l.width() - at.pixel) / l.pixels_per_group();
    return int(std::min<std::size_t>(std::size_t(left_in_row), (space - kLineHeader) / l.group_bytes()));
}

void advance(const RawVideoLayout& l, RawVideoCursor& at, int groups) noexcept {
    at.pixel += groups * l.pixels_per_group();
    if (at.pixel >= l.width()) {
        at.pixel = 0;
        ++at.row;
    }
}

// Pointers to the first pixel of a row segment in each plane (I420: both luma lines, U, V).
struct RowPointers {
    std::uint8_t* y0;
    std::uint8_t* y1;
    std::uint8_t* u;
    std::uint8_t* v;
};

RowPointers row_pointers(const RawVideoLayout& l, std::uint8_t* picture, int row, int pixel) noexcept {
    const auto w = std::size_t(l.width()), h = std::size_t(l.height());
    if (l.pixel_format() == PixelFormat::rgba) {
        std::uint8_t* p = picture + (std::size_t(row) * w + std::size_t(pixel)) * 4;
        return {p, nullptr, nullptr, nullptr};
    }
    std::uint8_t* y0 = picture + std::size_t(2 * row) * w + std::size_t(pixel);
    const std::size_t chroma = std::size_t(row) * (w / 2) + std::size_t(pixel / 2);
    std::uint8_t* u = picture + w * h + chroma;
    return {y0, y0 + w, u, u + (w / 2) * (h / 2)};
}

void copy_out(const RawVideoLayout& l, const std::uint8_t* picture, int row, int pixel, int groups,
              std::uint8_t* out) noexcept {
    const RowPointers p = row_pointers(l, const_cast<std::uint8_t*>(picture), row, pixel);
    if (l.pixel_format() == PixelFormat::rgba) {
        std::memcpy(out, p.y0, std::size_t(groups) * 4);
        return;
    }
    for (int g = 0; g < groups; ++g, out += 6) {
        out[0] = p.y0[2 * g];
        out[1] = p.y0[2 * g + 1];
        out[2] = p.y1[2 * g];
        out[3] = p.y1[2 * g + 1];
        out[4] = p.u[g];
        out[5] = p.v[g];
    }
}

void copy_in(const RawVideoLayout& l, std::uint8_t* picture, int row, int pixel, int groups,
             const std::uint8_t* in) noexcept {
    const RowPointers p = row_pointers(l, picture, row, pixel);
    if (l.pixel_format() == PixelFormat::rgba) {
        std::memcpy(p.y0, in, std::size_t(groups) * 4);
        return;
    }
    for (int g = 0; g < groups; ++g, in += 6) {
        p.y0[2 * g] = in[0];
        p.y0[2 * g + 1] = in[1];
        p.y1[2 * g] = in[2];
        p.y1[2 * g + 1] = in[3];
        p.u[g] = in[4];
        p.v[g] = in[5];
    }
}

std::uint16_t read16(const std::uint8_t* p) noexcept { return std::uint16_t(p[0] << 8 | p[1]); }
void write16(std::uint8_t* p, unsigned v) noexcept {
    p[0] = std::uint8_t(v >> 8);
    p[1] = std::uint8_t(v);
}

}  // namespace

std::size_t pack_raw_video(const RawVideoLayout& l, const std::uint8_t* picture, RawVideoCursor& at,
                           std::uint16_t extended_sequence, std::span<std::uint8_t> out) noexcept {
    // Every header comes before every byte of pixel data, so first count the segments.
    const std::size_t capacity = std::min<std::size_t>(out.size(), 0xFFFF);
    if (capacity < kPayloadHeader) return 0;
    std::size_t segments = 0, space = capacity - kPayloadHeader;
    for (RawVideoCursor c = at;;) {
        const int groups = groups_that_fit(l, c, space);
        if (groups == 0) break;
        space -= kLineHeader + std::size_t(groups) * l.group_bytes();
        advance(l, c, groups);
        ++segments;
    }
    if (segments == 0) return 0;
    write16(out.data(), extended_sequence);
    std::uint8_t* header = out.data() + kPayloadHeader;
    std::uint8_t* data = header + segments * kLineHeader;
    space = capacity - kPayloadHeader;
    for (std::size_t s = 0; s < segments; ++s, header += kLineHeader) {
        const int groups = groups_that_fit(l, at, space);
        const std::size_t bytes = std::size_t(groups) * l.group_bytes();
        write16(header, unsigned(bytes));
        write16(header + 2, unsigned(at.row * l.lines_per_row()));  // field bit 0: progressive
        write16(header + 4, unsigned(at.pixel) | (s + 1 < segments ? 0x8000u : 0u));
        copy_out(l, picture, at.row, at.pixel, groups, data);
        data += bytes;
        space -= kLineHeader + bytes;
        advance(l, at, groups);
    }
    return std::size_t(data - out.data());
}

std::optional<RawVideoPayload> unpack_raw_video(const RawVideoLayout& l, std::span<const std::uint8_t> payload,
                                                std::uint8_t* picture,
                                                std::span<std::uint32_t> row_bytes_filled) noexcept {
    if (payload.size() < kPayloadHeader) return std::nullopt;
    if (picture != nullptr && row_bytes_filled.size() < std::size_t(l.rows())) return std::nullopt;
    // First pass: every header must describe whole groups inside the picture, and the data they
    // announce must all be there.
    std::size_t pos = kPayloadHeader, data_bytes = 0;
    for (bool more = true; more;) {
        if (payload.size() - pos < kLineHeader) return std::nullopt;
        const std::uint16_t length = read16(&payload[pos]), line = read16(&payload[pos + 2]),
                            offset = read16(&payload[pos + 4]);
        more = (offset & 0x8000) != 0;
        const int line_no = line & 0x7FFF, pixel = offset & 0x7FFF;
        if ((line & 0x8000) != 0) return std::nullopt;  // a second field: interlaced video is not carried
        if (line_no % l.lines_per_row() != 0 || line_no >= l.height()) return std::nullopt;
        if (pixel % l.pixels_per_group() != 0 || length % l.group_bytes() != 0) return std::nullopt;
        if (pixel + int(length / l.group_bytes()) * l.pixels_per_group() > l.width()) return std::nullopt;
        data_bytes += length;
        pos += kLineHeader;
    }
    if (payload.size() - pos < data_bytes) return std::nullopt;
    if (picture == nullptr) return RawVideoPayload{read16(payload.data()), data_bytes, 0};
    // Second pass: copy.
    const std::uint8_t* data = payload.data() + pos;
    std::size_t new_bytes = 0;
    const auto full = std::uint32_t(l.row_bytes());
    for (std::size_t h = kPayloadHeader; h < pos; h += kLineHeader) {
        const std::uint16_t length = read16(&payload[h]);
        const int row = (read16(&payload[h + 2]) & 0x7FFF) / l.lines_per_row();
        const int pixel = read16(&payload[h + 4]) & 0x7FFF;
        copy_in(l, picture, row, pixel, int(length / l.group_bytes()), data);
        std::uint32_t& filled = row_bytes_filled[std::size_t(row)];
        const std::uint32_t before = filled;
        filled = std::min(full, before + length);
        new_bytes += filled - before;
        data += length;
    }
    return RawVideoPayload{read16(payload.data()), data_bytes, new_bytes};
}

}  // namespace sluice::wire

// SPDX-License-Identifier: MIT
#include <sluice/engine/format.hpp>

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace sluice::engine {

std::size_t bytes_per_sample(SampleFormat f) noexcept {
    switch (f) {
        case SampleFormat::s16: return 2;
        case SampleFormat::s24: return 3;
        case SampleFormat::s32: return 4;
        case SampleFormat::f32: return 4;
        case SampleFormat::any: break;
    }
    return 0;
}

const char* to_string(SampleFormat f) noexcept {
    switch (f) {
        case SampleFormat::s16: return "s16";
        case SampleFormat::s24: return "s24";
        case SampleFormat::s32: return "s32";
        case SampleFormat::f32: return "f32";
        case SampleFormat::any: break;
    }
    return "*";
}

std::optional<SampleFormat> sample_format_from_string(std::string_view name) noexcept {
    for (SampleFormat f : {SampleFormat::s16, SampleFormat::s24, SampleFormat::s32, SampleFormat::f32})
        if (name == to_string(f)) return f;
    return std::nullopt;
}

const char* to_string(PixelFormat f) noexcept {
    switch (f) {
        case PixelFormat::i420: return "I420";
        case PixelFormat::rgba: return "RGBA";
        case PixelFormat::nv12: return "NV12";
        case PixelFormat::yuy2: return "YUY2";
        case PixelFormat::rgb24: return "RGB24";
        case PixelFormat::bgra: return "BGRA";
        case PixelFormat::i422: return "I422";
        case PixelFormat::i444: return "I444";
        case PixelFormat::i420p10: return "I420P10";
        case PixelFormat::i422p10: return "I422P10";
        case PixelFormat::i444p10: return "I444P10";
        case PixelFormat::any: break;
    }
    return "*";
}

const char* to_string(ColourMatrix m) noexcept {
    switch (m) {
        case ColourMatrix::bt601: return "bt601";
        case ColourMatrix::bt709: return "bt709";
        case ColourMatrix::any: break;
    }
    return "*";
}

const char* to_string(ColourRange r) noexcept {
    switch (r) {
        case ColourRange::limited: return "limited";
        case ColourRange::full: return "full";
        case ColourRange::any: break;
    }
    return "*";
}

std::optional<PixelFormat> parse_pixel_format(std::string_view text) noexcept {
    for (const PixelFormat f : kPixelFormats) {
        const std::string_view name = to_string(f);
        if (name.size() != text.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < name.size() && same; ++i)
            same = std::tolower(static_cast<unsigned char>(text[i])) == std::tolower(static_cast<unsigned char>(name[i]));
        if (same) return f;
    }
    return std::nullopt;
}

bool is_rgb(PixelFormat f) noexcept { return f == PixelFormat::rgba || f == PixelFormat::bgra || f == PixelFormat::rgb24; }

bool MediaFormat::fixed() const noexcept {
    if (kind == MediaKind::audio) return rate > 0 && channels > 0 && sample_format != SampleFormat::any;
    return width > 0 && height > 0 && pixel_format != PixelFormat::any && fps.num > 0 && fps.den > 0;
}

std::size_t MediaFormat::frame_bytes() const noexcept {
    if (!fixed()) return 0;
    if (kind == MediaKind::audio) return std::size_t(channels) * bytes_per_sample(sample_format);
    return picture_layout(*this).bytes;
}

PictureLayout picture_layout(const MediaFormat& f) noexcept {
    PictureLayout l;
    if (f.kind != MediaKind::video || !f.fixed()) return l;
    const auto w = std::size_t(f.width), h = std::size_t(f.height);
    const std::size_t half_w = (w + 1) / 2, half_h = (h + 1) / 2;  // chroma, rounded up
    // Each format's planes: bytes of picture a row and rows, packed. Chroma planes that halve
    // the width take half the first plane's stride when the rows are padded; NV12's UV plane
    // (a U,V pair per two pixels) and 4:4:4 planes take all of it.
    std::size_t row_bytes[3] = {}, rows[3] = {};
    bool half_stride = false, half_rows = false;
    switch (f.pixel_format) {
        case PixelFormat::rgba:
        case PixelFormat::bgra: l.planes = 1, row_bytes[0] = w * 4, rows[0] = h; break;
        case PixelFormat::rgb24: l.planes = 1, row_bytes[0] = w * 3, rows[0] = h; break;
        case PixelFormat::yuy2: l.planes = 1, row_bytes[0] = half_w * 4, rows[0] = h; break;  // Y U Y V per two pixels
        case PixelFormat::nv12:
            l.planes = 2, row_bytes[0] = w, rows[0] = h, row_bytes[1] = half_w * 2, rows[1] = half_h, half_rows = true;
            break;
        case PixelFormat::i420:
        case PixelFormat::i420p10:
        case PixelFormat::i422:
        case PixelFormat::i422p10:
        case PixelFormat::i444:
        case PixelFormat::i444p10: {
            const bool ten = f.pixel_format == PixelFormat::i420p10 || f.pixel_format == PixelFormat::i422p10 ||
                             f.pixel_format == PixelFormat::i444p10;
            const bool full_chroma = f.pixel_format == PixelFormat::i444 || f.pixel_format == PixelFormat::i444p10;
            half_rows = f.pixel_format == PixelFormat::i420 || f.pixel_format == PixelFormat::i420p10;
            half_stride = !full_chroma;
            const std::size_t bytes = ten ? 2 : 1;
            l.planes = 3;
            row_bytes[0] = w * bytes, rows[0] = h;
            row_bytes[1] = row_bytes[2] = (full_chroma ? w : half_w) * bytes;
            rows[1] = rows[2] = half_rows ? half_h : h;
            break;
        }
        case PixelFormat::any: return l;
    }
    if (f.packed()) {
        std::size_t offset = 0;
        for (int p = 0; p < l.planes; ++p) {
            l.plane[p] = {offset, row_bytes[p], row_bytes[p], rows[p]};
            offset += row_bytes[p] * rows[p];
        }
        l.bytes = offset;
        return l;
    }
    // Padded: the first plane's stride and rows, the others in proportion (never below packed).
    const std::size_t stride = std::max(std::size_t(std::max(f.stride, 0)), row_bytes[0]);
    const std::size_t plane_rows = std::max(std::size_t(std::max(f.plane_rows, 0)), h);
    std::size_t offset = 0;
    for (int p = 0; p < l.planes; ++p) {
        const std::size_t s = p == 0 ? stride : std::max(half_stride ? (stride + 1) / 2 : stride, row_bytes[p]);
        const std::size_t r = p == 0 ? plane_rows : (half_rows ? (plane_rows + 1) / 2 : plane_rows);
        l.plane[p] = {offset, s, row_bytes[p], rows[p]};
        offset += s * r;
    }
    l.bytes = offset;
    return l;
}

std::string MediaFormat::to_string() const {
    auto num = [](int v) { return v > 0 ? std::to_string(v) : std::string("*"); };
    if (kind == MediaKind::audio)
        return "audio/" + std::string(engine::to_string(sample_format)) + " " + num(rate) + "Hz " + num(channels) + "ch";
    std::string s = "video/" + std::string(engine::to_string(pixel_format)) + " " + num(width) + "x" + num(height) +
                    " " + (fps.num > 0 ? std::to_string(fps.num) + "/" + std::to_string(fps.den) : std::string("*")) +
                    "fps";
    // Only colour that differs from what every format meant before the fields existed, so that
    // the common case reads as it always did.
    if (matrix == ColourMatrix::bt709) s += " bt709";
    if (range == ColourRange::full && !is_rgb(pixel_format)) s += " full";
    if (stride > 0 || plane_rows > 0) s += " stride=" + std::to_string(stride) + " rows=" + std::to_string(plane_rows);
    return s;
}

std::string to_string(const FormatSet& set) {
    std::string s = "{";
    for (std::size_t i = 0; i < set.size(); ++i) s += (i ? "; " : "") + set[i].to_string();
    return s + "}";
}

namespace {
template <class T>
bool meet(T a, T b, T any, T& out) {
    if (a == any) return out = b, true;
    if (b == any || a == b) return out = a, true;
    return false;
}
}  // namespace

std::optional<MediaFormat> intersect(const MediaFormat& a, const MediaFormat& b) {
    if (a.kind != b.kind) return std::nullopt;
    MediaFormat r;
    r.kind = a.kind;
    if (a.kind == MediaKind::audio) {
        if (meet(a.rate, b.rate, 0, r.rate) && meet(a.channels, b.channels, 0, r.channels) &&
            meet(a.sample_format, b.sample_format, SampleFormat::any, r.sample_format))
            return r;
        return std::nullopt;
    }
    if (!meet(a.width, b.width, 0, r.width) || !meet(a.height, b.height, 0, r.height) ||
        !meet(a.pixel_format, b.pixel_format, PixelFormat::any, r.pixel_format) ||
        !meet(a.matrix, b.matrix, ColourMatrix::any, r.matrix) || !meet(a.range, b.range, ColourRange::any, r.range))
        return std::nullopt;
    if (a.fps.num == 0) r.fps = b.fps;
    else if (b.fps.num == 0 || a.fps.value() == b.fps.value()) r.fps = a.fps;
    else return std::nullopt;
    // Layout: 0 is a value here (packed), only kAnyLayout is open.
    if (!meet(a.stride, b.stride, MediaFormat::kAnyLayout, r.stride) ||
        !meet(a.plane_rows, b.plane_rows, MediaFormat::kAnyLayout, r.plane_rows))
        return std::nullopt;
    return r;
}

FormatSet intersect(const FormatSet& offered, const FormatSet& accepted) {
    FormatSet out;
    for (const auto& o : offered)
        for (const auto& a : accepted)
            if (auto m = intersect(o, a)) out.push_back(*m);
    return out;
}

MediaFormat fixate(MediaFormat f) {
    if (f.kind == MediaKind::audio) {
        if (f.rate <= 0) f.rate = 48000;
        if (f.channels <= 0) f.channels = 2;
        if (f.sample_format == SampleFormat::any) f.sample_format = SampleFormat::s16;
    } else {
        if (f.width <= 0) f.width = 320;
        if (f.height <= 0) f.height = 240;
        if (f.pixel_format == PixelFormat::any) f.pixel_format = PixelFormat::i420;
        if (f.fps.num <= 0 || f.fps.den <= 0) f.fps = {30, 1};
        if (f.stride == MediaFormat::kAnyLayout) f.stride = 0;
        if (f.plane_rows == MediaFormat::kAnyLayout) f.plane_rows = 0;
        // BT.601 limited is what every video node assumed before the fields existed, and what
        // swscale assumes of an untagged picture whatever its size (no guess of BT.709 for HD):
        // a stream that is BT.709 says so in its offer. RGB is always full range.
        if (f.matrix == ColourMatrix::any) f.matrix = ColourMatrix::bt601;
        if (f.range == ColourRange::any) f.range = is_rgb(f.pixel_format) ? ColourRange::full : ColourRange::limited;
    }
    return f;
}

}  // namespace sluice::engine

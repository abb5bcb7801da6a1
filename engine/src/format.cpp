// SPDX-License-Identifier: MIT
#include <sluice/engine/format.hpp>

#include <algorithm>
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
        case PixelFormat::any: break;
    }
    return "*";
}

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
    if (f.pixel_format == PixelFormat::rgba) {
        const std::size_t stride = std::max(std::size_t(std::max(f.stride, 0)), w * 4);
        const std::size_t rows = std::max(std::size_t(std::max(f.plane_rows, 0)), h);
        l.planes = 1;
        l.plane[0] = {0, stride, w * 4, h};
        l.bytes = stride * rows;
        return l;
    }
    // I420: the Y plane, then U and V at half its size (rounded up), each with half its stride.
    const std::size_t stride = std::max(std::size_t(std::max(f.stride, 0)), w);
    const std::size_t rows = std::max(std::size_t(std::max(f.plane_rows, 0)), h);
    const std::size_t chroma_w = (w + 1) / 2, chroma_h = (h + 1) / 2;
    const std::size_t chroma_stride = (stride + 1) / 2, chroma_rows = (rows + 1) / 2;  // packed: chroma_w, chroma_h
    l.planes = 3;
    l.plane[0] = {0, stride, w, h};
    l.plane[1] = {stride * rows, chroma_stride, chroma_w, chroma_h};
    l.plane[2] = {stride * rows + chroma_stride * chroma_rows, chroma_stride, chroma_w, chroma_h};
    l.bytes = stride * rows + 2 * chroma_stride * chroma_rows;
    return l;
}

std::string MediaFormat::to_string() const {
    auto num = [](int v) { return v > 0 ? std::to_string(v) : std::string("*"); };
    if (kind == MediaKind::audio)
        return "audio/" + std::string(engine::to_string(sample_format)) + " " + num(rate) + "Hz " + num(channels) + "ch";
    std::string s = "video/" + std::string(engine::to_string(pixel_format)) + " " + num(width) + "x" + num(height) + " " +
                    (fps.num > 0 ? std::to_string(fps.num) + "/" + std::to_string(fps.den) : std::string("*")) + "fps";
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
        !meet(a.pixel_format, b.pixel_format, PixelFormat::any, r.pixel_format))
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
    }
    return f;
}

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
#include "video/swscale.hpp"

extern "C" {
#include <libavutil/opt.h>
}

namespace sluice::nodes::detail {

using engine::ColourMatrix;
using engine::ColourRange;
using engine::MediaFormat;
using engine::PixelFormat;

AVPixelFormat av_pixel_format(PixelFormat f) noexcept {
    switch (f) {
        case PixelFormat::i420: return AV_PIX_FMT_YUV420P;
        case PixelFormat::rgba: return AV_PIX_FMT_RGBA;
        case PixelFormat::nv12: return AV_PIX_FMT_NV12;
        case PixelFormat::yuy2: return AV_PIX_FMT_YUYV422;
        case PixelFormat::rgb24: return AV_PIX_FMT_RGB24;
        case PixelFormat::bgra: return AV_PIX_FMT_BGRA;
        case PixelFormat::i422: return AV_PIX_FMT_YUV422P;
        case PixelFormat::i444: return AV_PIX_FMT_YUV444P;
        case PixelFormat::i420p10: return AV_PIX_FMT_YUV420P10LE;
        case PixelFormat::i422p10: return AV_PIX_FMT_YUV422P10LE;
        case PixelFormat::i444p10: return AV_PIX_FMT_YUV444P10LE;
        case PixelFormat::any: break;
    }
    return AV_PIX_FMT_NONE;
}

namespace {

int sws_method(ScaleMethod m) noexcept {
    switch (m) {
        case ScaleMethod::nearest: return SWS_POINT;
        case ScaleMethod::bilinear: return SWS_BILINEAR;
        case ScaleMethod::bicubic: return SWS_BICUBIC;
        case ScaleMethod::area: return SWS_AREA;
    }
    return SWS_BILINEAR;
}

// The matrix and range swscale is told a side has. RGB has neither: its flag stays 0, as
// ffmpeg's scale filter leaves it for an untagged RGB frame (the flag only matters for Y'CbCr).
const int* coefficients(const MediaFormat& f) noexcept {
    return sws_getCoefficients(f.matrix == ColourMatrix::bt709 ? SWS_CS_ITU709 : SWS_CS_ITU601);
}
int full_range(const MediaFormat& f) noexcept {
    return !engine::is_rgb(f.pixel_format) && f.range == ColourRange::full ? 1 : 0;
}

}  // namespace

std::string SwsPicture::open(const MediaFormat& in, const MediaFormat& out, ScaleMethod method) {
    route_ffmpeg_log();  // swscale's notes ("no accelerated conversion") go to our log, not stderr
    first_ = {};
    second_ = {};
    between_.clear();
    auto stage = [&](Stage& s, const MediaFormat& from, AVPixelFormat from_av, const MediaFormat& to,
                     AVPixelFormat to_av) -> std::string {
        // Ranges must be known when the context is initialised, as ffmpeg's scale filter sets
        // them: sws_init_context picks a plain copy for same-size, same-format pictures when the
        // ranges agree, and sws_setColorspaceDetails afterwards does not undo that choice.
        s.context.reset(sws_alloc_context());
        SwsContext* c = s.context.get();
        const bool set = c != nullptr && av_opt_set_int(c, "srcw", from.width, 0) >= 0 &&
                         av_opt_set_int(c, "srch", from.height, 0) >= 0 && av_opt_set_int(c, "src_format", from_av, 0) >= 0 &&
                         av_opt_set_int(c, "dstw", to.width, 0) >= 0 && av_opt_set_int(c, "dsth", to.height, 0) >= 0 &&
                         av_opt_set_int(c, "dst_format", to_av, 0) >= 0 &&
                         av_opt_set_int(c, "sws_flags", sws_method(method), 0) >= 0 &&
                         av_opt_set_int(c, "src_range", full_range(from), 0) >= 0 &&
                         av_opt_set_int(c, "dst_range", full_range(to), 0) >= 0;
        if (!set || sws_init_context(c, nullptr, nullptr) < 0)
            return "libswscale cannot convert " + from.to_string() + " to " + to.to_string();
        // Brightness 0, contrast and saturation 1.0 in 16.16: colour as it is, only re-expressed.
        sws_setColorspaceDetails(c, coefficients(from), full_range(from), coefficients(to), full_range(to), 0, 1 << 16,
                                 1 << 16);
        s.from = PlaneLayout::of(from.pixel_format, from.width, from.height);
        s.to = PlaneLayout::of(to.pixel_format, to.width, to.height);
        s.from_height = from.height;
        return {};
    };
    const AVPixelFormat in_av = av_pixel_format(in.pixel_format), out_av = av_pixel_format(out.pixel_format);
    const bool both_yuv = !engine::is_rgb(in.pixel_format) && !engine::is_rgb(out.pixel_format);
    const auto matrix = [](const MediaFormat& f) { return f.matrix == ColourMatrix::bt709 ? 709 : 601; };
    if (!both_yuv || matrix(in) == matrix(out)) return stage(first_, in, in_av, out, out_av);
    // The size changes in the first stage, the matrix and range between the two; 16 bits a
    // channel keep 10-bit pictures' precision.
    MediaFormat rgb = out;
    rgb.pixel_format = PixelFormat::rgba;  // for is_rgb(); the buffer below is RGB48
    rgb.range = ColourRange::full;
    if (std::string error = stage(first_, in, in_av, rgb, AV_PIX_FMT_RGB48LE); !error.empty()) return error;
    if (std::string error = stage(second_, rgb, AV_PIX_FMT_RGB48LE, out, out_av); !error.empty()) return error;
    PlaneLayout rgb48;
    rgb48.planes = 1;
    rgb48.stride[0] = std::size_t(out.width) * 6;
    rgb48.rows[0] = std::size_t(out.height);
    first_.to = second_.from = rgb48;
    between_.assign(rgb48.total(), 0);
    return {};
}

void SwsPicture::run(Stage& s, const std::uint8_t* src, std::uint8_t* dst) noexcept {
    const std::uint8_t* from[4] = {};
    std::uint8_t* to[4] = {};
    int from_stride[4] = {}, to_stride[4] = {};
    for (int p = 0; p < s.from.planes; ++p) from[p] = src + s.from.offset[p], from_stride[p] = int(s.from.stride[p]);
    for (int p = 0; p < s.to.planes; ++p) to[p] = dst + s.to.offset[p], to_stride[p] = int(s.to.stride[p]);
    sws_scale(s.context.get(), from, from_stride, 0, s.from_height, to, to_stride);
}

void SwsPicture::convert(const std::uint8_t* src, std::uint8_t* dst) noexcept {
    if (!second_.context) return run(first_, src, dst);
    run(first_, src, between_.data());
    run(second_, between_.data(), dst);
}

}  // namespace sluice::nodes::detail

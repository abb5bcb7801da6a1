// SPDX-License-Identifier: MIT
#pragma once

// Picture maths for the video nodes: plane geometry (one I420Layout for every node, PlaneLayout
// for every pixel format), BT.601 colour conversion from RGB (one arithmetic path), RGBA -> I420,
// and the painting videotest does (rectangles and a bitmap digit font). No nodes,
// no graph: plain functions over caller-owned bytes, hand-written because each is a loop GCC
// vectorizes at -O2. Scaling, and every other conversion, is libswscale's (swscale.hpp).
//
// Pictures are tightly packed, as MediaFormat::frame_bytes() counts them: RGBA is width*4 bytes a
// row; I420 is the Y plane (width x height) followed by U and V at ((width+1)/2 x (height+1)/2).
// Any thread; never allocates, never blocks.

#include <sluice/allocators/sample.hpp>
#include <sluice/engine/format.hpp>

#include <cstddef>
#include <cstdint>

namespace sluice::nodes::detail {

// Where the planes of one I420 picture lie.
struct I420Layout {
    std::size_t width = 0, height = 0;                // of the Y plane
    std::size_t chroma_width = 0, chroma_height = 0;  // of U and of V: half, rounded up
    std::size_t y_bytes = 0;                          // offset of U
    std::size_t chroma_bytes = 0;                     // of one chroma plane; V starts at y_bytes + chroma_bytes

    static I420Layout of(int width, int height) noexcept {
        I420Layout l;
        l.width = std::size_t(width);
        l.height = std::size_t(height);
        l.chroma_width = (l.width + 1) / 2;
        l.chroma_height = (l.height + 1) / 2;
        l.y_bytes = l.width * l.height;
        l.chroma_bytes = l.chroma_width * l.chroma_height;
        return l;
    }
    std::size_t total() const noexcept { return y_bytes + 2 * chroma_bytes; }
};

// The plane pointers and strides of a picture in `format` (any layout: see engine::picture_layout)
// starting at `base`, as FFmpeg and libswscale take them; planes past the format's are null.
inline void plane_pointers(const engine::MediaFormat& format, std::byte* base, std::uint8_t* data[4], int linesize[4]) noexcept {
    const engine::PictureLayout l = engine::picture_layout(format);
    for (int i = 0; i < 4; ++i) {
        data[i] = i < l.planes ? reinterpret_cast<std::uint8_t*>(base) + l.plane[i].offset : nullptr;
        linesize[i] = i < l.planes ? int(l.plane[i].stride) : 0;
    }
}
// Where the planes of one tightly packed picture in any pixel format lie (one to three planes;
// format.hpp lists them), with each plane's row stride in bytes. Packed formats are one plane.
struct PlaneLayout {
    static constexpr int kMaxPlanes = 3;
    int planes = 0;
    std::size_t offset[kMaxPlanes] = {};
    std::size_t stride[kMaxPlanes] = {};  // bytes a row
    std::size_t rows[kMaxPlanes] = {};

    // `format` must not be `any`. Equals MediaFormat::frame_bytes() for the same picture.
    static PlaneLayout of(engine::PixelFormat format, int width, int height) noexcept;
    std::size_t total() const noexcept { return planes > 0 ? offset[planes - 1] + stride[planes - 1] * rows[planes - 1] : 0; }
};

struct Rgb {
    std::uint8_t r = 0, g = 0, b = 0;
};
struct Yuv {
    std::uint8_t y = 16, u = 128, v = 128;
};

// BT.601, limited range (Y 16..235, chroma 16..240), 8-bit integer arithmetic: the classic
// fixed-point coefficients (ITU-R BT.601 scaled by 256), as most software converters use. (The
// way back to RGB is libswscale's now: videoconvert, pngsink.)
Yuv rgb_to_yuv(Rgb c) noexcept;

// RGBA to I420, BT.601 limited, for videoconvert where it beats libswscale (see there): `src` and
// `dst` must not overlap; alpha is ignored; each 2x2 block's chroma comes from its mean colour
// (fewer pixels at odd right and bottom edges). The other direction, and every other
// conversion, is libswscale's (swscale.hpp).
void rgba_to_i420(const std::uint8_t* src, int width, int height, std::uint8_t* dst) noexcept;

// A writable picture for painting.
struct Picture {
    std::uint8_t* data = nullptr;
    int width = 0;
    int height = 0;
    engine::PixelFormat format = engine::PixelFormat::i420;
};

// Fills a rectangle, clipped to the picture. In I420 the chroma of every 2x2 block the rectangle
// touches is overwritten, so keep x, y and the size even for clean edges.
void fill_rect(const Picture& p, int x, int y, int w, int h, Rgb colour) noexcept;

// Draws `value` in decimal with a 3x5-cell bitmap font, each cell `cell` pixels square, on a
// `background` plate with a one-cell margin; the plate's top-left corner is (x, y).
void draw_number(const Picture& p, int x, int y, int cell, std::uint64_t value, Rgb colour, Rgb background) noexcept;
// Width and height in pixels of the plate draw_number paints for `value`.
int number_plate_width(std::uint64_t value, int cell) noexcept;
int number_plate_height(int cell) noexcept;

}  // namespace sluice::nodes::detail

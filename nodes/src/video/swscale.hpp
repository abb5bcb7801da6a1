// SPDX-License-Identifier: MIT
#pragma once

// libswscale behind videoconvert and scale: every pixel format of format.hpp, both colour
// matrices and ranges, and filtered scaling. The SwsContext is made once for a fixed input and
// output format on the control thread; converting a picture then neither allocates nor blocks.

#include <sluice/engine/format.hpp>

#include "media/ffmpeg.hpp"
#include "video/picture.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace sluice::nodes::detail {

enum class ScaleMethod { nearest, bilinear, bicubic, area };

// FFmpeg's pixel format for ours (yuv420p, nv12, yuyv422, yuv420p10le...); AV_PIX_FMT_NONE for any.
AVPixelFormat av_pixel_format(engine::PixelFormat f) noexcept;

class SwsPicture {
public:
    // Prepares converting pictures of `in` (fixed) into `out` (fixed; any size, any pixel format),
    // resampling with `method` when the sizes differ. The colour of each side is its matrix and
    // range (open reads as BT.601 limited). swscale changes the range of Y'CbCr but not its
    // matrix, so Y'CbCr to Y'CbCr across matrices goes through a 16-bit RGB picture kept here.
    // Control thread; allocates. An error message, or empty.
    std::string open(const engine::MediaFormat& in, const engine::MediaFormat& out, ScaleMethod method);

    // One picture, tightly packed as format.hpp says, from `src` to `dst` (which must not
    // overlap). Streaming thread; never allocates, never blocks, once open() succeeded.
    void convert(const std::uint8_t* src, std::uint8_t* dst) noexcept;

private:
    struct Stage {
        SwsPtr context;
        PlaneLayout from, to;
        int from_height = 0;
    };
    static void run(Stage& stage, const std::uint8_t* src, std::uint8_t* dst) noexcept;

    Stage first_, second_;               // second_ only for a change of matrix between Y'CbCr
    std::vector<std::uint8_t> between_;  // the RGB picture between them; sized in open()
};

}  // namespace sluice::nodes::detail

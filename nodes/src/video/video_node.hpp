// SPDX-License-Identifier: MIT
#pragma once

// The node side of video: the base of the video nodes, and the properties of nodes that make
// pictures up (format, size, rate). The picture maths itself is in picture.hpp.

#include <sluice/engine/format.hpp>
#include <sluice/engine/node.hpp>
#include <sluice/nodes/registry.hpp>

#include "video/picture.hpp"

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace sluice::nodes::detail {

inline constexpr int kMaxDimension = engine::kMaxVideoDimension;
inline constexpr std::int64_t kMaxPixels = engine::kMaxVideoPixels;

// Base of the video nodes: the error paths they share. Streaming thread only; the error paths
// allocate (they post on the bus), the others do not.
class VideoNode : public engine::Node {
public:
    using Node::Node;

protected:
    // A sample of `size` bytes where the format needs `expected`: report rather than read past it.
    engine::Flow short_sample(std::size_t size, std::size_t expected);
    // A buffer of output 0 holding one picture of `bytes` bytes into `out`: Flow::ok, or the flow
    // to return (the pool stopped or failed; a pool too small for the picture, reported).
    engine::Flow picture_buffer(std::size_t bytes, SampleRef& out);
};

// The properties of nodes that make pictures up (videotest, rtpvrawsrc): `format` as i420|rgba,
// and width, height and fps checked against the limits above. Control thread; throws through
// PropertyReader::fail like every property read.
std::vector<std::string> pixel_format_names();
engine::PixelFormat pixel_format_at(std::size_t choice) noexcept;
// When frame n of a stream at `fps` starts, n / fps seconds after frame 0, in ns. Exact to the
// ns for any n a stream reaches (128-bit inside: n * den * 1e9 overflows 64 bits after a few
// months of 30000/1001). fps must be positive.
MediaTime frame_start(engine::Fraction fps, std::uint64_t n) noexcept;
// "30" or "30000/1001": both parts positive integers that fit a Fraction.
std::optional<engine::Fraction> parse_rate(std::string_view text) noexcept;
void check_area(PropertyReader& r, std::int64_t width, std::int64_t height);
// Reads width, height, fps and format into a fixed video format, BT.601 limited (RGBA: full).
engine::MediaFormat read_video_format(PropertyReader& r);
// Their specs (defaults 320x240, 30 fps, i420), for the nodes' NodeSpec.
std::vector<PropertySpec> video_format_properties();

}  // namespace sluice::nodes::detail

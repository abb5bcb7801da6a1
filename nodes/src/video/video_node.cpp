// SPDX-License-Identifier: MIT
#include "video/video_node.hpp"

#include "core/common.hpp"

#include <algorithm>
#include <bit>
#include <charconv>
#include <cstring>
#include <string>

namespace sluice::nodes::detail {

engine::Flow VideoNode::short_sample(std::size_t size, std::size_t expected) {
    return report_error(make_error_code(engine::GraphErrc::invalid_argument),
                        "received a sample of " + std::to_string(size) + " bytes; its format " +
                            input(0).format().to_string() + " needs " + std::to_string(expected));
}

engine::Flow VideoNode::picture_buffer(std::size_t bytes, SampleRef& out) {
    auto got = get_buffer(0);
    if (!got) return buffer_failed(got.error());
    out = std::move(*got);
    if (std::error_code ec = out.set_size(bytes))
        return report_error(ec, "pool buffer of " + std::to_string(out.capacity()) + " bytes is smaller than a " +
                                    std::to_string(bytes) + "-byte frame");
    return engine::Flow::ok;
}

std::vector<std::string> pixel_format_names() { return {"i420", "rgba"}; }

engine::PixelFormat pixel_format_at(std::size_t choice) noexcept {
    return choice == 0 ? engine::PixelFormat::i420 : engine::PixelFormat::rgba;
}

MediaTime frame_start(engine::Fraction fps, std::uint64_t n) noexcept {
    return MediaTime(static_cast<__int128>(n) * fps.den * 1'000'000'000 / fps.num);
}

std::optional<engine::Fraction> parse_rate(std::string_view text) noexcept {
    auto whole = [](std::string_view s, int& out) {
        const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
        return ec == std::errc() && end == s.data() + s.size() && out > 0;
    };
    engine::Fraction f{0, 1};
    const std::size_t slash = text.find('/');
    if (!whole(text.substr(0, slash), f.num)) return std::nullopt;
    if (slash != std::string_view::npos && !whole(text.substr(slash + 1), f.den)) return std::nullopt;
    return f;
}

void check_area(PropertyReader& r, std::int64_t width, std::int64_t height) {
    if (width * height > kMaxPixels)
        r.fail(make_error_code(engine::GraphErrc::invalid_argument),
               "a " + std::to_string(width) + "x" + std::to_string(height) + " picture is larger than the " +
                   std::to_string(kMaxPixels) + "-pixel limit");
}

std::vector<PropertySpec> video_format_properties() {
    return {{"width", "320", "picture width in pixels"},
            {"height", "240", "picture height in pixels"},
            {"fps", "30", "frame rate: frames per second, or a fraction like 30000/1001"},
            {"format", "i420", "pixel format: i420|rgba"}};
}

engine::MediaFormat read_video_format(PropertyReader& r) {
    const auto width = r.integer("width", 1, kMaxDimension);
    const auto height = r.integer("height", 1, kMaxDimension);
    check_area(r, width, height);
    const std::string fps = r.text("fps");
    const std::optional<engine::Fraction> rate = parse_rate(fps);
    if (!rate)
        r.fail(make_error_code(engine::GraphErrc::invalid_argument),
               "property fps='" + fps + "' is not a frame rate like 30 or 30000/1001");
    const engine::PixelFormat format = pixel_format_at(r.choice("format", pixel_format_names()));
    engine::MediaFormat f = engine::MediaFormat::video(int(width), int(height), format, rate.value_or(engine::Fraction{30, 1}));
    // What these nodes paint (picture.hpp) or carry (RFC 4175's default colorimetry) is BT.601.
    f.matrix = engine::ColourMatrix::bt601;
    f.range = engine::is_rgb(format) ? engine::ColourRange::full : engine::ColourRange::limited;
    return f;
}

}  // namespace sluice::nodes::detail

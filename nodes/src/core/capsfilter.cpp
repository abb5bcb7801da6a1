// SPDX-License-Identifier: MIT
// capsfilter: constrains the format of one link, as GStreamer's caps filters do. In a pipeline it
// is written as the format itself:
//
//   tone ! audioresample ! audio/x-raw,rate=44100,channels=2,format=s16 ! wavsink path=a.wav
//   videotest ! scale width=640 height=360 ! video/x-raw,format=RGBA,framerate=30/1 ! pngsink ...
//
// It accepts only what the caps allow and passes every sample on untouched (the same buffer).
// Fields: audio rate, channels, format (s16|s24|s32|f32); video width, height, format (I420, RGBA, NV12,
// YUY2, RGB24, BGRA, I422, I444, I420P10, I422P10, I444P10; any case), framerate (N/D), matrix
// (bt601|bt709) and range (limited|full). A field left out stays open.
#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <optional>
#include <string>
#include <vector>

namespace sluice::nodes {
namespace {

using engine::BufferNeeds;
using engine::Flow;
using engine::FormatSet;
using engine::MediaFormat;
using engine::PixelFormat;
using engine::SampleFormat;

std::string lower(std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
}

bool parse_int(std::string_view text, int min, int max, int& out) {
    int v = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
    if (ec != std::errc() || end != text.data() + text.size() || v < min || v > max) return false;
    out = v;
    return true;
}

// "I420, RGBA, NV12, ...": the pixel formats a caps string may name.
std::string pixel_format_list() {
    std::string s;
    for (const PixelFormat f : engine::kPixelFormats) s += (s.empty() ? "" : ", ") + std::string(engine::to_string(f));
    return s;
}

}  // namespace

namespace detail {

// "audio/x-raw,rate=44100,channels=1" as a MediaFormat with the other fields open; an error
// message naming the bad field otherwise.
std::optional<std::string> parse_caps(std::string_view caps, MediaFormat& out) {
    std::vector<std::string_view> fields;
    for (std::size_t start = 0;;) {
        const std::size_t comma = caps.find(',', start);
        fields.push_back(caps.substr(start, comma == std::string_view::npos ? std::string_view::npos : comma - start));
        if (comma == std::string_view::npos) break;
        start = comma + 1;
    }
    if (fields[0] == "audio/x-raw") out = MediaFormat::audio();
    else if (fields[0] == "video/x-raw") out = MediaFormat::video();
    else return "'" + printable(fields[0]) + "' is not audio/x-raw or video/x-raw";
    const bool audio = out.kind == engine::MediaKind::audio;
    for (std::size_t i = 1; i < fields.size(); ++i) {
        const std::size_t eq = fields[i].find('=');
        if (eq == std::string_view::npos) return "field '" + printable(fields[i]) + "' has no value (name=value)";
        const std::string_view key = fields[i].substr(0, eq), value = fields[i].substr(eq + 1);
        const std::string bad = "field " + printable(fields[i]) + ": ";
        if (audio && key == "rate") {
            if (!parse_int(value, 1, 768000, out.rate)) return bad + "a rate from 1 to 768000 Hz";
        } else if (audio && key == "channels") {
            if (!parse_int(value, 1, 64, out.channels)) return bad + "1 to 64 channels";
        } else if (audio && key == "format") {
            const auto f = engine::sample_format_from_string(lower(std::string(value)));
            if (!f) return bad + "s16, s24, s32 or f32";
            out.sample_format = *f;
        } else if (!audio && (key == "width" || key == "height")) {
            if (!parse_int(value, 1, engine::kMaxVideoDimension, key == "width" ? out.width : out.height))
                return bad + "1 to " + std::to_string(engine::kMaxVideoDimension) + " pixels";
        } else if (!audio && key == "format") {
            const std::optional<PixelFormat> f = engine::parse_pixel_format(value);
            if (!f) return bad + "one of " + pixel_format_list();
            out.pixel_format = *f;
        } else if (!audio && key == "matrix") {
            const std::string m = lower(std::string(value));
            if (m == "bt601") out.matrix = engine::ColourMatrix::bt601;
            else if (m == "bt709") out.matrix = engine::ColourMatrix::bt709;
            else return bad + "bt601 or bt709";
        } else if (!audio && key == "range") {
            const std::string m = lower(std::string(value));
            if (m == "limited") out.range = engine::ColourRange::limited;
            else if (m == "full") out.range = engine::ColourRange::full;
            else return bad + "limited or full";
        } else if (!audio && key == "framerate") {
            const std::size_t slash = value.find('/');
            engine::Fraction fps{0, 1};
            if (!parse_int(value.substr(0, slash), 1, 1000000, fps.num) ||
                (slash != std::string_view::npos && !parse_int(value.substr(slash + 1), 1, 1000000, fps.den)))
                return bad + "a frame rate N or N/D";
            out.fps = fps;
        } else {
            return "no field '" + printable(key) + "' in " +
                   (audio ? "audio/x-raw (rate, channels, format)"
                          : "video/x-raw (width, height, format, framerate, matrix, range)");
        }
    }
    return std::nullopt;
}

}  // namespace detail

namespace {

class CapsFilter final : public Node {
public:
    CapsFilter(std::string name, PropertyReader& r) : Node(std::move(name), Kind::transform) {
        const std::string caps = r.text("caps");
        MediaFormat f;
        if (r.ok()) {
            if (caps.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property caps is required");
            else if (auto error = detail::parse_caps(caps, f))
                r.fail(make_error_code(engine::GraphErrc::invalid_argument), "caps " + detail::printable(caps) + ": " + *error);
        }
        add_input("sink", {f});
        add_output("src", {f});
    }
    bool passes_through(std::size_t, std::size_t) const override { return true; }

private:
    FormatSet output_formats(std::size_t) const override { return {input(0).format()}; }
    // Nothing is made here: every sample leaves in the buffer it came in (the graph sizes the
    // pool it never takes from as the one feeding it).
    BufferNeeds output_buffers(std::size_t) const override { return {.bytes = 1, .buffers = 0}; }
    Flow process(std::size_t, SampleRef&& s) override { return push(0, std::move(s)); }
};

}  // namespace

NodeSpec capsfilter_spec() {
    return {"capsfilter", Node::Kind::transform,
            "constrains a link's format; in a pipeline, write the caps themselves: audio/x-raw,rate=44100",
            {{"caps", "", "audio/x-raw,rate=R,channels=C,format=s16|s24|s32|f32 or video/x-raw,width=W,height=H,format=I420|NV12|...,framerate=N/D,matrix=bt601|bt709,range=limited|full"}},
            factory<CapsFilter>()};
}

}  // namespace sluice::nodes

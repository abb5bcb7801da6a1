// SPDX-License-Identifier: MIT
// YUV4MPEG2 (.y4m) stream headers: "YUV4MPEG2 W320 H240 F30:1 Ip A1:1 C420jpeg", read with the
// byte offset of whatever is wrong, and written.
#include <sluice/wire/y4m.hpp>

#include <charconv>

namespace sluice::wire {
namespace {

constexpr std::string_view kMagic = "YUV4MPEG2";
using ParseError = Y4mParseError;

// Up to 32 bytes of `s` for a message, non-printable bytes as '?'.
std::string printable(std::string_view s) {
    std::string out(s.substr(0, 32));
    for (char& c : out)
        if (c < 0x20 || c > 0x7e) c = '?';
    return s.size() > 32 ? out + "..." : out;
}

// A positive decimal int, the whole of `s`.
bool positive(std::string_view s, std::int64_t& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out > 0;
}

}  // namespace

std::optional<Y4mParseError> parse_y4m_header(std::string_view head, bool whole_file, Y4mHeader& out) {
    if (head.size() <= kMagic.size() || !head.starts_with(kMagic) ||
        (head[kMagic.size()] != ' ' && head[kMagic.size()] != '\n'))
        return ParseError{0, "not a YUV4MPEG2 file (it must start with \"YUV4MPEG2 \")"};
    const std::size_t end = head.find('\n');
    if (end == std::string_view::npos)
        return ParseError{head.size(), whole_file ? "header is truncated: the file ends before its end of line"
                                                  : "header line is longer than " + std::to_string(kY4mMaxHeader) + " bytes"};
    std::int64_t width = 0, height = 0, num = 0, den = 0;
    for (std::size_t pos = kMagic.size(); pos < end;) {
        if (head[pos] == ' ') {
            ++pos;
            continue;
        }
        const std::size_t stop = std::min(head.find(' ', pos), end);
        const std::string_view token = head.substr(pos, stop - pos), value = token.substr(1);
        switch (token[0]) {
            case 'W':
            case 'H': {
                const bool is_w = token[0] == 'W';
                std::int64_t& v = is_w ? width : height;
                if (!positive(value, v) || v > engine::kMaxVideoDimension)
                    return ParseError{pos, std::string("bad ") + (is_w ? "width" : "height") + " '" + printable(token) +
                                               "': must be 1.." + std::to_string(engine::kMaxVideoDimension)};
                break;
            }
            case 'F': {
                const std::size_t colon = value.find(':');
                if (colon == std::string_view::npos || !positive(value.substr(0, colon), num) ||
                    !positive(value.substr(colon + 1), den) || num > INT32_MAX || den > INT32_MAX)
                    return ParseError{pos, "bad frame rate '" + printable(token) +
                                               "': must be F<num>:<den>, both positive (F0:0, unknown, is not supported)"};
                break;
            }
            case 'C':
                if (value != "420" && value != "420jpeg" && value != "420paldv" && value != "420mpeg2")
                    return ParseError{pos, "unsupported colour space '" + printable(token) +
                                               "': only 8-bit 4:2:0 (C420, C420jpeg, C420paldv, C420mpeg2) is read"};
                break;
            default:  // I (interlacing: the layout is the same), A (aspect), X (extensions), unknown: ignored
                break;
        }
        pos = stop;
    }
    if (width == 0) return ParseError{end, "header has no width (W parameter)"};
    if (height == 0) return ParseError{end, "header has no height (H parameter)"};
    if (num == 0) return ParseError{end, "header has no frame rate (F parameter)"};
    if (width * height > engine::kMaxVideoPixels)
        return ParseError{end, "a " + std::to_string(width) + "x" + std::to_string(height) + " picture is larger than the " +
                                   std::to_string(engine::kMaxVideoPixels) + "-pixel limit"};
    out = {int(width), int(height), {int(num), int(den)}, end + 1};
    return std::nullopt;
}

const char* y4m_colour_space(engine::PixelFormat f) noexcept {
    using engine::PixelFormat;
    switch (f) {
        // C420jpeg: our I420 has centred chroma, as ffmpeg's yuv420p; the tag ffmpeg writes for it.
        case PixelFormat::i420: return "C420jpeg";
        case PixelFormat::i422: return "C422";
        case PixelFormat::i444: return "C444";
        // Little-endian 16-bit samples, as ffmpeg's yuv4mpegpipe writes and reads them.
        case PixelFormat::i420p10: return "C420p10 XYSCSS=420P10";
        case PixelFormat::i422p10: return "C422p10 XYSCSS=422P10";
        case PixelFormat::i444p10: return "C444p10 XYSCSS=444P10";
        default: return nullptr;
    }
}

std::string y4m_header_line(const engine::MediaFormat& f) {
    const char* colour = y4m_colour_space(f.pixel_format);
    return std::string(kMagic) + " W" + std::to_string(f.width) + " H" + std::to_string(f.height) + " F" +
           std::to_string(f.fps.num) + ":" + std::to_string(f.fps.den) + " Ip A1:1 " +
           (colour != nullptr ? colour : "C420jpeg") + "\n";
}

}  // namespace sluice::wire

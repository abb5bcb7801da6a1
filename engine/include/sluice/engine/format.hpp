// SPDX-License-Identifier: MIT
#pragma once

// Media formats and their negotiation.
//
// A MediaFormat describes raw audio (sample rate, channels, sample format) or raw video (width,
// height, pixel format, frame rate, colour matrix and range). A field left at 0 / `any` accepts
// every value, so one
// MediaFormat can also stand for a set ("audio, any rate, 2 channels, s16"). A FormatSet lists
// alternatives, preferred first. Linking two pins intersects the upstream's offer with the
// downstream's accepted set and fixes the first result (fixate() fills what is still open).

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::engine {

enum class MediaKind : std::uint8_t { audio, video };
// Interleaved, native little-endian. s24 is packed (3 bytes a sample, as WAV's 24-bit PCM and
// ALSA's S24_3LE), so a frame may start at any byte. New formats go at the end: the values are
// part of the ABI plugins see.
enum class SampleFormat : std::uint8_t { any, s16, f32, s24, s32 };
// Pictures are tightly packed, planes one after the other, each row exactly as wide as its pixels
// (frame_bytes() counts them). Chroma planes of subsampled formats are half size, rounded up.
//   i420, i422, i444     8-bit Y, U, V planes; chroma halved both ways, horizontally, or not at all
//   nv12                 8-bit Y plane, then one plane of U,V pairs at 4:2:0 size
//   yuy2                 8-bit packed 4:2:2: Y0 U Y1 V per two pixels (width rounded up to even)
//   rgba, bgra, rgb24    8-bit packed: R G B A, B G R A, R G B in memory order
//   i420p10 ... i444p10  as i420 ... i444, each sample 10 bits in a little-endian 16-bit word
//                        (FFmpeg's yuv420p10le)
// New values go at the end: the numbers are part of the ABI.
enum class PixelFormat : std::uint8_t { any, i420, rgba, nv12, yuy2, rgb24, bgra, i422, i444, i420p10, i422p10, i444p10 };

// How Y'CbCr was derived from R'G'B' (ITU-R BT.601 or BT.709), and whether Y'CbCr uses the
// studio range (Y 16..235, chroma 16..240; "limited", "tv") or every code (0..255; "full", "pc").
// Meaningless for RGB pictures, which are always full range. `any` leaves the choice open.
enum class ColourMatrix : std::uint8_t { any, bt601, bt709 };
enum class ColourRange : std::uint8_t { any, limited, full };

struct Fraction {
    int num = 0;  // 0: any
    int den = 1;
    friend bool operator==(const Fraction&, const Fraction&) = default;
    double value() const noexcept { return den != 0 ? double(num) / double(den) : 0.0; }
};

struct MediaFormat {
    MediaKind kind = MediaKind::audio;
    // Audio.
    int rate = 0;
    int channels = 0;
    SampleFormat sample_format = SampleFormat::any;
    // Video.
    int width = 0;
    int height = 0;
    PixelFormat pixel_format = PixelFormat::any;
    Fraction fps{};
    // Video: how the picture lies in its buffer. Pictures are tightly packed (0, 0) unless both
    // sides of a link agree otherwise: `stride` is the bytes from one row of the first plane to
    // the next, `plane_rows` the rows that plane spans before the next plane begins; the chroma
    // planes of I420 follow at half of each (see picture_layout()). An input that reads any
    // layout says kAnyLayout, and only such an input is handed padded pictures: a decoder
    // writing straight into pool buffers needs them (its rows are aligned for SIMD and padded to
    // whole macroblocks), and a node that assumes packed rows never sees them.
    static constexpr int kAnyLayout = -1;
    int stride = 0;
    int plane_rows = 0;
    ColourMatrix matrix = ColourMatrix::any;
    ColourRange range = ColourRange::any;

    static MediaFormat audio(int rate = 0, int channels = 0, SampleFormat f = SampleFormat::any) {
        MediaFormat m;
        m.kind = MediaKind::audio;
        m.rate = rate;
        m.channels = channels;
        m.sample_format = f;
        return m;
    }
    static MediaFormat video(int width = 0, int height = 0, PixelFormat f = PixelFormat::any, Fraction fps = {}) {
        MediaFormat m;
        m.kind = MediaKind::video;
        m.width = width;
        m.height = height;
        m.pixel_format = f;
        m.fps = fps;
        return m;
    }

    // This format, but reading pictures in any layout (for an input's accepted set).
    MediaFormat with_any_layout() const {
        MediaFormat m = *this;
        m.stride = m.plane_rows = kAnyLayout;
        return m;
    }
    bool packed() const noexcept { return stride == 0 && plane_rows == 0; }

    // Every field that matters for the kind is set. Colour may stay open: it does not change the
    // bytes, and an open matrix and range read as BT.601 limited (see fixate()).
    bool fixed() const noexcept;
    // Audio: bytes per frame (all channels). Video: bytes per picture, padding included. 0
    // unless fixed().
    std::size_t frame_bytes() const noexcept;
    // e.g. "audio/s16 48000Hz 2ch", "video/I420 640x360 30/1fps", with "*" for open fields; a
    // video format whose colour is not BT.601 limited (or open) says so: "... 30/1fps bt709 full".
    std::string to_string() const;

    friend bool operator==(const MediaFormat&, const MediaFormat&) = default;
};

using FormatSet = std::vector<MediaFormat>;

// Where the planes of one picture lie in its buffer: I420 has three (Y, U, V), RGBA one.
struct PicturePlane {
    std::size_t offset = 0;     // from the buffer's start
    std::size_t stride = 0;     // bytes from one row to the next
    std::size_t row_bytes = 0;  // bytes of picture in each row (stride minus padding)
    std::size_t rows = 0;       // rows of picture (the plane may span more: see plane_rows)
};
struct PictureLayout {
    int planes = 0;  // 0: not a fixed video format
    PicturePlane plane[3];
    std::size_t bytes = 0;  // the whole picture, padding included
};
// The layout of a fixed video format. A stride below the row's bytes, or plane_rows below the
// height, count as packed there (a picture never overlaps itself).
PictureLayout picture_layout(const MediaFormat& f) noexcept;

// Largest width or height, and picture area, any video node accepts: beyond them a pool of a
// few frames would take gigabytes, which is a typo or a corrupt header rather than a wish.
inline constexpr int kMaxVideoDimension = 16384;
inline constexpr std::int64_t kMaxVideoPixels = std::int64_t(8192) * 8192;

std::size_t bytes_per_sample(SampleFormat f) noexcept;
const char* to_string(SampleFormat f) noexcept;
const char* to_string(PixelFormat f) noexcept;  // "I420", "NV12", "I420P10"...; "*" for any
const char* to_string(ColourMatrix m) noexcept;  // "bt601", "bt709"; "*" for any
const char* to_string(ColourRange r) noexcept;   // "limited", "full"; "*" for any
// The sample format to_string() names ("s16", "s24", "s32", "f32"; lower case), or nothing.
// Any thread; never allocates.
std::optional<SampleFormat> sample_format_from_string(std::string_view name) noexcept;
std::string to_string(const FormatSet& set);

// The pixel format named `text` as to_string() spells it, in any case ("i420", "NV12",
// "I420p10"); nullopt for any other word, FFmpeg's names included. Any thread; never allocates.
std::optional<PixelFormat> parse_pixel_format(std::string_view text) noexcept;
// Every pixel format but `any`, in enum order, for error messages and property help.
inline constexpr PixelFormat kPixelFormats[] = {
    PixelFormat::i420,  PixelFormat::rgba, PixelFormat::nv12,    PixelFormat::yuy2,    PixelFormat::rgb24,  PixelFormat::bgra,
    PixelFormat::i422,  PixelFormat::i444, PixelFormat::i420p10, PixelFormat::i422p10, PixelFormat::i444p10};
// Whether pictures of `f` hold R'G'B' (no matrix, no range apply) rather than Y'CbCr.
bool is_rgb(PixelFormat f) noexcept;

// The formats both accept (field by field: equal, or one side open), or nothing.
std::optional<MediaFormat> intersect(const MediaFormat& a, const MediaFormat& b);
FormatSet intersect(const FormatSet& offered, const FormatSet& accepted);
// Fills open fields with defaults: 48000 Hz, 2 channels, s16; 320x240, I420, 30/1 fps, and the
// colour every node assumed before the fields existed: BT.601, limited range (full for RGB).
MediaFormat fixate(MediaFormat f);

// Media time of frame `frame` at `rate` frames per second: frame * 1e9 / rate without overflow
// for any frame count a stream can reach (the 128-bit product holds centuries at 768 kHz).
// Saturates at INT64_MAX. Never allocates.
constexpr std::int64_t frames_to_ns(std::uint64_t frame, std::int64_t rate) noexcept {
    const __int128 ns = static_cast<__int128>(frame) * 1'000'000'000 / rate;
    return ns > INT64_MAX ? INT64_MAX : static_cast<std::int64_t>(ns);
}
// The first frame whose time is at or after `ns` (>= 0): ceil(ns * rate / 1e9).
constexpr std::uint64_t frames_at_or_after(std::int64_t ns, std::int64_t rate) noexcept {
    return static_cast<std::uint64_t>((static_cast<__int128>(ns) * rate + 999'999'999) / 1'000'000'000);
}

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
// pngsink: snapshots of a video stream as 8-bit PNG files (RGB24, RGBA and BGRA as they come;
// I420 converted to RGB as videoconvert converts it), through libpng's simplified API.
#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>
#include "video/swscale.hpp"
#include "video/video_node.hpp"

#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <vector>

#include <png.h>
#include <unistd.h>

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::InputNeeds;
using engine::MediaFormat;
using engine::PixelFormat;

// every=0: keeps the last frame (one held sample) and writes it when the graph stops.
// every=N: writes frames 0, N, 2N... as they arrive, to `path` with "%d" replaced by the frame's
// index (counted from 0 as frames arrive), or over the same file when the path has no "%d".
//
// The first file is created in start(), so an unwritable path fails run() rather than the stream;
// if no frame ever arrives that empty file is removed again in stop().
//
// Writing on the streaming thread (every=N) compresses and allocates inside libpng: fine for
// snapshots, not for a clocked real-time render of every frame.
class PngSink final : public detail::VideoNode {
public:
    PngSink(std::string name, PropertyReader& r) : VideoNode(std::move(name), Kind::render) {
        path_ = r.text("path");
        every_ = std::uint64_t(r.integer("every", 0, INT64_MAX));
        if (r.ok() && path_.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        percent_d_ = every_ == 0 ? std::string::npos : path_.find("%d");
        add_input("sink",
                  {MediaFormat::video(0, 0, PixelFormat::i420), MediaFormat::video(0, 0, PixelFormat::rgba),
                   MediaFormat::video(0, 0, PixelFormat::rgb24), MediaFormat::video(0, 0, PixelFormat::bgra)},
                  InputNeeds{.holds = every_ == 0 ? 1u : 0u});
    }
    ~PngSink() override { discard_first_file(); }
    std::vector<FileUse> file_uses() const override { return {{percent_d_ == std::string::npos ? path_ : file_name_of(0), true}}; }

private:
    Status start() override {
        discard_first_file();
        last_.reset();
        count_ = 0;
        const MediaFormat& f = input(0).format();
        frame_bytes_ = f.frame_bytes();
        // Control thread: the buffers and the converter the streaming thread will need are made here.
        rgb_.clear();
        if (f.pixel_format == PixelFormat::i420) {
            MediaFormat rgb = f;
            rgb.pixel_format = PixelFormat::rgb24;
            rgb.range = engine::ColourRange::full;
            rgb_.assign(rgb.frame_bytes(), 0);
            if (std::string error = to_rgb_.open(f, rgb, detail::ScaleMethod::bilinear); !error.empty())
                return {engine::GraphErrc::invalid_argument, error};
        }
        name_.assign(path_.size() + 24, '\0');  // "%d" becomes at most 20 digits
        first_name_ = file_name(0);
        std::string error;
        const int fd = detail::open_output_file(first_name_, error);
        if (fd < 0) return {engine::GraphErrc::io_error, first_name_ + ": " + error};
        first_ = ::fdopen(fd, "wb");
        if (first_ == nullptr) {
            ::close(fd);
            return {engine::GraphErrc::io_error, first_name_ + ": cannot open for writing: " + std::strerror(errno)};
        }
        return {};
    }

    void stop() override {
        if (every_ == 0 && last_) {
            if (auto error = write(last_, count_ - 1)) (void)report_error(make_error_code(engine::GraphErrc::io_error), *error);
        }
        last_.reset();
        discard_first_file();
    }

    void flush() override { last_.reset(); }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        if (s.size() < frame_bytes_) return short_sample(s.size(), frame_bytes_);
        const std::uint64_t n = count_++;
        if (every_ == 0) {
            last_ = std::move(s);  // drops the frame kept before
            return Flow::ok;
        }
        if (n % every_ != 0) return Flow::ok;
        if (auto error = write(s, n)) return report_error(make_error_code(engine::GraphErrc::io_error), *error);
        return Flow::ok;
    }

    // `path_` with "%d" replaced by `n`, in name_ (no allocation); path_ itself when there is no
    // "%d" or every=0.
    const char* file_name(std::uint64_t n) noexcept {
        if (percent_d_ == std::string::npos) return path_.c_str();
        char* out = name_.data();
        std::memcpy(out, path_.data(), percent_d_);
        out = std::to_chars(out + percent_d_, out + percent_d_ + 20, n).ptr;
        const std::size_t rest = path_.size() - percent_d_ - 2;
        std::memcpy(out, path_.data() + percent_d_ + 2, rest);
        out[rest] = '\0';
        return name_.data();
    }

    std::string file_name_of(std::uint64_t n) const {
        return path_.substr(0, percent_d_) + std::to_string(n) + path_.substr(percent_d_ + 2);
    }

    // Writes frame `n` (the first one into the file opened by start()); the message on failure.
    std::optional<std::string> write(const SampleRef& s, std::uint64_t n) {
        const MediaFormat& f = input(0).format();
        png_image image{};
        image.version = PNG_IMAGE_VERSION;
        image.width = png_uint_32(f.width);
        image.height = png_uint_32(f.height);
        const void* pixels = s.data();
        png_int_32 stride = f.width * 4;
        if (f.pixel_format == PixelFormat::i420) {
            to_rgb_.convert(reinterpret_cast<const std::uint8_t*>(s.data()), rgb_.data());
            image.format = PNG_FORMAT_RGB;
            pixels = rgb_.data();
            stride = f.width * 3;
        } else if (f.pixel_format == PixelFormat::rgb24) {
            image.format = PNG_FORMAT_RGB;
            stride = f.width * 3;
        } else {
            image.format = f.pixel_format == PixelFormat::bgra ? PNG_FORMAT_BGRA : PNG_FORMAT_RGBA;
        }
        const char* name = first_ != nullptr ? first_name_.c_str() : file_name(n);
        if (first_ == nullptr) {  // a later frame's own file, opened as start() opens the first
            std::string error;
            const int fd = detail::open_output_file(name, error);
            if (fd < 0) return std::string(name) + ": " + error;
            first_ = ::fdopen(fd, "wb");
            if (first_ == nullptr) {
                ::close(fd);
                return std::string(name) + ": cannot open for writing: " + std::strerror(errno);
            }
        }
        bool ok = png_image_write_to_stdio(&image, first_, 0, pixels, stride, nullptr) != 0;
        ok = std::fclose(first_) == 0 && ok;  // fclose flushes: its failure is a write failure
        first_ = nullptr;
        if (ok) return std::nullopt;
        std::string error = std::string(name) + ": cannot write PNG: " +
                            (image.message[0] != '\0' ? image.message : std::strerror(errno));
        png_image_free(&image);
        return error;
    }

    // Closes and removes the file start() created when nothing was written into it.
    void discard_first_file() noexcept {
        if (first_ == nullptr) return;
        std::fclose(first_);
        first_ = nullptr;
        ::unlink(first_name_.c_str());
    }

    std::string path_;
    std::uint64_t every_ = 0;
    std::size_t percent_d_ = std::string::npos;  // where "%d" is in path_ (every > 0 only)
    std::size_t frame_bytes_ = 0;
    std::uint64_t count_ = 0;         // frames received since start()
    SampleRef last_;                  // every=0: the frame to write at stop()
    std::vector<std::uint8_t> rgb_;   // I420 input: the picture converted for libpng
    detail::SwsPicture to_rgb_;       // I420 input: the conversion, made in start()
    std::vector<char> name_;          // file_name()'s output
    std::string first_name_;          // the file opened by start()
    std::FILE* first_ = nullptr;      // open from start() until the first write (or stop())
};

}  // namespace

NodeSpec pngsink_spec() {
    return {"pngsink", Node::Kind::render, "writes video frames as PNG pictures (the last one, or every Nth)",
            {{"path", "frame.png", "file to write; with every > 0, \"%d\" in it becomes the frame index"},
             {"every", "0", "0: write the last frame when the graph stops; N: write frames 0, N, 2N..."}},
            factory<PngSink>()};
}

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
#pragma once

// The YUV4MPEG2 stream-header parser behind `y4msrc`, public for tests and fuzzing.

#include <sluice/engine/format.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::wire {

struct Y4mHeader {
    int width = 0;
    int height = 0;
    engine::Fraction fps{};
    std::size_t bytes = 0;  // length of the header line with its '\n': where the first FRAME starts
};

struct Y4mParseError {
    std::uint64_t offset = 0;  // byte of the file where it goes wrong
    std::string what;
};

// Parses the stream header at the start of `head` (the first bytes of the file; `whole_file`
// when the file holds no more). Only 8-bit 4:2:0 streams are accepted. Reads only within `head`.
// Any thread; allocates only the error text.
std::optional<Y4mParseError> parse_y4m_header(std::string_view head, bool whole_file, Y4mHeader& out);

// The longest stream header line read, '\n' included.
inline constexpr std::size_t kY4mMaxHeader = 4096;

// The C (and X) parameters of the header for pictures of `f`: "C420jpeg" for I420, "C422",
// "C444", "C420p10 XYSCSS=420P10"...; nullptr for a format Y4M cannot carry. Never allocates.
const char* y4m_colour_space(engine::PixelFormat f) noexcept;
// The stream header line for `format` (one y4m_colour_space() knows), '\n' included. Allocates.
std::string y4m_header_line(const engine::MediaFormat& format);

}  // namespace sluice::wire

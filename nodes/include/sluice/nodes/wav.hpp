// SPDX-License-Identifier: MIT
#pragma once

// The WAV header parser behind `wavsrc`, public for tests and fuzzing.

#include <sluice/allocators/result.hpp>
#include <sluice/engine/format.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace sluice::nodes {

struct WavInfo {
    std::uint32_t rate = 0;
    std::uint32_t channels = 0;
    engine::SampleFormat format = engine::SampleFormat::any;
    std::uint64_t data_offset = 0;  // where the samples start
    std::uint64_t data_bytes = 0;   // whole frames only
};

// Parses the start of a WAV file (`file`, the first bytes read; `file_size`, its full size).
// On failure returns Errc::corrupt_file and sets `error` to "byte N: what is wrong". Reads only
// within `file`. Any thread; allocates only the error text.
Result<WavInfo> parse_wav_header(std::span<const unsigned char> file, std::uint64_t file_size, std::string& error);

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
#pragma once

// WAV headers: the parser behind `wavsrc` and the writer behind `wavsink`. Internal to Sluice's
// libraries (not installed); tests and fuzzers link it.

#include <sluice/allocators/result.hpp>
#include <sluice/engine/status.hpp>
#include <sluice/engine/format.hpp>

#include <cstdint>
#include <span>
#include <string>

namespace sluice::wire {

struct WavInfo {
    std::uint32_t rate = 0;
    std::uint32_t channels = 0;
    engine::SampleFormat format = engine::SampleFormat::any;
    std::uint64_t data_offset = 0;  // where the samples start
    std::uint64_t data_bytes = 0;   // whole frames only
};

// Parses the start of a WAV file (`file`, the first bytes read; `file_size`, its full size).
// On failure returns engine::GraphErrc::corrupt_file and sets `error` to "byte N: what is wrong". Reads only
// within `file`. Any thread; allocates only the error text.
Result<WavInfo> parse_wav_header(std::span<const unsigned char> file, std::uint64_t file_size, std::string& error);

// The header `wavsink` writes: RIFF, a 36-byte 'JUNK' chunk after "WAVE" (ignored by every
// reader), 'fmt ' (PCM, or IEEE float with a 'fact' chunk), 'data'. A recording past what the
// 32-bit RIFF sizes can say (4 GiB) becomes RF64 (EBU Tech 3306) once `final`: "RF64", sizes of
// 0xFFFFFFFF, the JUNK chunk turned into 'ds64' with the 64-bit sizes; before that its sizes read
// "to the end of the file" (0xFFFFFFFF), as streaming writers leave them. ffmpeg and sox read
// both. Returns the bytes written (wav_header_bytes()); `out` holds kMaxWavHeader. Never
// allocates.
inline constexpr std::size_t kMaxWavHeader = 12 + 36 + 26 + 12 + 8;
std::size_t wav_header_bytes(const engine::MediaFormat& format) noexcept;
std::size_t write_wav_header(const engine::MediaFormat& format, std::uint64_t data_bytes, bool final,
                             unsigned char* out) noexcept;

}  // namespace sluice::wire

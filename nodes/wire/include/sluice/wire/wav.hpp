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
    std::uint32_t channel_mask = 0;  // WAVE_FORMAT_EXTENSIBLE's speaker positions; 0: none given
    bool rf64 = false;               // an RF64 file (EBU Tech 3306): sizes from its 'ds64' chunk
    std::uint64_t data_offset = 0;  // where the samples start
    std::uint64_t data_bytes = 0;   // whole frames only
};

// Parses the start of a WAV file (`file`, the first bytes read; `file_size`, its full size):
// RIFF or RF64; PCM of 16, 24 (packed) or 32 bits, or 32-bit float, as a plain 'fmt ' chunk or
// WAVE_FORMAT_EXTENSIBLE (subformat PCM or IEEE float; any channel mask).
// On failure returns engine::GraphErrc::corrupt_file and sets `error` to "byte N: what is wrong". Reads only
// within `file`. Any thread; allocates only the error text.
Result<WavInfo> parse_wav_header(std::span<const unsigned char> file, std::uint64_t file_size, std::string& error);

// When `wavsink` writes RF64 (EBU Tech 3306), as ffmpeg's wav muxer's `-rf64` option.
enum class Rf64 : std::uint8_t {
    when_needed,  // RIFF, turned into RF64 at the end if the data passed what RIFF can say
    always,       // RF64 from the first header
    never,        // RIFF only: the writer must stop at max_riff_data_bytes()
};

// The header `wavsink` writes: RIFF, a 36-byte 'JUNK' chunk after "WAVE" (ignored by every
// reader), 'fmt ', ['fact'], 'data'. 'fmt ' is plain PCM for 16-bit mono and stereo, IEEE float
// (with 'fact') for f32 in mono and stereo, and WAVE_FORMAT_EXTENSIBLE (a channel mask, the
// subformat GUID) for more channels or more than 16 integer bits, as ffmpeg writes them.
// A recording past what the 32-bit RIFF sizes can say (4 GiB) becomes RF64 once `final`
// (Rf64::when_needed): "RF64", sizes of 0xFFFFFFFF, the JUNK chunk turned into 'ds64' with the
// 64-bit sizes; before that its sizes read "to the end of the file" (0xFFFFFFFF), as streaming
// writers leave them. Rf64::always writes that form from the start. ffmpeg and sox read both.
// Returns the bytes written (wav_header_bytes()); `out` holds kMaxWavHeader. Never allocates.
inline constexpr std::size_t kMaxWavHeader = 12 + 36 + 8 + 40 + 12 + 8;
std::size_t wav_header_bytes(const engine::MediaFormat& format) noexcept;
std::size_t write_wav_header(const engine::MediaFormat& format, std::uint64_t data_bytes, bool final,
                             unsigned char* out, Rf64 rf64 = Rf64::when_needed) noexcept;

// The most data (whole frames, RIFF's padding byte included) a plain RIFF file of `format`
// can declare: past it only RF64 can say the sizes. Never allocates.
std::uint64_t max_riff_data_bytes(const engine::MediaFormat& format) noexcept;

}  // namespace sluice::wire

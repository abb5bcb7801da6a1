// SPDX-License-Identifier: MIT
// libFuzzer target: the WAV header parser. Whatever it accepts must lie within the input.
#include <sluice/wire/wav.hpp>

#include <cstdint>
#include <cstdlib>
#include <string>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string error;
    auto info = sluice::wire::parse_wav_header({data, size}, size, error);
    if (info && info->data_offset + info->data_bytes > size) std::abort();  // accepted a lie
    if (!info && error.rfind("byte ", 0) != 0) std::abort();                 // an error without its offset
    return 0;
}

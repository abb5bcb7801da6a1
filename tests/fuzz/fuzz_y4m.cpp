// SPDX-License-Identifier: MIT
// libFuzzer target: the YUV4MPEG2 header parser.
#include <sluice/wire/y4m.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    sluice::wire::Y4mHeader header;
    if (!sluice::wire::parse_y4m_header(text, true, header)) {
        // Accepted: the sizes are sane and the header line lies within the input.
        if (header.width < 1 || header.height < 1 || header.bytes > size || header.fps.num < 1 || header.fps.den < 1)
            std::abort();
    }
    return 0;
}

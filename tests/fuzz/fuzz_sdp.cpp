// SPDX-License-Identifier: MIT
// libFuzzer target: the SDP parser (rtpsrc/rtpvrawsrc sdp=FILE), and the writer on what it accepts.
#include <sluice/wire/sdp.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    sluice::wire::SdpStream stream;
    if (sluice::wire::parse_sdp(text, stream)) return 0;  // refused, with a message
    // Accepted: the values are in range, and the description written from them reads back the same.
    if (stream.port < 1 || stream.clock_rate < 1 || stream.channels < 1 || stream.channels > 64 || stream.payload_type < 0 ||
        stream.payload_type > 127)
        std::abort();
    if (stream.address.find_first_of("\r\n") != std::string::npos || stream.encoding.find_first_of("\r\n /") != std::string::npos)
        return 0;  // not something a writer is asked to write
    sluice::wire::SdpStream again;
    if (sluice::wire::parse_sdp(sluice::wire::write_sdp(stream), again)) return 0;
    if (again.port != stream.port || again.payload_type != stream.payload_type || again.clock_rate != stream.clock_rate ||
        again.ttl != stream.ttl)
        std::abort();
    return 0;
}

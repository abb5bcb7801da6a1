// SPDX-License-Identifier: MIT
// libFuzzer target: the RTP packet parser. The payload it returns must lie within the datagram.
#include <sluice/nodes/rtp.hpp>

#include <cstdint>
#include <cstdlib>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (auto p = sluice::nodes::parse_rtp_packet({data, size}))
        if (p->payload.data() < data || p->payload.data() + p->payload.size() > data + size) std::abort();
    return 0;
}

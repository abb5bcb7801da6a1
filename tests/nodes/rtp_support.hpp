// SPDX-License-Identifier: MIT
#pragma once

// Shared by the RTP tests: ports, a node's extra statistics, and raw datagrams.

#include <sluice/sluice.hpp>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace test {

// A port unlikely to collide with a parallel test.
inline int random_port() {
    static std::mt19937 rng(std::random_device{}());
    return 20000 + int(rng() % 20000);
}

// One of a node's extra statistics (packets_lost...); all ones when the node has no such entry.
inline std::uint64_t extra(const sluice::engine::Graph& g, const std::string& node, const std::string& key) {
    for (const auto& [name, values] : g.stats().node_extras)
        if (name == node)
            for (const auto& [k, v] : values)
                if (k == key) return v;
    return ~std::uint64_t(0);
}

inline void send_datagram(int port, const std::vector<std::uint8_t>& bytes) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(std::uint16_t(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(fd);
}

}  // namespace test

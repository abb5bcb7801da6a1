// SPDX-License-Identifier: MIT
#pragma once

// The UDP ends the RTP nodes share: a sender, and a receiver whose wait a stop or a flush cuts
// short. Both use Asio on their own io_context, which only the node's streaming thread runs.

#include <sluice/engine/status.hpp>
#include <sluice/nodes/registry.hpp>

#include <asio/io_context.hpp>
#include <asio/ip/udp.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace sluice::nodes::detail {

// The properties every sender (host, port) and every receiver (port, address) takes.
// Network sinks follow the graph's clock by default, as GStreamer's udpsink does: a sample leaves
// at its time (sync=false: as fast as the graph makes them, for tests and file transfers).
inline std::vector<PropertySpec> udp_sender_properties() {
    return {{"host", "127.0.0.1", "destination IP address, or a multicast group"},
            {"port", "5004", "destination UDP port"},
            {"sync", "true", "send each sample at its time on the graph's clock (false: as fast as they come)"},
            {"ttl", "1", "multicast: how many routers a packet may cross (1: this link only)"},
            {"multicast-iface", "", "multicast: the network interface packets leave by (default: the route's)"}};
}
inline std::vector<PropertySpec> udp_receiver_properties() {
    return {{"port", "5004", "UDP port to listen on"},
            {"address", "0.0.0.0", "local address to bind, or a multicast group to join"},
            {"multicast-iface", "", "multicast: the network interface to join the group on (default: the route's)"},
            {"source", "", "source-specific multicast: only this sender's packets (address= is the group)"}};
}

// Multicast settings: a sender's hops and interface, a receiver's interface and source.
struct Multicast {
    int ttl = 1;
    std::string iface;   // empty: the kernel's choice by route
    std::string source;  // receivers: source-specific multicast (RFC 4607) when not empty
};
inline Multicast read_sender_multicast(PropertyReader& r) {
    Multicast m;
    m.ttl = int(r.integer("ttl", 0, 255));
    m.iface = r.text("multicast-iface");
    return m;
}
inline Multicast read_receiver_multicast(PropertyReader& r) {
    Multicast m;
    m.iface = r.text("multicast-iface");
    m.source = r.text("source");
    return m;
}
// Whether `host` is an IP multicast address (false for anything else, names included).
bool is_multicast(const std::string& host) noexcept;

// Largest UDP payload: the size of the buffers a receiver keeps.
inline constexpr std::size_t kMaxDatagram = 65536;

class UdpSender {
public:
    // Control thread (start). Errors name the host, the interface or the socket. A multicast
    // host gets `multicast`'s hops and interface, and loops back to this machine's receivers.
    Status open(const std::string& host, std::uint16_t port, const Multicast& multicast = {});
    void close() noexcept;
    // Streaming thread. A datagram the network refuses (nobody listening, a full queue) counts as
    // lost like any other, not as an error; only a dead socket is one.
    std::error_code send(std::span<const std::uint8_t> datagram) noexcept;
    // Streaming thread: a datagram that came back to the socket's own port (RTCP's receiver
    // reports), without waiting: its size, or nullopt when none is there. Allocates nothing.
    std::optional<std::size_t> try_receive(std::span<std::uint8_t> into) noexcept;

private:
    asio::io_context io_;
    asio::ip::udp::socket socket_{io_};
    asio::ip::udp::endpoint endpoint_;
};

class UdpReceiver {
public:
    UdpReceiver();
    // Control thread (start). No SO_REUSEADDR for unicast: a port another receiver holds is an
    // error, not a shared port. A multicast `address` is joined (on `multicast.iface`, from
    // `multicast.source` only when given) with the port shared, so that several receivers on one
    // machine each get every packet of the group, as GStreamer's udpsrc does.
    Status open(const std::string& address, std::uint16_t port, const Multicast& multicast = {});
    void close() noexcept;

    // Streaming thread: waits up to `wait` for one datagram (which may be empty: a zero-byte
    // datagram is still one). nullopt on time-out or unblock(). The span stays valid until the
    // next call. Allocates nothing.
    std::optional<std::span<const std::uint8_t>> receive(std::chrono::milliseconds wait);

    // Any thread (stop, flush): cuts a pending receive short.
    void unblock() noexcept { io_.stop(); }

    // Streaming thread, without waiting (RTCP beside a stream): one datagram if one is there,
    // valid until the next call; who sent it; and a datagram back to someone. Allocate nothing.
    std::optional<std::span<const std::uint8_t>> try_receive() noexcept;
    const asio::ip::udp::endpoint& last_sender() const noexcept { return sender_; }
    std::error_code send_to(std::span<const std::uint8_t> datagram, const asio::ip::udp::endpoint& to) noexcept;

private:
    asio::io_context io_;
    asio::ip::udp::socket socket_{io_};
    asio::ip::udp::endpoint sender_;
    std::vector<std::uint8_t> datagram_;
    bool received_ = false, done_ = false;  // the pending receive's outcome
    std::size_t received_bytes_ = 0;
};

// What an RTP receiver counts, as the nodes' extra statistics. Written by the streaming thread,
// read by stats() on any thread.
// Every datagram lands in exactly one of received, malformed, foreign, duplicate and filtered;
// late and out_of_sequence are the received ones that arrived too late to play or were a lone
// far jump (RFC 3550 A.1) never confirmed. lost counts packets never received (given up on);
// streams counts the senders followed (1, plus one per restart).
struct PacketCounters {
    std::atomic<std::uint64_t> received{0}, lost{0}, late{0}, malformed{0}, foreign{0}, duplicates{0};
    std::atomic<std::uint64_t> filtered{0};         // another payload type than the one asked for
    std::atomic<std::uint64_t> out_of_sequence{0};  // a lone far jump never confirmed (RFC 3550 A.1)
    std::atomic<std::uint64_t> streams{0};
    std::atomic<std::uint64_t> synced{0};  // times a sender report moved the running-time line (RTCP sync)

    // relaxed, all: statistics, each a snapshot.
    std::vector<std::pair<std::string, std::uint64_t>> snapshot() const {
        return {{"packets_received", received.load(std::memory_order_relaxed)},
                {"packets_lost", lost.load(std::memory_order_relaxed)},
                {"packets_late", late.load(std::memory_order_relaxed)},
                {"packets_malformed", malformed.load(std::memory_order_relaxed)},
                {"packets_foreign", foreign.load(std::memory_order_relaxed)},
                {"packets_duplicate", duplicates.load(std::memory_order_relaxed)},
                {"packets_filtered", filtered.load(std::memory_order_relaxed)},
                {"packets_out_of_sequence", out_of_sequence.load(std::memory_order_relaxed)},
                {"streams", streams.load(std::memory_order_relaxed)},
                {"rtcp_synced", synced.load(std::memory_order_relaxed)}};
    }
};

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
#include "net/udp.hpp"

#include <sluice/allocators/result.hpp>

#include <asio/ip/multicast.hpp>

#include <cerrno>
#include <cstring>

#include <net/if.h>
#include <sys/socket.h>
#include <netinet/in.h>

namespace sluice::nodes::detail {

bool is_multicast(const std::string& host) noexcept {
    std::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    return !ec && address.is_multicast();
}

namespace {

// The index of network interface `name`, or an error naming it.
Status interface_index(const std::string& name, unsigned& index) {
    index = ::if_nametoindex(name.c_str());
    if (index == 0)
        return {engine::GraphErrc::invalid_argument, "multicast-iface='" + name + "': no such network interface (ip link lists them)"};
    return {};
}

Status socket_error(const std::string& what, int err) {
    return {engine::GraphErrc::io_error, what + ": " + std::strerror(err)};
}

}  // namespace

Status UdpSender::open(const std::string& host, std::uint16_t port, const Multicast& multicast) {
    std::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return {engine::GraphErrc::invalid_argument, "host '" + host + "' is not an IP address: " + ec.message()};
    if (!address.is_multicast() && !multicast.iface.empty())
        return {engine::GraphErrc::invalid_argument, "multicast-iface= is for a multicast host (" + host + " is not one)"};
    endpoint_ = asio::ip::udp::endpoint(address, port);
    socket_.close(ec);
    socket_.open(endpoint_.protocol(), ec);
    if (ec) return {engine::GraphErrc::io_error, "cannot open a UDP socket: " + ec.message()};
    if (!address.is_multicast()) return {};
    socket_.set_option(asio::ip::multicast::hops(multicast.ttl), ec);
    if (!ec) socket_.set_option(asio::ip::multicast::enable_loopback(true), ec);
    if (ec) return {engine::GraphErrc::io_error, "cannot set multicast hops on the UDP socket: " + ec.message()};
    if (!multicast.iface.empty()) {
        unsigned index = 0;
        if (Status st = interface_index(multicast.iface, index); !st) return st;
        const int fd = socket_.native_handle();
        int r = 0;
        if (address.is_v4()) {
            ip_mreqn request{};
            request.imr_ifindex = int(index);
            r = ::setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &request, sizeof request);
        } else {
            const int i = int(index);
            r = ::setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &i, sizeof i);
        }
        if (r != 0) return socket_error("cannot send multicast by interface " + multicast.iface, errno);
    }
    return {};
}

void UdpSender::close() noexcept {
    std::error_code ec;
    socket_.close(ec);
}

std::error_code UdpSender::send(std::span<const std::uint8_t> datagram) noexcept {
    std::error_code ec;
    socket_.send_to(asio::buffer(datagram.data(), datagram.size()), endpoint_, 0, ec);
    if (ec == asio::error::connection_refused || ec == asio::error::no_buffer_space) return {};
    return ec;
}

std::optional<std::size_t> UdpSender::try_receive(std::span<std::uint8_t> into) noexcept {
    if (!socket_.is_open()) return std::nullopt;
    const ssize_t n = ::recv(socket_.native_handle(), into.data(), into.size(), MSG_DONTWAIT);
    if (n < 0) return std::nullopt;
    return std::size_t(n);
}

UdpReceiver::UdpReceiver() : datagram_(kMaxDatagram) {}

Status UdpReceiver::open(const std::string& address_text, std::uint16_t port, const Multicast& multicast) {
    std::error_code ec;
    socket_.close(ec);
    const auto address = asio::ip::make_address(address_text, ec);
    if (ec) return {engine::GraphErrc::invalid_argument, "address '" + address_text + "' is not an IP address: " + ec.message()};
    const bool group = address.is_multicast();
    if (!group && (!multicast.iface.empty() || !multicast.source.empty()))
        return {engine::GraphErrc::invalid_argument, std::string(multicast.source.empty() ? "multicast-iface=" : "source=") +
                                                         " is for a multicast address= (" + address_text + " is not one)"};
    asio::ip::address source;
    if (!multicast.source.empty()) {
        source = asio::ip::make_address(multicast.source, ec);
        if (ec || source.is_v6() != address.is_v6())
            return {engine::GraphErrc::invalid_argument, "source='" + multicast.source + "' is not an IP address of the group's family"};
    }
    unsigned index = 0;
    if (!multicast.iface.empty())
        if (Status st = interface_index(multicast.iface, index); !st) return st;
    socket_.open(address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
    // A big receive queue rides out a burst (a video frame is many packets) while the streaming
    // thread is busy pushing; the kernel caps it at net.core.rmem_max.
    if (!ec) socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
    if (!ec && group) socket_.set_option(asio::socket_base::reuse_address(true), ec);
    // Bound to the group itself, the socket takes that group's packets only.
    if (!ec) socket_.bind(asio::ip::udp::endpoint(address, port), ec);
    if (ec) return {engine::GraphErrc::io_error, "cannot listen on UDP port " + std::to_string(port) + ": " + ec.message()};
    if (group) {
        // The protocol-independent joins (RFC 3678): any-source, or source-specific.
        auto to_storage = [port](const asio::ip::address& a, sockaddr_storage& out) {
            const asio::ip::udp::endpoint e(a, port);
            std::memcpy(&out, e.data(), e.size());
        };
        const int level = address.is_v6() ? IPPROTO_IPV6 : IPPROTO_IP;
        int r = 0;
        if (multicast.source.empty()) {
            group_req request{};
            request.gr_interface = index;
            to_storage(address, request.gr_group);
            r = ::setsockopt(socket_.native_handle(), level, MCAST_JOIN_GROUP, &request, sizeof request);
        } else {
            group_source_req request{};
            request.gsr_interface = index;
            to_storage(address, request.gsr_group);
            to_storage(source, request.gsr_source);
            r = ::setsockopt(socket_.native_handle(), level, MCAST_JOIN_SOURCE_GROUP, &request, sizeof request);
        }
        if (r != 0) {
            const int err = errno;
            socket_.close(ec);
            return socket_error("cannot join multicast group " + address_text +
                                    (multicast.source.empty() ? "" : " from " + multicast.source) +
                                    (multicast.iface.empty() ? "" : " on " + multicast.iface),
                                err);
        }
    }
    io_.restart();
    return {};
}

void UdpReceiver::close() noexcept {
    std::error_code ec;
    socket_.close(ec);
}

// The receive is an Asio operation on our own io_context, run by this (the streaming) thread;
// stop and flush cut the wait short through unblock(). The handler has always run on return,
// so no operation outlives the call.
std::optional<std::span<const std::uint8_t>> UdpReceiver::receive(std::chrono::milliseconds wait) {
    received_ = false;
    done_ = false;
    socket_.async_receive_from(asio::buffer(datagram_), sender_, [this](std::error_code ec, std::size_t n) {
        received_ = !ec;
        received_bytes_ = n;
        done_ = true;
    });
    io_.restart();
    io_.run_for(wait);
    if (!done_) {  // timed out or unblocked: cancel, then let the handler run
        std::error_code ec;
        socket_.cancel(ec);
        while (!done_) {
            io_.restart();
            io_.run_one();
        }
    }
    if (!received_) return std::nullopt;
    return std::span<const std::uint8_t>(datagram_.data(), received_bytes_);
}

std::optional<std::span<const std::uint8_t>> UdpReceiver::try_receive() noexcept {
    if (!socket_.is_open()) return std::nullopt;
    socklen_t length = socklen_t(sender_.capacity());
    const ssize_t n = ::recvfrom(socket_.native_handle(), datagram_.data(), datagram_.size(), MSG_DONTWAIT,
                                 sender_.data(), &length);
    if (n < 0) return std::nullopt;
    sender_.resize(length);
    return std::span<const std::uint8_t>(datagram_.data(), std::size_t(n));
}

std::error_code UdpReceiver::send_to(std::span<const std::uint8_t> datagram, const asio::ip::udp::endpoint& to) noexcept {
    std::error_code ec;
    socket_.send_to(asio::buffer(datagram.data(), datagram.size()), to, 0, ec);
    if (ec == asio::error::connection_refused || ec == asio::error::no_buffer_space) return {};
    return ec;
}

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
#include "net/udp.hpp"

#include <sluice/allocators/result.hpp>

namespace sluice::nodes::detail {

Status UdpSender::open(const std::string& host, std::uint16_t port) {
    std::error_code ec;
    const auto address = asio::ip::make_address(host, ec);
    if (ec) return {engine::GraphErrc::invalid_argument, "host '" + host + "' is not an IP address: " + ec.message()};
    endpoint_ = asio::ip::udp::endpoint(address, port);
    socket_.close(ec);
    socket_.open(endpoint_.protocol(), ec);
    if (ec) return {engine::GraphErrc::io_error, "cannot open a UDP socket: " + ec.message()};
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

UdpReceiver::UdpReceiver() : datagram_(kMaxDatagram) {}

Status UdpReceiver::open(const std::string& address_text, std::uint16_t port) {
    std::error_code ec;
    socket_.close(ec);
    const auto address = asio::ip::make_address(address_text, ec);
    if (ec) return {engine::GraphErrc::invalid_argument, "address '" + address_text + "' is not an IP address: " + ec.message()};
    socket_.open(address.is_v6() ? asio::ip::udp::v6() : asio::ip::udp::v4(), ec);
    // A big receive queue rides out a burst (a video frame is many packets) while the streaming
    // thread is busy pushing; the kernel caps it at net.core.rmem_max.
    if (!ec) socket_.set_option(asio::socket_base::receive_buffer_size(4 << 20), ec);
    if (!ec) socket_.bind(asio::ip::udp::endpoint(address, port), ec);
    if (ec) return {engine::GraphErrc::io_error, "cannot listen on UDP port " + std::to_string(port) + ": " + ec.message()};
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

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
#include "net/rtcp_session.hpp"

#include "core/common.hpp"

#include <cmath>
#include <ctime>
#include <random>

#include <unistd.h>

namespace sluice::nodes::detail {

namespace {

constexpr std::int64_t kReportIntervalNs = 1'000'000'000;
constexpr std::int64_t kReadIntervalNs = 5'000'000;

std::int64_t wall_now_ns() noexcept {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// RFC 3550 6.5.1: CNAME is user@host; ours names the program and the machine.
std::string make_cname() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') return "sluice@localhost";
    return std::string("sluice@") + host;
}

// Relaxed stores and loads of the statistics: each is a value on its own.
void set(std::atomic<std::uint64_t>& a, std::uint64_t v) noexcept { a.store(v, std::memory_order_relaxed); }
void bump(std::atomic<std::uint64_t>& a) noexcept { a.fetch_add(1, std::memory_order_relaxed); }
std::uint64_t get(const std::atomic<std::uint64_t>& a) noexcept { return a.load(std::memory_order_relaxed); }

}  // namespace

Status RtcpSender::open(const std::string& host, std::uint16_t port, std::int64_t rtcp_port, const Multicast& multicast) {
    std::uint16_t to = 0;
    if (Status st = rtcp_port_of(port, rtcp_port, to); !st) return st;
    if (Status st = socket_.open(host, to, multicast); !st) return st;
    cname_ = make_cname();
    packets_ = octets_ = 0;
    next_report_ns_ = next_read_ns_ = 0;  // the first SR goes with the first packet
    open_ = true;
    return {};
}

void RtcpSender::close() noexcept {
    socket_.close();
    open_ = false;
}

bool RtcpSender::sent(std::uint32_t ssrc, std::size_t payload_bytes) noexcept {
    if (!open_) return false;
    ssrc_ = ssrc;
    ++packets_;
    octets_ += std::uint32_t(payload_bytes);
    const std::int64_t now = steady_now_ns();
    // RRs are read within 5 ms of coming (the round trip counts the time one waits unread).
    if (now >= next_read_ns_) {
        next_read_ns_ = now + kReadIntervalNs;
        read_reports();
    }
    if (now < next_report_ns_) return false;
    next_report_ns_ = now + kReportIntervalNs;
    return true;
}

void RtcpSender::goodbye(std::uint32_t rtp_time_now) noexcept {
    if (!open_ || packets_ == 0) return;
    read_reports();
    send_report(rtp_time_now, true);
}

void RtcpSender::send_report(std::uint32_t rtp_time_now, bool bye) noexcept {
    const wire::RtcpSenderInfo info{wire::ntp_of_unix_ns(wall_now_ns()), rtp_time_now, packets_, octets_};
    const std::size_t n = wire::write_rtcp(buffer_, ssrc_, &info, {}, cname_, bye);
    if (n != 0 && !socket_.send({buffer_.data(), n})) bump(sr_sent_);
}

void RtcpSender::read_reports() noexcept {
    while (const auto n = socket_.try_receive(buffer_)) {
        const auto report = wire::parse_rtcp({buffer_.data(), *n});
        if (!report) continue;
        for (std::size_t i = 0; i < report->block_count; ++i) {
            const wire::RtcpReportBlock& b = report->blocks[i];
            if (b.ssrc != ssrc_) continue;
            bump(rr_received_);
            set(rr_lost_, std::uint64_t(std::max<std::int32_t>(b.cumulative_lost, 0)));
            set(rr_fraction_lost_, b.fraction_lost);
            set(rr_jitter_, b.jitter);
            // RFC 3550 6.4.1: round trip = now - LSR - DLSR, all in 1/65536 s.
            if (b.last_sr != 0) {
                const std::uint32_t now = wire::ntp_middle(wire::ntp_of_unix_ns(wall_now_ns()));
                const std::uint32_t rtt = now - b.last_sr - b.delay_since_last_sr;
                if (rtt < 0x80000000u) set(rtt_us_, std::uint64_t(rtt) * 1'000'000 / 65536);
            }
        }
    }
}

std::vector<std::pair<std::string, std::uint64_t>> RtcpSender::stats() const {
    return {{"rtcp_sr_sent", get(sr_sent_)},        {"rtcp_rr_received", get(rr_received_)},
            {"rtcp_rr_packets_lost", get(rr_lost_)}, {"rtcp_rr_fraction_lost", get(rr_fraction_lost_)},
            {"rtcp_rr_jitter", get(rr_jitter_)},      {"rtcp_round_trip_us", get(rtt_us_)}};
}

Status RtcpReceiver::open(const std::string& address, std::uint16_t port, std::int64_t rtcp_port,
                          const Multicast& multicast) {
    std::uint16_t at = 0;
    if (Status st = rtcp_port_of(port, rtcp_port, at); !st) return st;
    if (Status st = socket_.open(address, at, multicast); !st) return st;
    cname_ = make_cname();
    own_ssrc_ = std::random_device{}();
    have_source_ = have_sr_ = have_transit_ = false;
    jitter_ = 0;
    next_report_ns_ = next_read_ns_ = 0;
    open_ = true;
    return {};
}

void RtcpReceiver::close() noexcept {
    socket_.close();
    open_ = false;
}

void RtcpReceiver::received(const wire::RtpPacket& p, std::int64_t arrival_ns, int clock_rate) noexcept {
    if (!open_) return;
    if (!have_source_ || p.ssrc != ssrc_) {  // a new source: its counts start afresh
        have_source_ = true;
        ssrc_ = p.ssrc;
        max_sequence_ = p.sequence;
        base_sequence_ = p.sequence;
        cycles_ = received_ = expected_prior_ = received_prior_ = 0;
        have_transit_ = false;
        jitter_ = 0;
        have_sr_ = have_sr_ && sr_ssrc_ == p.ssrc;  // an SR may come before the first packet
    }
    const std::uint16_t ahead = std::uint16_t(p.sequence - max_sequence_);
    if (ahead < 0x8000) {  // in order, or a jump ahead
        if (p.sequence < max_sequence_) cycles_ += 65536;  // wrapped
        max_sequence_ = p.sequence;
    }
    ++received_;
    // A.8: transit = arrival - timestamp, in RTP ticks; jitter follows |D| with gain 1/16.
    const auto arrival_ticks = std::uint32_t(static_cast<__int128>(arrival_ns) * clock_rate / 1'000'000'000);
    const std::uint32_t transit = arrival_ticks - p.timestamp;
    if (have_transit_) {
        const double d = std::abs(double(std::int32_t(transit - last_transit_)));
        jitter_ += (d - jitter_) / 16.0;
        set(jitter_ticks_, std::uint64_t(jitter_));
    }
    last_transit_ = transit;
    have_transit_ = true;
}

std::optional<RtcpReceiver::SenderReport> RtcpReceiver::poll(std::int64_t now_ns) noexcept {
    if (!open_) return std::nullopt;
    std::optional<SenderReport> fresh;
    if (now_ns < next_read_ns_) return fresh;
    next_read_ns_ = now_ns + kReadIntervalNs;
    while (const auto datagram = socket_.try_receive()) {
        const auto report = wire::parse_rtcp(*datagram);
        if (!report || !report->sender) continue;
        if (have_source_ && report->ssrc != ssrc_) continue;  // another sender's
        sr_ = *report->sender;
        sr_ssrc_ = report->ssrc;
        sr_arrival_ns_ = now_ns;
        sr_from_ = socket_.last_sender();
        have_sr_ = true;
        fresh = SenderReport{sr_ssrc_, sr_};
        bump(sr_received_);
    }
    if (now_ns >= next_report_ns_ && have_sr_ && have_source_ && sr_ssrc_ == ssrc_) {
        next_report_ns_ = now_ns + kReportIntervalNs;
        send_report(now_ns);
    }
    return fresh;
}

void RtcpReceiver::send_report(std::int64_t now_ns) noexcept {
    // A.3: expected from the extended highest and the first sequence number; loss since the
    // last report as a fraction of what was expected in that time.
    const std::uint32_t extended = cycles_ + max_sequence_;
    const std::uint32_t expected = extended - base_sequence_ + 1;
    const std::uint32_t expected_interval = expected - expected_prior_;
    const std::uint32_t received_interval = received_ - received_prior_;
    expected_prior_ = expected;
    received_prior_ = received_;
    const std::int64_t lost_interval = std::int64_t(expected_interval) - std::int64_t(received_interval);
    wire::RtcpReportBlock b;
    b.ssrc = ssrc_;
    b.fraction_lost = expected_interval == 0 || lost_interval <= 0 ? 0 : std::uint8_t((lost_interval << 8) / expected_interval);
    b.cumulative_lost = std::int32_t(std::int64_t(expected) - std::int64_t(received_));
    b.highest_sequence = extended;
    b.jitter = std::uint32_t(jitter_);
    b.last_sr = wire::ntp_middle(sr_.ntp);
    b.delay_since_last_sr = std::uint32_t((now_ns - sr_arrival_ns_) * 65536 / 1'000'000'000);
    const std::size_t n = wire::write_rtcp(buffer_, own_ssrc_, nullptr, {&b, 1}, cname_);
    if (n != 0 && !socket_.send_to({buffer_.data(), n}, sr_from_)) bump(rr_sent_);
}

std::vector<std::pair<std::string, std::uint64_t>> RtcpReceiver::stats() const {
    return {{"rtcp_sr_received", get(sr_received_)}, {"rtcp_rr_sent", get(rr_sent_)}, {"jitter", get(jitter_ticks_)}};
}

}  // namespace sluice::nodes::detail

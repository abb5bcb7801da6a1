// SPDX-License-Identifier: MIT
#include "net/rtp_video_receiver.hpp"

#include "video/video_node.hpp"

#include <algorithm>
#include <utility>
#include <cstring>

namespace sluice::nodes::detail {

namespace {
std::uint16_t read16(const std::uint8_t* p) noexcept { return std::uint16_t(p[0] << 8 | p[1]); }
}  // namespace

RtpVideoReceiver::RtpVideoReceiver(const Config& config)
    : config_(config), rows_filled_(std::size_t(config.layout.rows()), 0), restart_datagram_(kMaxDatagram) {}

void RtpVideoReceiver::reset() noexcept {
    picture_ = nullptr;
    pending_start_ = restart_ = restart_candidate_ = replay_ = false;
    have_stream_ = have_sequence_ = have_emitted_ = have_candidate_ = anchored_ = resynced_ = behind_ = synced_ = false;
    sync_ = SenderSync{};
    received_ = lost_base_ = 0;
    last_packet_ns_ = 0;
    last_stop_ = kNoTime;
    seen_.fill(0);
}

void RtpVideoReceiver::start_stream(std::uint32_t ssrc) noexcept {
    // relaxed: statistics.
    lost_base_ = counters_.lost.load(std::memory_order_relaxed);
    have_stream_ = true;
    ssrc_ = ssrc;
    have_sequence_ = have_candidate_ = false;
    received_ = 0;
    seen_.fill(0);
    restart_ = have_emitted_;
    if (sync_.ssrc != ssrc) sync_ = SenderSync{};  // another sender's reports
    synced_ = false;
    counters_.streams.fetch_add(1, std::memory_order_relaxed);
}

RtpVideoReceiver::Action RtpVideoReceiver::offer(std::span<const std::uint8_t> datagram, std::int64_t arrival_ns,
                                                 MediaTime running_ns) noexcept {
    // relaxed everywhere below: statistics.
    const auto packet = wire::parse_rtp_packet(datagram);
    const bool ours = packet && (config_.payload_type < 0 || packet->payload_type == config_.payload_type);
    if (!packet || (ours && (packet->payload.size() < 2 ||
                             !wire::unpack_raw_video(config_.layout, packet->payload, nullptr, {})))) {
        counters_.malformed.fetch_add(1, std::memory_order_relaxed);
        return Action::none;
    }
    if (!ours) {
        counters_.filtered.fetch_add(1, std::memory_order_relaxed);
        return Action::none;
    }
    if (!have_stream_) {
        start_stream(packet->ssrc);
    } else if (packet->ssrc != ssrc_) {
        // A restarted sender: the old one has been silent for the latency and its last picture
        // has gone out (a picture still assembling goes out first).
        if (arrival_ns - last_packet_ns_ <= config_.latency_ns) {
            counters_.foreign.fetch_add(1, std::memory_order_relaxed);
            return Action::none;
        }
        if (picture_ != nullptr) return Action::finish_first;
        start_stream(packet->ssrc);
    }
    const std::uint32_t sequence = std::uint32_t(read16(packet->payload.data())) << 16 | packet->sequence;
    if (seen_[sequence % seen_.size()] == sequence + 1) {
        counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
        return Action::none;
    }
    // Sequence numbers only count (RFC 3550 A.1): a far jump moves the count's base only when
    // the next packet follows it; the payload is judged by its timestamp either way.
    bool advance = true;
    if (have_sequence_) {
        const auto step = std::int32_t(sequence - highest_sequence_);
        const bool far = step > std::int32_t(kMaxDropout) || step < -std::int32_t(kMaxDropout);
        if (far && have_candidate_ && sequence == candidate_sequence_ + 1) {
            lost_base_ = counters_.lost.load(std::memory_order_relaxed);
            have_sequence_ = false;  // counted from here
            received_ = 0;
            have_candidate_ = false;
        } else if (far) {
            if (have_candidate_) counters_.out_of_sequence.fetch_add(1, std::memory_order_relaxed);
            have_candidate_ = true;
            candidate_sequence_ = sequence;
            advance = false;
        } else {
            if (have_candidate_) counters_.out_of_sequence.fetch_add(1, std::memory_order_relaxed);
            have_candidate_ = false;
        }
    }
    if (picture_ != nullptr) {
        if (packet->timestamp != picture_timestamp_) {
            const auto ahead = std::int32_t(packet->timestamp - picture_timestamp_);
            if (ahead > 0) return Action::finish_first;  // a later picture: this one goes first
            if (ahead < -std::int32_t(kVideoClock) || restart_confirmed(*packet, sequence, datagram, advance)) {
                restart_ = true;  // the sender started again: this picture goes, a new one begins
                return Action::finish_first;
            }
            count_received(sequence, advance);
            counters_.late.fetch_add(1, std::memory_order_relaxed);
            last_packet_ns_ = arrival_ns;
            return Action::none;
        }
        if (replay_) {  // the first packet of a restarted stream, held while it was on probation
            replay_ = false;
            const auto held = wire::parse_rtp_packet({restart_datagram_.data(), restart_bytes_});
            if (held) {
                if (const auto unpacked = wire::unpack_raw_video(config_.layout, held->payload, picture_, rows_filled_)) {
                    picture_arrived_running_ns_ = running_ns;
                    bytes_filled_ += unpacked->new_bytes;
                    counters_.late.fetch_sub(1, std::memory_order_relaxed);  // it was not late after all
                }
            }
        }
        const auto unpacked = wire::unpack_raw_video(config_.layout, packet->payload, picture_, rows_filled_);
        if (!unpacked) {  // cannot happen after the check above; counted all the same
            counters_.malformed.fetch_add(1, std::memory_order_relaxed);
            return Action::none;
        }
        if (bytes_filled_ == 0) picture_arrived_running_ns_ = running_ns;
        bytes_filled_ += unpacked->new_bytes;
        count_received(sequence, advance);
        picture_last_ns_ = last_packet_ns_ = arrival_ns;
        return Action::none;
    }
    if (have_emitted_ && !restart_) {
        const auto after = std::int32_t(packet->timestamp - last_timestamp_);
        // Far behind the last picture, or behind it twice in a row on packets newer than any
        // seen: the sender's clock started again. Otherwise a late packet.
        if (after <= 0 && (after < -std::int32_t(kVideoClock) || restart_confirmed(*packet, sequence, datagram, advance))) {
            restart_ = true;
        } else if (after <= 0) {
            count_received(sequence, advance);
            counters_.late.fetch_add(1, std::memory_order_relaxed);
            last_packet_ns_ = arrival_ns;
            return Action::none;
        }
    }
    pending_start_ = true;
    pending_timestamp_ = packet->timestamp;
    return Action::start_picture;
}

// A packet whose timestamp is behind the stream's but whose sequence number is ahead of every
// one seen may be the first of a restarted sender, or a stray: it is held (and counted late),
// and the restart is believed when the next packet follows it with the same timestamp. Then the
// held packet is filed first, into the new picture (replay_).
bool RtpVideoReceiver::restart_confirmed(const wire::RtpPacket& packet, std::uint32_t sequence,
                                         std::span<const std::uint8_t> datagram, bool advance) noexcept {
    const bool newer = have_sequence_ && advance && std::int32_t(sequence - highest_sequence_) > 0;
    if (!newer) return false;
    if (restart_candidate_ && sequence == restart_sequence_ + 1 && packet.timestamp == restart_timestamp_) {
        restart_candidate_ = false;
        replay_ = true;
        return true;
    }
    restart_candidate_ = true;
    restart_sequence_ = sequence;
    restart_timestamp_ = packet.timestamp;
    restart_bytes_ = std::min(datagram.size(), restart_datagram_.size());
    std::memcpy(restart_datagram_.data(), datagram.data(), restart_bytes_);
    return false;
}

void RtpVideoReceiver::begin(std::uint8_t* picture) noexcept {
    picture_ = picture;
    picture_timestamp_ = pending_timestamp_;
    pending_start_ = false;
    std::fill(rows_filled_.begin(), rows_filled_.end(), 0u);
    bytes_filled_ = 0;
}

bool RtpVideoReceiver::picture_due(std::int64_t now_ns) const noexcept {
    if (picture_ == nullptr) return false;
    const std::size_t whole = std::size_t(config_.layout.rows()) * config_.layout.row_bytes();
    return bytes_filled_ >= whole || (bytes_filled_ != 0 && now_ns - picture_last_ns_ > config_.latency_ns);
}

// RFC 3550's count: lost = expected (from the first to the highest sequence number) - received.
// A packet on probation (`advance` false) is counted but moves nothing.
void RtpVideoReceiver::count_received(std::uint32_t sequence, bool advance) noexcept {
    seen_[sequence % seen_.size()] = sequence + 1;
    if (!advance) {
        counters_.received.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        return;
    }
    if (!have_sequence_) {
        have_sequence_ = true;
        first_sequence_ = highest_sequence_ = sequence;
    } else if (std::int32_t(sequence - highest_sequence_) > 0) {
        highest_sequence_ = sequence;
    }
    ++received_;
    const std::uint64_t expected = std::uint64_t(highest_sequence_ - first_sequence_) + 1;
    // relaxed: statistics.
    counters_.received.fetch_add(1, std::memory_order_relaxed);
    counters_.lost.store(lost_base_ + (expected > received_ ? expected - received_ : 0), std::memory_order_relaxed);
}

RtpVideoReceiver::Finished RtpVideoReceiver::finish() noexcept {
    Finished f;
    f.incomplete = paint_missing_rows_black();
    if (f.incomplete) incomplete_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    f.discontinuity = f.incomplete || restart_ || std::exchange(resynced_, false);
    // The running-time line: anchored by the first picture (its arrival plus the latency), then
    // following the 90 kHz timestamps; a restart or a jump of more than a second re-anchors it.
    const auto step = std::int64_t(std::int32_t(picture_timestamp_ - anchor_timestamp_));
    if (!anchored_ || restart_ || step > kVideoClock || step < -std::int64_t(kVideoClock)) {
        f.discontinuity = f.discontinuity || anchored_;
        anchored_ = true;
        anchor_offset_ = 0;
        // Where the sender's report puts it, if it knows and the picture is not late by it; else
        // its arrival plus the latency.
        MediaTime at = picture_arrived_running_ns_ + config_.latency_ns;
        synced_ = sync_.known;
        if (sync_.known && SenderSync::plausible(sync_.running_of(picture_timestamp_, kVideoClock),
                                                 picture_arrived_running_ns_, config_.latency_ns)) {
            at = sync_.running_of(picture_timestamp_, kVideoClock);
            counters_.synced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        }
        anchor_running_ns_ = std::max(at, last_stop_ == kNoTime ? 0 : last_stop_);
    } else {
        anchor_offset_ += step;
    }
    anchor_timestamp_ = picture_timestamp_;
    f.start = anchor_running_ns_ + (anchor_offset_ >= 0 ? engine::frames_to_ns(std::uint64_t(anchor_offset_), kVideoClock)
                                                       : -engine::frames_to_ns(std::uint64_t(-anchor_offset_), kVideoClock));
    if (last_stop_ != kNoTime && f.start < last_stop_ - frame_start(config_.fps, 1) / 2) {
        if (behind_) {
            f.behind = true;  // a sender report moved the line back: this picture's time has gone by
            resynced_ = true;  // the next picture shown carries the discontinuity
        } else {
            // Timestamps that went backwards (by less than a restart): output times never do.
            // (Less than half a picture is the 90 kHz clock's rounding of the sender's times.)
            f.discontinuity = true;
            anchor_offset_ = 0;
            anchor_running_ns_ = f.start = last_stop_;
        }
    } else {
        behind_ = false;
    }
    if (!f.behind) {
        f.stop = f.start + frame_start(config_.fps, 1);
        last_stop_ = f.stop;
    }
    last_timestamp_ = picture_timestamp_;
    have_emitted_ = true;
    restart_ = false;
    picture_ = nullptr;
    return f;
}

// Whether any row was missing (or only partly there).
bool RtpVideoReceiver::paint_missing_rows_black() noexcept {
    const wire::RawVideoLayout& l = config_.layout;
    bool painted = false;
    const auto w = std::size_t(l.width()), h = std::size_t(l.height());
    for (std::size_t row = 0; row < rows_filled_.size(); ++row) {
        if (rows_filled_[row] == l.row_bytes()) continue;
        painted = true;
        if (l.pixel_format() == engine::PixelFormat::rgba) {
            std::uint8_t* p = picture_ + row * w * 4;
            for (std::size_t x = 0; x < w; ++x, p += 4) p[0] = p[1] = p[2] = 0, p[3] = 255;
        } else {
            std::memset(picture_ + 2 * row * w, 16, 2 * w);
            std::memset(picture_ + w * h + row * (w / 2), 128, w / 2);
            std::memset(picture_ + w * h + (w / 2) * (h / 2) + row * (w / 2), 128, w / 2);
        }
    }
    return painted;
}

void RtpVideoReceiver::sync(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept {
    if (have_stream_ && ssrc != ssrc_) return;  // another sender's
    sync_ = {true, ssrc, timestamp, running_ns};
    if (!anchored_) return;  // finish() anchors the line by it
    if (std::exchange(synced_, true)) return;  // once per stream (rtp_sync.hpp)
    auto line_of = [&](std::uint32_t ts) {
        return anchor_running_ns_ + ticks_to_ns(anchor_offset_ + std::int32_t(ts - anchor_timestamp_), kVideoClock);
    };
    const MediaTime shift = running_ns - line_of(timestamp);
    if (shift < kSyncToleranceNs && shift > -kSyncToleranceNs) return;
    if (!SenderSync::plausible(line_of(picture_timestamp_) + shift, picture_arrived_running_ns_, config_.latency_ns)) return;
    anchor_running_ns_ += shift;
    resynced_ = have_emitted_;
    behind_ = have_emitted_ && shift < 0;  // output times never go back: finish() says drop
    counters_.synced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
}

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
#include "net/rtp_audio_receiver.hpp"

#include <sluice/engine/format.hpp>

#include <algorithm>
#include <cstring>
#include <utility>

namespace sluice::nodes::detail {

RtpAudioReceiver::RtpAudioReceiver(const Config& config) : config_(config) {
    for (Slot& s : slots_) s.data.resize(kMaxDatagram);
    candidate_.data.resize(kMaxDatagram);
}

void RtpAudioReceiver::reset() noexcept {
    clear_slots();
    have_candidate_ = have_stream_ = have_next_ = gap_ = anchored_ = resynced_ = behind_ = synced_ = false;
    sync_ = SenderSync{};
    last_arrived_running_ns_ = kNoTime;
    last_packet_ns_ = 0;
    next_start_ = kNoTime;
    played_.fill(0);
    pending_ = Pending::none;
}

void RtpAudioReceiver::clear_slots() noexcept {
    for (Slot& s : slots_) s.state = Slot::State::empty;
}

void RtpAudioReceiver::start_stream(std::uint32_t ssrc, std::uint16_t sequence) noexcept {
    clear_slots();
    have_candidate_ = false;
    have_stream_ = true;
    ssrc_ = ssrc;
    have_next_ = true;
    next_ = sequence;
    anchored_ = false;  // the new stream's timestamps have nothing to do with the old ones
    if (sync_.ssrc != ssrc) sync_ = SenderSync{};  // nor another sender's reports
    synced_ = false;
    last_arrived_running_ns_ = kNoTime;
    gap_ = next_start_ != kNoTime;  // a restart, not the first stream
    played_.fill(0);
    pending_ = Pending::none;
}

void RtpAudioReceiver::receive(std::span<const std::uint8_t> datagram, std::int64_t arrival_ns,
                               MediaTime running_ns) noexcept {
    // relaxed everywhere below: statistics.
    const auto packet = wire::parse_rtp_packet(datagram);
    if (!packet || packet->payload.empty()) {
        counters_.malformed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    const bool ours = config_.payload_type < 0 || packet->payload_type == config_.payload_type;
    if (ours && packet->payload.size() % config_.frame_bytes != 0) {
        if (misfit_bytes_ == 0) misfit_bytes_ = packet->payload.size();
        counters_.malformed.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    if (!have_stream_) {
        if (!ours) {
            counters_.filtered.fetch_add(1, std::memory_order_relaxed);
            return;
        }
        start_stream(packet->ssrc, packet->sequence);
        stream_arrival_ns_ = arrival_ns;
        counters_.streams.fetch_add(1, std::memory_order_relaxed);
    } else if (packet->ssrc != ssrc_) {
        // A restarted sender: the old one has been silent for the latency (the buffer is played).
        if (ours && arrival_ns - last_packet_ns_ > config_.latency_ns && !holding()) {
            start_stream(packet->ssrc, packet->sequence);
            stream_arrival_ns_ = arrival_ns;
            counters_.streams.fetch_add(1, std::memory_order_relaxed);
        } else {
            counters_.foreign.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
    if (!ours) {
        // Its sequence number is taken, so our stream has a hole there that is no loss.
        counters_.filtered.fetch_add(1, std::memory_order_relaxed);
        const auto ahead = std::uint16_t(packet->sequence - next_);
        if (ahead < kSlots) {
            Slot& slot = slots_[packet->sequence % kSlots];
            if (slot.state == Slot::State::empty || slot.sequence != packet->sequence) {
                slot.state = Slot::State::skip;
                slot.sequence = packet->sequence;
                slot.arrived_ns = arrival_ns;
            }
        }
        last_packet_ns_ = arrival_ns;
        return;
    }
    file(*packet, arrival_ns, running_ns);
}

void RtpAudioReceiver::file(const wire::RtpPacket& p, std::int64_t arrival_ns, MediaTime running_ns) noexcept {
    auto ahead = std::uint16_t(p.sequence - next_);
    if (ahead >= 0x8000 && next_start_ == kNoTime && pending_ == Pending::none &&
        std::uint16_t(next_ - p.sequence) < kSlots && !holding_beyond(std::uint16_t(p.sequence + kSlots))) {
        // Nothing played yet, and the stream's first packets came out of order: start earlier.
        next_ = p.sequence;
        ahead = 0;
    }
    if (ahead >= 0x8000) {  // behind what was already played
        if (played_[p.sequence % kPlayedHistory] == std::uint32_t(p.sequence) + 1) {
            counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
        } else {
            counters_.late.fetch_add(1, std::memory_order_relaxed);
            counters_.received.fetch_add(1, std::memory_order_relaxed);  // ours, if useless now
        }
        return;
    }
    Slot* target = nullptr;
    if (ahead >= kSlots) {
        // Probation: believed only when the next packet follows it.
        if (have_candidate_ && std::uint16_t(p.sequence - candidate_.sequence) == 1) {
            const Slot held = std::move(candidate_);
            candidate_ = Slot{};
            candidate_.data.resize(kMaxDatagram);
            start_stream(ssrc_, held.sequence);
            Slot& first = slots_[held.sequence % kSlots];
            first.state = Slot::State::packet;
            first.sequence = held.sequence;
            first.timestamp = held.timestamp;
            first.bytes = held.bytes;
            first.arrived_ns = held.arrived_ns;
            first.arrived_running_ns = held.arrived_running_ns;
            std::memcpy(first.data.data(), held.data.data(), held.bytes);
            counters_.received.fetch_add(1, std::memory_order_relaxed);
            target = &slots_[p.sequence % kSlots];
        } else {
            if (have_candidate_) {
                counters_.out_of_sequence.fetch_add(1, std::memory_order_relaxed);
                counters_.received.fetch_add(1, std::memory_order_relaxed);
            }
            have_candidate_ = true;
            candidate_.state = Slot::State::packet;
            candidate_.sequence = p.sequence;
            candidate_.timestamp = p.timestamp;
            candidate_.bytes = p.payload.size();
            candidate_.arrived_ns = arrival_ns;
            candidate_.arrived_running_ns = running_ns;
            std::memcpy(candidate_.data.data(), p.payload.data(), p.payload.size());
            last_packet_ns_ = arrival_ns;
            return;
        }
    } else {
        // A packet in the window: a stray held on probation was just that (received, not played).
        if (have_candidate_) {
            counters_.out_of_sequence.fetch_add(1, std::memory_order_relaxed);
            counters_.received.fetch_add(1, std::memory_order_relaxed);
        }
        have_candidate_ = false;
        target = &slots_[p.sequence % kSlots];
        if (target->state == Slot::State::packet && target->sequence == p.sequence) {
            counters_.duplicates.fetch_add(1, std::memory_order_relaxed);
            return;
        }
    }
    target->state = Slot::State::packet;
    target->sequence = p.sequence;
    target->timestamp = p.timestamp;
    target->bytes = p.payload.size();
    target->arrived_ns = arrival_ns;
    target->arrived_running_ns = running_ns;
    std::memcpy(target->data.data(), p.payload.data(), p.payload.size());
    last_packet_ns_ = arrival_ns;
    last_timestamp_ = p.timestamp;
    last_arrived_running_ns_ = running_ns;
    counters_.received.fetch_add(1, std::memory_order_relaxed);
}

// Whether a packet is held at or after `sequence` (within the window from next_).
bool RtpAudioReceiver::holding_beyond(std::uint16_t sequence) const noexcept {
    for (const Slot& s : slots_)
        if (s.state == Slot::State::packet && std::uint16_t(s.sequence - sequence) < 0x8000) return true;
    return false;
}

bool RtpAudioReceiver::crowded() const noexcept {
    if (!have_next_) return false;
    return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) {
        return s.state == Slot::State::packet && std::uint16_t(s.sequence - next_) >= kSlots * 3 / 4 &&
               std::uint16_t(s.sequence - next_) < 0x8000;
    });
}

bool RtpAudioReceiver::holding() const noexcept {
    return std::any_of(slots_.begin(), slots_.end(), [](const Slot& s) { return s.state == Slot::State::packet; });
}

bool RtpAudioReceiver::give_up_on_next(std::int64_t now_ns) const noexcept {
    for (const Slot& s : slots_)
        if (s.state != Slot::State::empty && now_ns - s.arrived_ns > config_.latency_ns) return true;
    return false;
}

// Running time of `timestamp`. The line is anchored by the stream's first packet (its arrival plus
// the latency) and follows the timestamps from there, unwrapped past 2^32; a jump of more than a
// second from where the stream was re-anchors it at this packet's arrival.
MediaTime RtpAudioReceiver::place(std::uint32_t timestamp, MediaTime arrived_running_ns, bool& discontinuity) noexcept {
    const std::int64_t expected_offset = anchor_offset_;
    const auto step = std::int64_t(std::int32_t(timestamp - anchor_timestamp_));
    if (std::exchange(resynced_, false)) discontinuity = true;
    if (!anchored_ || (next_start_ != kNoTime && (step > config_.rate || step < -config_.rate))) {
        if (anchored_) discontinuity = true;
        anchored_ = true;
        anchor_timestamp_ = timestamp;
        anchor_offset_ = 0;
        // Where the sender's report puts it, if it knows and the packet is not late by it; else
        // its arrival plus the latency. Never before what was already played.
        MediaTime at = arrived_running_ns + config_.latency_ns;
        synced_ = sync_.known;
        if (sync_.known && SenderSync::plausible(sync_.running_of(timestamp, config_.rate), arrived_running_ns, config_.latency_ns)) {
            at = sync_.running_of(timestamp, config_.rate);
            counters_.synced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
        }
        anchor_running_ns_ = std::max(at, next_start_ == kNoTime ? 0 : next_start_);
        return anchor_running_ns_;
    }
    // Move the anchor along, so the signed 32-bit step never spans more than one packet.
    anchor_offset_ = expected_offset + step;
    anchor_timestamp_ = timestamp;
    const MediaTime start =
        anchor_running_ns_ + (anchor_offset_ >= 0 ? engine::frames_to_ns(std::uint64_t(anchor_offset_), config_.rate)
                                                  : -engine::frames_to_ns(std::uint64_t(-anchor_offset_), config_.rate));
    if (!behind_ && next_start_ != kNoTime && start < next_start_ - engine::frames_to_ns(1, config_.rate)) {
        // Timestamps that went backwards: output times never do; the line starts again here.
        discontinuity = true;
        anchor_offset_ = 0;
        anchor_running_ns_ = next_start_;
        return next_start_;
    }
    return start;
}

MediaTime RtpAudioReceiver::line_of(std::uint32_t timestamp) const noexcept {
    return anchor_running_ns_ + ticks_to_ns(anchor_offset_ + std::int32_t(timestamp - anchor_timestamp_), config_.rate);
}

void RtpAudioReceiver::sync(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept {
    if (have_stream_ && ssrc != ssrc_) return;  // another sender's
    sync_ = {true, ssrc, timestamp, running_ns};
    if (!anchored_) return;  // place() anchors the line by it
    if (std::exchange(synced_, true)) return;  // once per stream (rtp_sync.hpp)
    const MediaTime shift = running_ns - line_of(timestamp);
    if (shift < kSyncToleranceNs && shift > -kSyncToleranceNs) return;
    if (last_arrived_running_ns_ != kNoTime &&
        !SenderSync::plausible(line_of(last_timestamp_) + shift, last_arrived_running_ns_, config_.latency_ns))
        return;
    anchor_running_ns_ += shift;
    resynced_ = next_start_ != kNoTime;
    behind_ = next_start_ != kNoTime && shift < 0;  // output times never go back: next() trims
    counters_.synced.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
}

RtpAudioReceiver::Ready RtpAudioReceiver::next(std::int64_t now_ns, bool draining) noexcept {
    if (pending_ != Pending::none) return ready_;
    ready_ = Ready{};
    if (!have_next_) return ready_;
    // A stream's first packet waits the latency before anything plays (it plays then anyway):
    // its predecessors may still be on their way, out of order.
    if (next_start_ == kNoTime && !draining && now_ns - stream_arrival_ns_ < config_.latency_ns) return ready_;
    for (;;) {
        Slot& slot = slots_[next_ % kSlots];
        if (slot.state == Slot::State::skip && slot.sequence == next_) {  // another payload type's
            slot.state = Slot::State::empty;
            ++next_;
            continue;
        }
        if (slot.state == Slot::State::packet && slot.sequence == next_) {
            bool discontinuity = gap_;
            MediaTime start = place(slot.timestamp, slot.arrived_running_ns, discontinuity);
            std::size_t frames = slot.bytes / config_.frame_bytes, skip = 0;
            if (behind_ && start < next_start_) {
                // A sender report moved the line back while output ran: what lies before the
                // output's end has had its time; the rest plays.
                skip = std::size_t(std::min<std::uint64_t>(engine::frames_at_or_after(next_start_ - start, config_.rate), frames));
                if (skip == frames) {
                    resynced_ = resynced_ || discontinuity;  // the next output carries the flag
                    slot.state = Slot::State::empty;
                    played_[next_ % kPlayedHistory] = std::uint32_t(next_) + 1;
                    next_timestamp_ = slot.timestamp + std::uint32_t(frames);
                    ++next_;
                    continue;
                }
                start += engine::frames_to_ns(skip, config_.rate);
                frames -= skip;
            } else {
                behind_ = false;
            }
            ready_ = {Ready::Kind::audio, {slot.data.data() + skip * config_.frame_bytes, frames * config_.frame_bytes},
                      frames, start, discontinuity};
            pending_ = Pending::packet;
            return ready_;
        }
        break;
    }
    if (!(draining ? holding() : give_up_on_next(now_ns))) return ready_;
    // The packet `next_` is lost: silence as long as the timestamps say is missing, judged by the
    // next packet held (else as long as the last one played).
    // Only a gap between packets of ours is filled: one followed by nothing we will play (other
    // payload types' numbers) is skipped.
    std::size_t frames = 0;
    for (std::uint16_t k = 1; k < kSlots; ++k) {
        const Slot& s = slots_[std::uint16_t(next_ + k) % kSlots];
        if (s.state == Slot::State::packet && s.sequence == std::uint16_t(next_ + k)) {
            frames = std::uint32_t(s.timestamp - next_timestamp_) / k;
            break;
        }
    }
    counters_.lost.fetch_add(1, std::memory_order_relaxed);  // relaxed: a statistic
    if (frames == 0 || frames * config_.frame_bytes > kMaxDatagram || next_start_ == kNoTime) {
        // Nothing sensible to fill (or nothing played yet to follow): skip the number.
        ++next_;
        gap_ = true;
        pending_ = Pending::none;
        return next(now_ns, draining);
    }
    ready_ = {Ready::Kind::silence, {}, frames, next_start_, true};
    pending_ = Pending::silence;
    return ready_;
}

void RtpAudioReceiver::consume() noexcept {
    if (pending_ == Pending::none) return;
    if (pending_ == Pending::packet) {
        Slot& slot = slots_[next_ % kSlots];
        slot.state = Slot::State::empty;
        played_[next_ % kPlayedHistory] = std::uint32_t(next_) + 1;
        next_timestamp_ = slot.timestamp + std::uint32_t(slot.bytes / config_.frame_bytes);  // a trimmed one's too
        gap_ = false;
    } else {
        next_timestamp_ += std::uint32_t(ready_.frames);
        anchor_timestamp_ += std::uint32_t(ready_.frames);  // the line moves on with the silence
        anchor_offset_ += std::int64_t(ready_.frames);
        gap_ = true;
    }
    next_start_ = ready_.start + engine::frames_to_ns(ready_.frames, config_.rate);
    ++next_;
    pending_ = Pending::none;
}

}  // namespace sluice::nodes::detail

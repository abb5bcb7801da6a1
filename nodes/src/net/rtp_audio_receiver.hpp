// SPDX-License-Identifier: MIT
#pragma once

// The receiving half of RTP L16 audio without the socket and the node: datagrams go in with their
// arrival time, packets come out in sequence order (or silence for one given up), each with its
// place in running time. `rtpsrc` drives it from a UDP socket, fuzz_rtp_receiver from sequences
// of made-up datagrams. Hand-written rather than taken from a library: it runs on the streaming
// thread, allocates nothing after construction, and its every counter is part of the product.
//
// What it does with a datagram, in order (each check before anything changes):
//   - empty, malformed, or a payload that is not whole frames: counted malformed, dropped (the
//     first payload of the wrong size is remembered, for a one-time warning);
//   - another payload type than `pt` (when set): counted filtered; its sequence number is marked
//     as not ours, so the gap it leaves is neither loss nor silence;
//   - another SSRC: foreign, unless the current sender has been silent for `latency`, in which
//     case it is a new stream (a restarted sender): counted, played from its first packet on,
//     flagged as a discontinuity;
//   - a sequence number far ahead (more than the jitter buffer holds) is not believed at once
//     (RFC 3550 A.1's probation): it is held back, and only if the next packet follows it does the
//     stream jump there (a discontinuity); otherwise it is dropped and counted out of sequence;
//   - behind what was already played: a duplicate if that very packet was played, else late
//     (before anything has played, a packet a little behind the first one starts the stream);
//   - otherwise filed in the jitter buffer (a duplicate if its slot already holds it).
// Out of the buffer, a packet's timestamp is placed on the running-time line anchored by the
// first packet (arrival + latency). A timestamp that jumps further than a second from where the
// stream was (a sender's clock reset, a corrupt header) re-anchors the line at the packet's
// arrival instead of stalling the stream for hours, and is flagged as a discontinuity.
//
// Threading: one thread (the streaming thread) calls everything; counters() may be read from
// any thread.

#include "net/rtp_sync.hpp"
#include "net/udp.hpp"

#include <sluice/allocators/sample.hpp>
#include <sluice/wire/rtp.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace sluice::nodes::detail {

class RtpAudioReceiver {
public:
    struct Config {
        std::size_t frame_bytes = 4;  // channels * 2 (L16)
        int rate = 48000;             // the RTP clock rate
        int payload_type = -1;        // -1: any
        std::int64_t latency_ns = 50'000'000;
    };

    // What to play next.
    struct Ready {
        enum class Kind { none, audio, silence } kind = Kind::none;
        std::span<const std::uint8_t> payload;  // audio: big-endian L16, whole frames
        std::size_t frames = 0;
        MediaTime start = kNoTime;  // running time of its first frame
        bool discontinuity = false;
    };

    explicit RtpAudioReceiver(const Config& config);

    // Forgets every stream and packet (start of a run). Counters stay.
    void reset() noexcept;

    // Files one datagram that arrived at `arrival_ns` (steady clock) when the graph's running
    // time was `running_ns`.
    void receive(std::span<const std::uint8_t> datagram, std::int64_t arrival_ns, MediaTime running_ns) noexcept;

    // What is due next at `now_ns` (steady clock): a packet in order, silence for one given up
    // (a later one has waited longer than the latency), or nothing. `draining`: no more packets
    // will come, so whatever is held plays now. The same answer until consume().
    Ready next(std::int64_t now_ns, bool draining) noexcept;
    // The Ready of the last next() has been played.
    void consume() noexcept;

    // RTCP sync: the current sender's RTP time `timestamp` belongs at running time `running_ns`
    // (its sender report's wall-clock time on the graph's running-time line, plus the latency),
    // so that the receivers of one graph play what was sent at one instant at one time, whatever
    // path each stream took. rtp_sync.hpp says when a line moves and when it is left alone.
    void sync(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept;
    // The SSRC of the stream being played, if any.
    std::optional<std::uint32_t> ssrc() const noexcept { return have_stream_ ? std::optional(ssrc_) : std::nullopt; }

    bool holding() const noexcept;  // any packet waiting in the buffer
    // Packets held reach three quarters of the window past a gap: give the gap up now (call
    // next() as draining) rather than read on until a packet falls outside the window and looks
    // like a jump. It happens when the thread stalled with a gap to fill and the socket's backlog
    // comes in at once: at 1 ms packets the window is 64 ms.
    bool crowded() const noexcept;
    std::int64_t last_packet_ns() const noexcept { return last_packet_ns_; }  // 0: none yet
    // The first payload whose size was not whole frames, for a one-time warning (0: none yet).
    std::size_t misfit_payload_bytes() const noexcept { return misfit_bytes_; }

    const PacketCounters& counters() const noexcept { return counters_; }

private:
    static constexpr std::size_t kSlots = 64;
    static constexpr std::size_t kPlayedHistory = 1024;
    struct Slot {
        enum class State : std::uint8_t { empty, packet, skip } state = State::empty;
        std::uint16_t sequence = 0;
        std::uint32_t timestamp = 0;
        std::size_t bytes = 0;
        std::int64_t arrived_ns = 0;
        MediaTime arrived_running_ns = 0;
        std::vector<std::uint8_t> data;  // kMaxDatagram, allocated once
    };

    void file(const wire::RtpPacket& p, std::int64_t arrival_ns, MediaTime running_ns) noexcept;
    void start_stream(std::uint32_t ssrc, std::uint16_t sequence) noexcept;
    void clear_slots() noexcept;
    bool give_up_on_next(std::int64_t now_ns) const noexcept;
    bool holding_beyond(std::uint16_t sequence) const noexcept;
    MediaTime place(std::uint32_t timestamp, MediaTime arrived_running_ns, bool& discontinuity) noexcept;
    MediaTime line_of(std::uint32_t timestamp) const noexcept;  // where the anchored line puts it

    Config config_;
    std::array<Slot, kSlots> slots_;
    Slot candidate_;  // a packet on probation (far ahead of the stream)
    bool have_candidate_ = false;

    bool have_stream_ = false, have_next_ = false, gap_ = false, anchored_ = false;
    std::uint32_t ssrc_ = 0;
    std::uint16_t next_ = 0;              // the sequence number to play next
    std::uint32_t next_timestamp_ = 0;    // its timestamp, as far as the stream says
    std::int64_t last_packet_ns_ = 0;
    std::int64_t stream_arrival_ns_ = 0;  // when the current stream's first packet came
    std::uint32_t anchor_timestamp_ = 0;  // the running-time line: anchor_timestamp_ plays at
    std::int64_t anchor_offset_ = 0;      // anchor_running_ns_; ticks since it, unwrapped
    MediaTime anchor_running_ns_ = 0;
    MediaTime next_start_ = kNoTime;      // where the next output begins, once something played
    std::array<std::uint32_t, kPlayedHistory> played_{};  // sequence + 1 of recently played ones
    std::size_t misfit_bytes_ = 0;
    SenderSync sync_;                  // the last SR's word on where the stream belongs
    bool resynced_ = false;            // the line moved after output began: flag the next
    bool behind_ = false;              // it moved back: audio before the output's end is skipped
    bool synced_ = false;              // a report has been weighed against the anchored line
    std::uint32_t last_timestamp_ = 0;  // the last packet filed, and when it came
    MediaTime last_arrived_running_ns_ = kNoTime;

    Ready ready_;
    enum class Pending { none, packet, silence, skip } pending_ = Pending::none;
    PacketCounters counters_;
};

}  // namespace sluice::nodes::detail

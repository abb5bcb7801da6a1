// SPDX-License-Identifier: MIT
#pragma once

// The receiving half of RTP raw video (RFC 4175) without the socket and the node: datagrams go in
// with their arrival time, pictures are assembled straight into the buffer the caller provides
// (a pool buffer in `rtpvrawsrc`, a scratch one in fuzz_rtp_receiver), and come out placed on the
// running-time line. Hand-written: it runs on the streaming thread and allocates nothing after
// construction.
//
// A datagram is judged completely before it changes anything (a bad one can neither end the
// picture being assembled nor begin a phantom one):
//   - empty, malformed RTP, a line header outside the picture or a truncated payload: malformed;
//   - another payload type than `pt` (when set): filtered;
//   - another SSRC: foreign, unless the current sender has been silent for `latency` (a restarted
//     sender: a new stream, counted, its first picture a discontinuity);
//   - an extended sequence number far from the stream's (more than 3000 away, RFC 3550 A.1's
//     MAX_DROPOUT) moves the loss count's base only when the next packet follows it; a lone one
//     is counted out of sequence (its payload is judged by its timestamp like any other);
//   - a sequence number seen recently: duplicate;
//   - a picture already pushed: late; but a timestamp more than a second behind the last
//     picture, or behind it on two packets in a row newer than any seen with one timestamp (a
//     sender restarted with the same SSRC), starts the stream again instead of dropping every
//     later picture.
// Lost packets follow RFC 3550: expected (first to highest sequence number) minus received.
//
// Threading: one thread calls everything; counters() and incomplete() from any thread.

#include "net/rtp_sync.hpp"
#include "net/udp.hpp"

#include <sluice/allocators/sample.hpp>
#include <sluice/wire/rtp.hpp>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace sluice::nodes::detail {

class RtpVideoReceiver {
public:
    struct Config {
        wire::RawVideoLayout layout;
        engine::Fraction fps{30, 1};
        int payload_type = -1;  // -1: any
        std::int64_t latency_ns = 50'000'000;
    };

    // What the caller does after offer().
    enum class Action {
        none,           // dropped, or filed into the current picture
        start_picture,  // the packet begins a picture: call begin() with a buffer, then offer it again
        finish_first,   // the packet begins a later picture: finish() the current one first, then
                        // offer it again
    };

    struct Finished {
        MediaTime start = kNoTime;
        MediaTime stop = kNoTime;
        bool incomplete = false;     // rows were missing (painted black)
        bool discontinuity = false;  // incomplete, or the stream restarted or jumped
        bool behind = false;  // its time has gone by (RTCP sync moved the line back): not to be shown
    };

    explicit RtpVideoReceiver(const Config& config);

    void reset() noexcept;  // forgets streams and pictures (start of a run); counters stay

    Action offer(std::span<const std::uint8_t> datagram, std::int64_t arrival_ns, MediaTime running_ns) noexcept;
    // The current picture goes into `picture` (frame_bytes of the format); the packet that asked
    // for it is filed when offered again.
    void begin(std::uint8_t* picture) noexcept;
    bool has_picture() const noexcept { return picture_ != nullptr; }
    // Whether the current picture should go now: complete, or waited `latency` since its last
    // packet (at `now_ns`, steady clock).
    bool picture_due(std::int64_t now_ns) const noexcept;
    // Paints missing rows black and places the picture in running time; the buffer is the
    // caller's again.
    Finished finish() noexcept;

    // RTCP sync, as RtpAudioReceiver::sync: the sender's RTP time `timestamp` belongs at running
    // time `running_ns`; rtp_sync.hpp says when the line moves.
    void sync(std::uint32_t ssrc, std::uint32_t timestamp, MediaTime running_ns) noexcept;
    // The SSRC of the stream being received, if any.
    std::optional<std::uint32_t> ssrc() const noexcept { return have_stream_ ? std::optional(ssrc_) : std::nullopt; }

    std::int64_t last_packet_ns() const noexcept { return last_packet_ns_; }
    const PacketCounters& counters() const noexcept { return counters_; }
    std::uint64_t incomplete() const noexcept { return incomplete_.load(std::memory_order_relaxed); }  // relaxed: a statistic

private:
    static constexpr std::uint32_t kMaxDropout = 3000;  // RFC 3550 A.1
    static constexpr std::uint32_t kVideoClock = 90000;

    void start_stream(std::uint32_t ssrc) noexcept;
    void count_received(std::uint32_t sequence, bool advance) noexcept;
    bool restart_confirmed(const wire::RtpPacket& packet, std::uint32_t sequence, std::span<const std::uint8_t> datagram,
                           bool advance) noexcept;
    bool paint_missing_rows_black() noexcept;

    Config config_;
    std::vector<std::uint32_t> rows_filled_;  // bytes each row has received
    std::uint8_t* picture_ = nullptr;          // the caller's buffer being assembled
    std::uint32_t picture_timestamp_ = 0;
    std::size_t bytes_filled_ = 0;
    std::int64_t picture_last_ns_ = 0;
    MediaTime picture_arrived_running_ns_ = 0;
    bool pending_start_ = false;               // begin() expected for timestamp pending_timestamp_
    std::uint32_t pending_timestamp_ = 0;
    bool restart_ = false;                     // the next picture begins a new stream
    bool restart_candidate_ = false;           // a packet that may begin a restarted stream is held
    bool replay_ = false;                      // file the held packet first into the next picture
    std::uint32_t restart_sequence_ = 0, restart_timestamp_ = 0;
    std::vector<std::uint8_t> restart_datagram_;
    std::size_t restart_bytes_ = 0;

    bool have_stream_ = false, have_sequence_ = false, have_emitted_ = false;
    std::uint32_t ssrc_ = 0, first_sequence_ = 0, highest_sequence_ = 0, last_timestamp_ = 0;
    std::uint64_t received_ = 0, lost_base_ = 0;
    bool have_candidate_ = false;
    std::uint32_t candidate_sequence_ = 0;
    std::int64_t last_packet_ns_ = 0;
    std::array<std::uint32_t, 4096> seen_{};  // sequence + 1 of recent packets, to spot duplicates

    bool anchored_ = false;
    SenderSync sync_;          // the last SR's word on where the stream belongs
    bool resynced_ = false;    // the line moved after output began: flag the next picture
    bool behind_ = false;      // it moved back: pictures before the last one's end are dropped
    bool synced_ = false;      // a report has been weighed against the anchored line
    std::uint32_t anchor_timestamp_ = 0;
    std::int64_t anchor_offset_ = 0;  // ticks from the anchor to the last picture, unwrapped
    MediaTime anchor_running_ns_ = 0;
    MediaTime last_stop_ = kNoTime;

    PacketCounters counters_;
    std::atomic<std::uint64_t> incomplete_{0};
};

}  // namespace sluice::nodes::detail

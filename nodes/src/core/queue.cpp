// SPDX-License-Identifier: MIT
// queue: a thread boundary. The thread that pushes into it goes on at once while there is room;
// the queue's own streaming thread (the graph gives it one: Node::owns_streaming_thread) pushes
// the samples on downstream. So one source feeding two renders at their own pace, a decoder
// feeding a sound card and a window, decodes ahead on its thread while each branch presents its
// samples on its own, as GStreamer's queue and decodebin's multiqueue let it.
//
// Samples cross through moodycamel's ConcurrentQueue (the design card's lock-free queue) with a
// producer token made in start(), into blocks preallocated for the queue's size, and the two
// threads wake each other through EventCount (the project's one wait primitive): neither side
// locks or allocates; the pushing side blocks only while the queue is full, the queue's thread
// only while it is empty. The queued samples stay in their upstream pool (no copy), which the
// graph sizes for them through holds().
#include "core/common.hpp"
#include <sluice/allocators/event_count.hpp>
#include <sluice/nodes/registry.hpp>

#include <concurrentqueue/concurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::MediaFormat;
using engine::MediaKind;

class Queue final : public Node {
public:
    Queue(std::string name, PropertyReader& r) : Node(std::move(name), Kind::transform) {
        max_buffers_ = std::size_t(r.integer("max-size-buffers", 0, kMostBuffers));
        const double seconds = r.number("max-size-time", 0, 3600);
        max_time_ns_ = std::int64_t(std::llround(seconds * 1e9));
        leaky_ = Leaky(r.choice("leaky", {"no", "upstream", "downstream"}));
        if (r.ok() && max_buffers_ == 0 && max_time_ns_ == 0)
            r.fail(engine::GraphErrc::invalid_argument,
                   this->name() + ": max-size-buffers=0 and max-size-time=0 leave the queue no size; give one of them");
        add_input("sink", {});
        add_output("src", {});
    }

    bool owns_streaming_thread() const noexcept override { return true; }
    bool passes_through(std::size_t, std::size_t) const override { return true; }
    // The queue, and the sample its thread is pushing downstream.
    std::size_t holds(std::size_t) const override { return capacity_ + 1; }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        // relaxed, all: counters and a snapshot.
        const std::int64_t queued = count_.load(std::memory_order_relaxed);
        return {{"queued", std::uint64_t(std::max<std::int64_t>(queued, 0))},
                {"max-queued", max_queued_.load(std::memory_order_relaxed)},
                {"capacity", capacity_},
                {"dropped", dropped_.load(std::memory_order_relaxed)},
                {"waits-full", waits_full_.load(std::memory_order_relaxed)}};
    }

private:
    enum class Leaky { no, upstream, downstream };
    static constexpr std::int64_t kMostBuffers = 4096;
    // Audio buffers are as long as their source makes them; the size by time assumes the
    // engine's default of 1024 frames (a source that pushes shorter ones fills the queue by its
    // count first).
    static constexpr double kAssumedAudioFrames = 1024;

    Status configure() override {
        const MediaFormat& f = input(0).format();
        capacity_ = max_buffers_;
        if (capacity_ == 0) {
            const double per_second = f.kind == MediaKind::video ? (f.fps.num > 0 && f.fps.den > 0 ? f.fps.value() : 30.0)
                                                                  : f.rate / kAssumedAudioFrames;
            const double buffers = std::ceil(double(max_time_ns_) / 1e9 * per_second) + 1;
            capacity_ = std::size_t(std::clamp(buffers, 2.0, double(kMostBuffers)));
        }
        return {};
    }

    // The queue's own output pool is never used: its samples are the ones it was given.
    engine::BufferNeeds output_buffers(std::size_t) const override { return {.bytes = 1, .buffers = 0}; }

    Status start() override {
        drain();
        // Blocks for every sample the queue may hold, so that the producer token never
        // allocates on the streaming thread: a producer moves to a fresh block every BLOCK_SIZE
        // samples and reuses one only once it is empty, hence one block more than they fill.
        constexpr std::size_t kBlock = moodycamel::ConcurrentQueueDefaultTraits::BLOCK_SIZE;
        samples_ = std::make_unique<moodycamel::ConcurrentQueue<SampleRef>>(((capacity_ + 1) / kBlock + 2) * kBlock);
        producer_ = std::make_unique<moodycamel::ProducerToken>(*samples_);
        // relaxed, all: no streaming thread runs yet; their start publishes these.
        count_.store(0, std::memory_order_relaxed);
        max_queued_.store(0, std::memory_order_relaxed);
        dropped_.store(0, std::memory_order_relaxed);
        waits_full_.store(0, std::memory_order_relaxed);
        // relaxed, both: no streaming thread runs yet; their start publishes these.
        ended_.store(false, std::memory_order_relaxed);
        downstream_flow_.store(Flow::ok, std::memory_order_relaxed);
        reset_level();
        return {};
    }

    void stop() override {
        drain();
        producer_.reset();
        samples_.reset();
    }

    // Streaming threads parked: what was queued belongs to the old position. An end of stream
    // that reached the queue, or the end of the queue's thread, stays: the upstream thread that
    // sent it rests at its end, and only a seek carries it on (forget_end_of_stream, below).
    void flush() override {
        drain(true);
        reset_level();
    }

    // A seek after the upstream source's end, before the queue passed it on: the source goes on
    // from its new position, and so does the queue (a failure downstream stays). relaxed, all:
    // streaming threads are parked; the gate publishes these.
    void forget_end_of_stream() override {
        ended_.store(false, std::memory_order_relaxed);
        if (downstream_flow_.load(std::memory_order_relaxed) == Flow::end_of_stream)
            downstream_flow_.store(Flow::ok, std::memory_order_relaxed);
    }

    void unblock() override {
        room_.notify_all();
        queued_.notify_all();
    }

    // ---- The pushing side (upstream's streaming thread).

    Flow process(std::size_t, SampleRef&& s) override {
        for (;;) {
            const std::uint32_t ticket = room_.prepare_wait();
            // acquire: pairs with the queue thread's release store when it ended or failed.
            if (const Flow f = downstream_flow_.load(std::memory_order_acquire); f != Flow::ok) {
                count_drop();
                return f;
            }
            if (!full()) break;
            if (leaky_ == Leaky::upstream) return drop(std::move(s));
            if (leaky_ == Leaky::downstream) {
                SampleRef oldest;
                if (take(oldest)) {
                    // The level by time now starts about where the oldest ended; without it a
                    // queue full by time would drop everything. relaxed: an estimate.
                    if (oldest.stop_time() != kNoTime) out_start_ns_.store(oldest.stop_time(), std::memory_order_relaxed);
                    (void)drop(std::move(oldest));
                    continue;
                }
            }
            if (stop_token().stop_requested()) return Flow::stopped;
            if (flushing()) {
                s.reset();
                count_drop();
                return Flow::flushing;
            }
            // relaxed: a counter.
            waits_full_.fetch_add(1, std::memory_order_relaxed);
            room_.wait(ticket, -1, &stop_token());
        }
        const MediaTime end = s.stop_time();
        if (!samples_->try_enqueue(*producer_, std::move(s)))  // never allocates; cannot fail with room
            return drop(std::move(s));
        if (end != kNoTime) in_end_ns_.store(end, std::memory_order_relaxed);  // relaxed: a level estimate
        // relaxed: a count that bounds the queue; the queue itself hands the sample over and
        // orders it (moodycamel publishes what it enqueues to the thread that dequeues it).
        const std::int64_t now = count_.fetch_add(1, std::memory_order_relaxed) + 1;
        if (std::uint64_t(now) > max_queued_.load(std::memory_order_relaxed))  // relaxed: a statistic, one writer
            max_queued_.store(std::uint64_t(now), std::memory_order_relaxed);
        queued_.notify_one();
        return Flow::ok;
    }

    void end_of_stream(std::size_t) override {
        ended_.store(true, std::memory_order_release);  // release: every sample queued before it is seen
        queued_.notify_all();
    }

    // ---- The queue's own streaming thread.

    Flow produce() override {
        for (;;) {
            const std::uint32_t ticket = queued_.prepare_wait();
            SampleRef s;
            // acquire: a stream seen ended has every sample queued before the end visible.
            const bool ended = ended_.load(std::memory_order_acquire);
            if (take(s)) {
                // relaxed: a level estimate for the pushing side.
                if (s.start_time() != kNoTime) out_start_ns_.store(s.start_time(), std::memory_order_relaxed);
                room_.notify_one();
                const Flow f = push(0, std::move(s));
                if (f == Flow::end_of_stream || f == Flow::error) finish(f);
                return f;
            }
            if (ended) return finish(Flow::end_of_stream);
            if (stop_token().stop_requested()) return Flow::stopped;
            if (flushing()) return Flow::flushing;  // the graph parks this thread at its gate
            queued_.wait(ticket, -1, &stop_token());
        }
    }

    // ----

    bool take(SampleRef& s) noexcept {
        if (!samples_->try_dequeue(s)) return false;
        count_.fetch_sub(1, std::memory_order_relaxed);  // relaxed: see process()
        return true;
    }

    // Full by count, or by the time between the newest sample's end and the oldest's start (the
    // last one taken) once one is queued: a queue always takes one sample.
    bool full() const noexcept {
        // relaxed: see process(); a stale count only makes the pusher look again after the
        // wake-up the taker sends through room_ (an EventCount: the ticket orders it).
        const std::int64_t n = count_.load(std::memory_order_relaxed);
        if (n >= std::int64_t(capacity_)) return true;
        if (max_time_ns_ == 0 || n == 0) return false;
        // relaxed: an estimate; the count above is what bounds the pool.
        const std::int64_t in = in_end_ns_.load(std::memory_order_relaxed), out = out_start_ns_.load(std::memory_order_relaxed);
        return in != kNoTime && out != kNoTime && in - out >= max_time_ns_;
    }

    Flow drop(SampleRef&& s) noexcept {
        s.reset();
        count_drop();
        dropped_.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
        return Flow::ok;
    }

    // The queue's thread leaves: the pushing side hears why at its next sample (or wakes from a
    // wait for room that would never end).
    Flow finish(Flow f) noexcept {
        downstream_flow_.store(f, std::memory_order_release);  // release: see process()
        room_.notify_all();
        return f;
    }

    // Empties the queue; a flush counts what it drops, a stop does not (nothing was lost).
    void drain(bool count_drops = false) noexcept {
        if (!samples_) return;
        SampleRef s;
        while (take(s)) {
            s.reset();
            if (count_drops) count_drop();
        }
    }

    void reset_level() noexcept {
        // relaxed, both: streaming threads are parked or not started; the gate publishes these.
        in_end_ns_.store(kNoTime, std::memory_order_relaxed);
        out_start_ns_.store(kNoTime, std::memory_order_relaxed);
    }

    std::size_t max_buffers_ = 0;
    std::int64_t max_time_ns_ = 0;
    Leaky leaky_ = Leaky::no;
    std::size_t capacity_ = 2;  // samples queued at most (configure())

    std::unique_ptr<moodycamel::ConcurrentQueue<SampleRef>> samples_;
    // The pushing thread's, made in start() (allocates) so that try_enqueue never does. One
    // thread at a time pushes into an input.
    std::unique_ptr<moodycamel::ProducerToken> producer_;
    std::atomic<std::int64_t> count_{0};  // samples queued now; signed: a take may precede the count
    EventCount queued_;                   // a sample queued, the end, a flush, a stop: wakes the queue's thread
    EventCount room_;                     // a sample taken, the queue's thread ended, a flush, a stop: wakes the pusher
    std::atomic<bool> ended_{false};      // end of stream reached the queue
    std::atomic<Flow> downstream_flow_{Flow::ok};  // why the queue's thread ended (end_of_stream, error)
    std::atomic<std::int64_t> in_end_ns_{kNoTime};     // end of the newest sample queued
    std::atomic<std::int64_t> out_start_ns_{kNoTime};  // start of the last sample taken
    std::atomic<std::uint64_t> max_queued_{0}, dropped_{0}, waits_full_{0};
};

}  // namespace

NodeSpec queue_spec() {
    return {"queue", Node::Kind::transform,
            "a thread boundary: its own streaming thread pushes on what the upstream thread queues (zero copy)",
            {{"max-size-buffers", "0", "samples queued at most (0: as many as max-size-time holds, up to 4096)"},
             {"max-size-time", "1", "seconds queued at most, from the oldest sample's start to the newest's end (0: no limit)"},
             {"leaky", "no", "when full: make the upstream thread wait (no), drop the new sample (upstream) or the oldest (downstream)"}},
            factory<Queue>()};
}

}  // namespace sluice::nodes

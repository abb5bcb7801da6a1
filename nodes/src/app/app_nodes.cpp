// SPDX-License-Identifier: MIT
// appsrc and appsink (sluice/nodes/app.hpp): an app's threads on either end of a graph.
//
// Samples cross between the app and the streaming thread through moodycamel's ConcurrentQueue
// (the design card's lock-free queue) and wake-ups through EventCount (the project's one wait
// primitive). The streaming-thread side never locks or allocates: appsrc's produce() only
// dequeues; appsink's process() enqueues with try_enqueue on a producer token made in start(),
// into blocks preallocated for max-buffers samples. The app side may lock (a mutex orders an
// appsrc's pushes and their times against stop and flush) and allocate (a thread's first
// enqueue); both are off the streaming path.
#include "core/common.hpp"
#include "video/video_node.hpp"
#include <sluice/allocators/event_count.hpp>
#include <sluice/nodes/app.hpp>
#include <sluice/nodes/registry.hpp>

#include <concurrentqueue/concurrentqueue.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>

namespace sluice::nodes {

using engine::Flow;
using engine::GraphErrc;
using engine::MediaFormat;
using engine::SampleFormat;

namespace {

// Blocks a ConcurrentQueue needs so that `samples` fit in it with a producer token without ever
// allocating again: an explicit producer moves to a fresh block every BLOCK_SIZE items and can
// reuse a block only once it is empty, so one block more than the samples fill.
std::size_t queue_capacity(std::size_t samples) {
    constexpr std::size_t kBlock = moodycamel::ConcurrentQueueDefaultTraits::BLOCK_SIZE;
    return (samples / kBlock + 2) * kBlock;
}

std::int64_t deadline_after(std::chrono::milliseconds timeout) {
    return timeout.count() < 0 ? -1 : detail::steady_now_ns() + std::int64_t(timeout.count()) * 1'000'000;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// appsrc

struct AppSrc::Queue {
    explicit Queue(std::size_t buffers) : samples(queue_capacity(buffers)) {}
    moodycamel::ConcurrentQueue<SampleRef> samples;
    EventCount queued;  // a sample or the end was queued; the graph flushes or stops

    // The app's side, under app_mutex: pushes are ordered (their times follow one another) and
    // never slip past a stop or a flush that drains the queue.
    std::mutex app_mutex;
    bool accepting = false;  // the graph is paused or running (start() to stop)
    bool ended = false;      // end_of_stream() was called
    // Times are counted in frames from the last time the app gave (0 at first), so that they
    // add up exactly (256 frames at 48 kHz are not a whole number of ns).
    std::int64_t base_pts = 0;
    std::uint64_t frames_since_base = 0;
    bool first = true;

    // release: set after the last sample was queued, so produce() that sees it (acquire) finds
    // every sample pushed before it.
    std::atomic<bool> end_queued{false};
    std::atomic<bool> stream_over{false};  // produce() ended the stream at the media duration
};

AppSrc::AppSrc(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
    const std::size_t format = r.choice("format", {"s16", "s24", "s32", "f32", "i420", "rgba"});
    max_buffers_ = std::size_t(r.integer("max-buffers", 1, 1024));
    if (format < 4) {
        constexpr SampleFormat kFormats[] = {SampleFormat::s16, SampleFormat::s24, SampleFormat::s32, SampleFormat::f32};
        format_ = MediaFormat::audio(int(r.integer("rate", 1, 384000)), int(r.integer("channels", 1, 64)), kFormats[format]);
        frames_ = std::size_t(r.integer("frames", 1, 1 << 20));
    } else {
        const auto width = r.integer("width", 1, detail::kMaxDimension);
        const auto height = r.integer("height", 1, detail::kMaxDimension);
        detail::check_area(r, width, height);
        const std::string fps = r.text("fps");
        const auto rate = detail::parse_rate(fps);
        if (!rate)
            r.fail(make_error_code(GraphErrc::invalid_argument),
                   "property fps='" + detail::printable(fps) + "' is not a frame rate like 30 or 30000/1001");
        const auto pixels = format == 4 ? engine::PixelFormat::i420 : engine::PixelFormat::rgba;
        format_ = MediaFormat::video(int(width), int(height), pixels, rate.value_or(engine::Fraction{30, 1}));
        format_.matrix = engine::ColourMatrix::bt601;
        format_.range = engine::is_rgb(pixels) ? engine::ColourRange::full : engine::ColourRange::limited;
    }
    queue_ = std::make_unique<Queue>(r.ok() ? max_buffers_ : 1);
    add_output("src", {format_});
}

AppSrc::~AppSrc() = default;

std::size_t AppSrc::buffer_bytes() const noexcept {
    return format_.kind == engine::MediaKind::audio ? frames_ * format_.frame_bytes() : format_.frame_bytes();
}

// The app's max-buffers and the one the streaming thread is pushing, and no spares. The pool
// had max-buffers and two spares, one of which the streaming thread's sample always took; the
// other let the app queue one sample more than max-buffers ahead of its next, which in a live
// app is latency (a 64-frame buffer's 1.33 ms of round trip through JACK: bench/README.md,
// "Session 16").
engine::BufferNeeds AppSrc::output_buffers(std::size_t) const { return {buffer_bytes(), max_buffers_ + 1, true}; }

void AppSrc::drain() noexcept {
    SampleRef s;
    while (queue_->samples.try_dequeue(s)) s.reset();
}

Status AppSrc::start() {
    std::lock_guard lock(queue_->app_mutex);
    drain();
    queue_->accepting = true;
    queue_->ended = false;
    queue_->base_pts = 0;
    queue_->frames_since_base = 0;
    queue_->first = true;
    queue_->end_queued.store(false, std::memory_order_relaxed);  // relaxed: no streaming thread yet
    queue_->stream_over.store(false, std::memory_order_relaxed);  // relaxed: as above
    return {};
}

void AppSrc::unblock() {
    if (stop_token().stop_requested()) {  // stopping (not flushing): the app's pushes are refused from now
        std::lock_guard lock(queue_->app_mutex);
        queue_->accepting = false;
    }
    queue_->queued.notify_all();
}

void AppSrc::stop() {
    std::lock_guard lock(queue_->app_mutex);
    queue_->accepting = false;
    drain();
}

void AppSrc::flush() {
    std::lock_guard lock(queue_->app_mutex);
    drain();
    queue_->first = true;  // the next sample starts a new run: a discontinuity
}

Flow AppSrc::produce() {
    Queue& q = *queue_;
    for (;;) {
        const std::uint32_t ticket = q.queued.prepare_wait();
        SampleRef s;
        if (q.samples.try_dequeue(s)) {
            if (limit_reached(limit_, s.start_time())) {  // the graph's media duration: the stream is over
                q.stream_over.store(true, std::memory_order_relaxed);  // relaxed: a flag push() reads; nothing rides on it
                return Flow::end_of_stream;
            }
            return Node::push(0, std::move(s));
        }
        if (q.end_queued.load(std::memory_order_acquire)) {  // acquire: see the release in end_of_stream()
            if (q.samples.try_dequeue(s)) return Node::push(0, std::move(s));
            return Flow::end_of_stream;
        }
        if (stop_token().stop_requested()) return Flow::stopped;
        if (flushing()) return Flow::flushing;
        q.queued.wait(ticket, -1, &stop_token());
    }
}

Result<SampleRef> AppSrc::get_buffer(std::chrono::milliseconds timeout, const std::stop_token& stop) noexcept {
    SampleAllocator& pool = output(0).allocator();
    if (timeout.count() < 0) return pool.get_buffer(stop, name().c_str());
    return pool.get_buffer(stop, timeout, name().c_str());
}

Status AppSrc::push(SampleRef sample, std::int64_t pts) {
    if (!sample) return {GraphErrc::invalid_argument, name() + ": push of an empty sample"};
    const std::size_t size = sample.size();
    const bool audio = format_.kind == engine::MediaKind::audio;
    std::uint64_t frames = 1;  // a picture
    if (audio) {
        const std::size_t frame = format_.frame_bytes();
        if (size == 0 || size % frame != 0)
            return {GraphErrc::invalid_argument, name() + ": a sample of " + std::to_string(size) +
                                                     " bytes is not a whole number of " + std::to_string(frame) + "-byte frames"};
        frames = size / frame;
    } else if (size != format_.frame_bytes()) {
        return {GraphErrc::invalid_argument, name() + ": a sample of " + std::to_string(size) + " bytes is not one " +
                                                 std::to_string(format_.frame_bytes()) + "-byte picture"};
    }
    auto time_at = [&](std::int64_t base, std::uint64_t n) {
        return base + (audio ? engine::frames_to_ns(n, format_.rate) : detail::frame_start(format_.fps, n));
    };
    if (pts != kNoTime && pts < 0) return {GraphErrc::invalid_argument, name() + ": a negative time (" + std::to_string(pts) + " ns)"};
    Queue& q = *queue_;
    std::lock_guard lock(q.app_mutex);
    if (q.ended) return {GraphErrc::bad_state, name() + ": push after end_of_stream()"};
    if (q.stream_over.load(std::memory_order_relaxed))  // relaxed: see produce()
        return {GraphErrc::bad_state, name() + ": the stream has ended (the graph's media duration)"};
    if (!q.accepting) return {make_error_code(Errc::not_committed), name() + ": push while the graph is stopped"};
    if (pts != kNoTime) {
        q.base_pts = pts;
        q.frames_since_base = 0;
    }
    const std::int64_t start = time_at(q.base_pts, q.frames_since_base);
    sample.set_times(start, time_at(q.base_pts, q.frames_since_base + frames));
    sample.set_flags(q.first ? SampleFlags::discontinuity : SampleFlags::none);
    if (!q.samples.enqueue(std::move(sample)))  // may allocate: the app's thread, not a streaming one
        return {make_error_code(Errc::out_of_memory), name() + ": no memory to queue the sample"};
    q.first = false;
    q.frames_since_base += frames;
    q.queued.notify_one();
    return {};
}

Status AppSrc::push(std::span<const std::byte> data, std::int64_t pts, std::chrono::milliseconds timeout) {
    if (data.size() > buffer_bytes())
        return {GraphErrc::invalid_argument, name() + ": " + std::to_string(data.size()) + " bytes do not fit a " +
                                                 std::to_string(buffer_bytes()) + "-byte buffer"};
    auto s = get_buffer(timeout);
    if (!s) return {s.error(), name() + ": no buffer to fill: " + s.error().message()};
    std::memcpy(s->data(), data.data(), data.size());
    (void)s->set_size(data.size());  // fits: checked above
    return push(std::move(*s), pts);
}

Status AppSrc::end_of_stream() {
    Queue& q = *queue_;
    std::lock_guard lock(q.app_mutex);
    if (q.ended) return {GraphErrc::bad_state, name() + ": end_of_stream() called twice"};
    if (!q.accepting) return {make_error_code(Errc::not_committed), name() + ": end_of_stream() while the graph is stopped"};
    q.ended = true;
    q.end_queued.store(true, std::memory_order_release);  // release: see produce()
    q.queued.notify_all();
    return {};
}

// ---------------------------------------------------------------------------------------------
// appsink

struct AppSink::Queue {
    explicit Queue(std::size_t buffers) : samples(queue_capacity(buffers)) {}
    moodycamel::ConcurrentQueue<SampleRef> samples;
    // The streaming thread's, made in start() (allocates) so that try_enqueue never does. One
    // thread at a time uses it: process() of one input never runs concurrently with itself.
    std::unique_ptr<moodycamel::ProducerToken> producer;
    // Samples queued now. Signed: a pull may take a sample before process() counted it.
    std::atomic<std::int64_t> count{0};
    EventCount queued;  // a sample queued, the end, a stop: wakes pull()
    EventCount taken;   // the app took a sample, a flush, a stop: wakes process() waiting for room
    std::atomic<bool> running{false};  // between start() and a stop
    std::atomic<bool> ended{false};    // end of stream reached the sink
    std::atomic<std::uint64_t> dropped{0};
};

AppSink::AppSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
    max_buffers_ = std::size_t(r.integer("max-buffers", 1, 1024));
    drop_ = r.flag("drop");
    set_clocked(r.flag("sync"));
    queue_ = std::make_unique<Queue>(r.ok() ? max_buffers_ : 1);
    add_input("sink", {MediaFormat::audio(), MediaFormat::video()});
}

AppSink::~AppSink() = default;

// The queue, and one more sample in the app's hand, so that a pool upstream sized for the graph
// never runs dry while the app holds what it pulled last.
std::size_t AppSink::holds(std::size_t) const { return max_buffers_ + 1; }

void AppSink::drain() noexcept {
    SampleRef s;
    while (queue_->samples.try_dequeue(s)) {
        s.reset();
        queue_->count.fetch_sub(1, std::memory_order_relaxed);  // relaxed: a count; the queue orders the samples
    }
}

Status AppSink::start() {
    drain();
    queue_->producer = std::make_unique<moodycamel::ProducerToken>(queue_->samples);
    // relaxed, all: no streaming thread runs yet, and the thread start publishes them to it; an
    // app thread sees `running` through its acquire load in pull().
    queue_->count.store(0, std::memory_order_relaxed);
    queue_->ended.store(false, std::memory_order_relaxed);
    queue_->dropped.store(0, std::memory_order_relaxed);
    queue_->running.store(true, std::memory_order_release);  // release: pull() may start waiting
    return {};
}

void AppSink::unblock() {
    if (stop_token().stop_requested()) queue_->running.store(false, std::memory_order_release);  // release: pull() sees it
    queue_->taken.notify_all();
    queue_->queued.notify_all();
}

void AppSink::stop() {
    queue_->running.store(false, std::memory_order_release);  // release: as in unblock()
    drain();
    queue_->queued.notify_all();
}

void AppSink::flush() {
    drain();
    queue_->taken.notify_all();
}

Flow AppSink::process(std::size_t, SampleRef&& s) {
    if (Flow f = present(s); f != Flow::ok) return f;
    Queue& q = *queue_;
    const auto max = std::int64_t(max_buffers_);
    for (;;) {
        const std::uint32_t ticket = q.taken.prepare_wait();
        // acquire: pairs with pull()'s release decrement, so the slot it freed is free.
        if (q.count.load(std::memory_order_acquire) < max) break;
        if (drop_) {
            SampleRef oldest;
            if (q.samples.try_dequeue(oldest)) {
                q.count.fetch_sub(1, std::memory_order_relaxed);  // relaxed: as in drain()
                q.dropped.fetch_add(1, std::memory_order_relaxed);  // relaxed: a counter
                count_drop();
                continue;  // `oldest` goes back to its pool here
            }
        }
        if (stop_token().stop_requested()) return Flow::stopped;
        if (flushing()) {
            count_drop();
            return Flow::flushing;
        }
        q.taken.wait(ticket, -1, &stop_token());
    }
    if (!q.samples.try_enqueue(*q.producer, std::move(s))) {  // never allocates; cannot fail with room
        count_drop();
        return Flow::ok;
    }
    q.count.fetch_add(1, std::memory_order_release);  // release: pairs with the acquire above
    q.queued.notify_one();
    return Flow::ok;
}

void AppSink::end_of_stream(std::size_t input) {
    queue_->ended.store(true, std::memory_order_release);  // release: every sample queued before it is seen
    queue_->queued.notify_all();
    Node::end_of_stream(input);
}

AppSink::Pulled AppSink::pull(std::chrono::milliseconds timeout) noexcept {
    Queue& q = *queue_;
    const std::int64_t deadline = deadline_after(timeout);
    for (;;) {
        const std::uint32_t ticket = q.queued.prepare_wait();
        SampleRef s;
        bool got = q.samples.try_dequeue(s);
        // acquire: a stream seen ended has every sample queued before the end visible.
        if (!got && q.ended.load(std::memory_order_acquire)) {
            got = q.samples.try_dequeue(s);
            if (!got) return Pulled(make_error_code(GraphErrc::end_of_stream));
        }
        if (got) {
            q.count.fetch_sub(1, std::memory_order_release);  // release: process() may queue the next
            q.taken.notify_one();
            return Pulled(std::move(s));
        }
        if (!q.running.load(std::memory_order_acquire)) return Pulled(make_error_code(Errc::not_committed));  // acquire: see start()
        if (deadline >= 0 && detail::steady_now_ns() >= deadline) return Pulled(make_error_code(Errc::timeout));
        q.queued.wait(ticket, deadline);
    }
}

std::uint64_t AppSink::dropped() const noexcept {
    return queue_->dropped.load(std::memory_order_relaxed);  // relaxed: a counter
}

std::vector<std::pair<std::string, std::uint64_t>> AppSink::extra_stats() const {
    const std::int64_t queued = queue_->count.load(std::memory_order_relaxed);  // relaxed: a snapshot
    return {{"dropped", dropped()}, {"queued", std::uint64_t(std::max<std::int64_t>(queued, 0))}};
}

// ---------------------------------------------------------------------------------------------

AppSrc* appsrc(engine::Graph& graph, std::string_view name) noexcept { return dynamic_cast<AppSrc*>(graph.find(name)); }
AppSink* appsink(engine::Graph& graph, std::string_view name) noexcept { return dynamic_cast<AppSink*>(graph.find(name)); }

NodeSpec appsrc_spec() {
    return {"appsrc", Node::Kind::source,
            "samples an app makes: it takes buffers from the node's pool, fills and pushes them (sluice/nodes/app.hpp)",
            {{"format", "s16", "s16|s24|s32|f32 (audio) or i420|rgba (video)"},
             {"rate", "48000", "audio: sample rate in Hz"},
             {"channels", "2", "audio: channel count"},
             {"frames", "1024", "audio: frames per buffer (the most a push may carry)"},
             {"width", "320", "video: picture width in pixels"},
             {"height", "240", "video: picture height in pixels"},
             {"fps", "30", "video: frames per second, or a fraction like 30000/1001"},
             {"max-buffers", "4", "buffers the app may hold or have queued at once"}},
            factory<AppSrc>()};
}

NodeSpec appsink_spec() {
    return {"appsink", Node::Kind::render,
            "hands rendered samples to an app, which pulls them (sluice/nodes/app.hpp)",
            {{"max-buffers", "4", "samples waiting for the app at most"},
             {"drop", "false", "when full, drop the oldest (true) or make the stream wait (false)"},
             {"sync", "false", "present each sample at its time on the graph's clock first"}},
            factory<AppSink>()};
}

}  // namespace sluice::nodes

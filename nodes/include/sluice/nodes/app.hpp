// SPDX-License-Identifier: MIT
#pragma once

// appsrc and appsink: an app's own threads feeding samples into a graph and taking rendered
// samples out, as GStreamer apps do with appsrc and appsink, with the allocator's contract all
// the way to the app thread.
//
//   Graph g;
//   build_pipeline(g, "appsrc name=in format=f32 rate=48000 channels=1 ! gain db=-6 ! appsink name=out");
//   AppSrc& in = *nodes::appsrc(g, "in");
//   AppSink& out = *nodes::appsink(g, "out");
//   g.run();
//   auto s = in.get_buffer();                 // a buffer of the graph's pool (blocks while all are out)
//   fill(s->data(), ...); s->set_size(n);
//   in.push(std::move(*s), pts_ns);           // on its way; the streaming thread takes it from here
//   in.end_of_stream();
//   while (auto r = out.pull(1s)) use(*r);    // the rendered SampleRef itself, no copy
//   // r.error(): GraphErrc::end_of_stream, Errc::timeout, or Errc::not_committed (stopped)
//
// The contract the allocator gives a streaming thread reaches the app's thread: an app blocked in
// AppSrc::get_buffer or AppSink::pull returns Errc::not_committed at once when the graph stops.
// Samples the app holds (taken with get_buffer and not pushed, or pulled) are its own until it
// drops them; Graph::stop() waits for them (its stop_stuck event names the node), so release them
// before stopping. What the app does never runs on a streaming thread, and the streaming threads
// take no lock and allocate nothing for it: samples cross through lock-free queues (moodycamel's
// ConcurrentQueue) and wake-ups through the project's EventCount.
//
// Threading: every method may be called from any thread that is not a streaming thread.

#include <sluice/allocators/result.hpp>
#include <sluice/allocators/sample.hpp>
#include <sluice/engine/format.hpp>
#include <sluice/engine/graph.hpp>
#include <sluice/engine/node.hpp>
#include <sluice/engine/status.hpp>
#include <sluice/nodes/registry.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <stop_token>
#include <string>
#include <string_view>

namespace sluice::nodes {

inline constexpr std::chrono::milliseconds kForever{-1};

// appsrc: a source whose samples the app makes. Its format is fixed by its properties (`format=`
// s16|s24|s32|f32 with rate, channels and frames per buffer; or i420|rgba with width, height and
// fps); `max-buffers=` is how many buffers its pool lends the app at once, besides the one its
// streaming thread is pushing and what the graph holds downstream (no spares: each would be one
// more sample queued ahead of the app's next).
class AppSrc : public engine::Node {
public:
    AppSrc(std::string name, PropertyReader& r);
    ~AppSrc() override;

    // The format of the samples pushed. Any thread.
    const engine::MediaFormat& format() const noexcept { return format_; }
    // Bytes a buffer holds: `frames` frames of audio, or one picture.
    std::size_t buffer_bytes() const noexcept;

    // A free buffer of this node's pool to fill, waiting while all are out. Errors:
    // Errc::not_committed (the graph is stopped, or stops while waiting), Errc::timeout,
    // Errc::cancelled (`stop` was requested). kForever: no timeout.
    Result<SampleRef> get_buffer(std::chrono::milliseconds timeout = kForever, const std::stop_token& stop = {}) noexcept;
    // Queues a filled buffer (its size() the bytes filled: whole audio frames, or exactly one
    // picture) starting at media time `pts` in ns; kNoTime continues where the previous sample
    // stopped (0 for the first). The stop time follows from the size (audio) or fps (video).
    // Takes the sample whatever happens. Errors: after end_of_stream(), the graph stopped, a size
    // that is not whole audio frames or exactly one picture.
    Status push(SampleRef sample, std::int64_t pts = kNoTime);
    // Copies `data` into a buffer (waiting for one as get_buffer does) and pushes it. Errors as
    // push and get_buffer, and data larger than a buffer.
    Status push(std::span<const std::byte> data, std::int64_t pts = kNoTime, std::chrono::milliseconds timeout = kForever);
    // Ends the stream once the samples queued have gone. Errors: already ended, not running.
    Status end_of_stream();

    struct Queue;  // the samples pushed, on their way to the streaming thread

private:
    engine::BufferNeeds output_buffers(std::size_t) const override;
    Status start() override;
    void stop() override;
    void flush() override;
    void unblock() override;
    engine::Flow produce() override;
    void drain() noexcept;

    engine::MediaFormat format_;
    std::size_t frames_ = 1024;
    std::size_t max_buffers_ = 4;
    engine::StreamLimit limit_;  // the graph's media duration only
    std::unique_ptr<Queue> queue_;
};

// appsink: a render that hands each sample to the app. Up to `max-buffers=` samples wait for
// pull(); when that many wait, `drop=true` drops the oldest, `drop=false` (the default) makes the
// stream wait for the app, as a slow device would. `sync=true` presents each at its time on the
// graph's clock first.
class AppSink : public engine::Node {
public:
    AppSink(std::string name, PropertyReader& r);
    ~AppSink() override;

    // What pull() came to: a sample, or why there is none (used like a Result: `if (auto s =
    // sink.pull()) use(*s); else if (s.error() == GraphErrc::end_of_stream) ...`).
    class Pulled {
    public:
        explicit Pulled(SampleRef s) noexcept : sample_(std::move(s)) {}
        explicit Pulled(std::error_code e) noexcept : error_(e) {}
        explicit operator bool() const noexcept { return !error_; }
        SampleRef& operator*() noexcept { return sample_; }
        SampleRef* operator->() noexcept { return &sample_; }
        std::error_code error() const noexcept { return error_; }

    private:
        SampleRef sample_;
        std::error_code error_;
    };

    // The next sample, waiting up to `timeout` (kForever: no limit). The SampleRef is the one the
    // graph rendered (no copy); its buffer goes back to its pool when the app drops it. Errors:
    // engine::GraphErrc::end_of_stream (every sample pulled and the stream ended),
    // Errc::not_committed (the graph is stopped, or stops while waiting), Errc::timeout.
    Pulled pull(std::chrono::milliseconds timeout = kForever) noexcept;
    // The format of the samples, fixed once the graph is prepared.
    const engine::MediaFormat& format() const noexcept { return input(0).format(); }
    // Samples dropped because the app was slow (drop=true). Any thread.
    std::uint64_t dropped() const noexcept;

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override;

    struct Queue;  // the samples rendered, waiting for pull()

private:
    std::size_t holds(std::size_t) const override;
    Status start() override;
    void stop() override;
    void flush() override;
    void unblock() override;
    engine::Flow process(std::size_t, SampleRef&& s) override;
    void end_of_stream(std::size_t input) override;
    void drain() noexcept;

    std::size_t max_buffers_ = 4;
    bool drop_ = false;
    std::unique_ptr<Queue> queue_;
};

// The appsrc or appsink named `name` in `graph`, or nullptr (no such node, or another type).
AppSrc* appsrc(engine::Graph& graph, std::string_view name) noexcept;
AppSink* appsink(engine::Graph& graph, std::string_view name) noexcept;

}  // namespace sluice::nodes

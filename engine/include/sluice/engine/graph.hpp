// SPDX-License-Identifier: MIT
#pragma once

// Graph: owns nodes, links their pins, negotiates formats and pools, runs one streaming thread
// per source, and stops deterministically.
//
//   sluice::engine::Graph g;
//   auto& src = g.add<MySource>("src");
//   auto& out = g.add<MyRender>("out");
//   if (auto st = g.connect(src, out); !st) return fail(st);
//   if (auto st = g.run(); !st) return fail(st);
//   g.wait_until_ended(std::chrono::seconds(10));   // end of stream, an error, or the timeout
//   if (auto st = g.stop(); !st) return fail(st);   // a file that could not be finished
//
// States: stopped -> paused -> running, and back. pause() from stopped prepares the graph,
// commits every pool and starts the streaming threads parked; run() lets them flow and starts the
// clock. stop() is deterministic:
//   1. decommit every pool: a streaming thread blocked in get_buffer (or about to be) gets
//      not_committed and leaves its loop; clock waits and paused threads are released;
//   2. join the streaming threads;
//   3. nodes' stop(): renders drop held samples, files are finished;
//   4. wait for the samples still out; past a threshold, post a `stop_stuck` event listing from
//      the pools' ownership ledgers which node holds which sample and for how long.
// Errors from streaming threads, end of stream, warnings and state changes are posted as Events
// that the app polls (poll_event / wait_event); none is swallowed.
//
// Threading: every method may be called from any thread except a streaming thread (stop() from a
// streaming thread returns engine::GraphErrc::bad_state rather than deadlock). Concurrent calls serialize;
// stop() called twice, or from two threads at once, stops once.

#include <sluice/engine/node.hpp>
#include <sluice/engine/ptp_clock.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::engine {

enum class State { stopped, paused, running };
const char* to_string(State s) noexcept;

struct PoolReport {
    std::string pin;  // "node.pin" whose pool it is
    AllocatorProperties properties;
    AllocatorStats stats;
    std::size_t needed = 0;  // buffers the graph may hold at once from this pool
};

// One link, as negotiated: "node.pin" to "node.pin" and the format agreed on it.
struct LinkReport {
    std::string from;
    std::string to;
    MediaFormat format;
};

// Everything about one node: who it is, its counters and its own, and its outgoing links.
struct NodeReport {
    std::string name;
    std::string type;  // the registry's type name ("tone"), or empty for a node built by hand
    Node::Kind kind = Node::Kind::transform;
    NodeStats stats;
    std::vector<std::pair<std::string, std::uint64_t>> extras;  // Node::extra_stats()
    std::vector<LinkReport> links;                              // one per linked output
};

struct GraphStats {
    State state = State::stopped;
    std::int64_t running_time_ns = 0;
    std::vector<NodeReport> nodes;  // in the order they were added
    std::vector<PoolReport> pools;
    std::chrono::nanoseconds last_stop{0};  // how long the last stop() took
    // What the clock follows: "system" (the steady clock), or the render whose device is the
    // master (Node::device_time), and how much faster that device runs than the system clock.
    std::string clock = "system";
    double clock_drift_ppm = 0;
    std::optional<PtpState> ptp;  // when the clock is "ptp": what ptp4l said last

    const NodeReport* node(std::string_view name) const noexcept;
};

class Graph {
public:
    Graph();
    Graph(const Graph&) = delete;
    Graph& operator=(const Graph&) = delete;
    ~Graph();  // stops

    // Adds a node; the graph owns it. Names must be unique within a graph (prepare() checks).
    Node& add(std::unique_ptr<Node> node);
    template <class N, class... Args>
    N& add(Args&&... args) {
        return static_cast<N&>(add(std::make_unique<N>(std::forward<Args>(args)...)));
    }
    Node* find(std::string_view name) const noexcept;
    std::vector<Node*> nodes() const;

    // Links the next unlinked output of `from` whose media kind fits (a demuxer's video to a
    // video render) to the next unlinked input of `to` (or one `to` adds, as a mixer does), or
    // the pins named (an empty name picks as above), or the given pins. Fails at once on unknown
    // or taken pins and on media kinds that can never meet; formats are agreed by prepare().
    // Stopped state only.
    Status connect(Node& from, Node& to);
    Status connect(Node& from, std::string_view from_pin, Node& to, std::string_view to_pin);
    Status connect(OutputPin& from, InputPin& to);

    // Checks that every pin is linked and there is no cycle, agrees a format on every link, sizes
    // every pool and refuses pools that could run dry with every holder waiting (naming the path).
    // Stopped state only; pause() and run() call it when needed.
    Status prepare();

    // From stopped, pause() prepares, commits every pool, starts every node and every source's
    // streaming thread, and returns when each thread has its priority and waits at the gate
    // (at most 2 s, then a warning event), so that run() starts the clock with every thread
    // ready. run() pauses first when stopped, then starts the clock and opens the gate. A thread
    // the system refuses (its thread or address-space limit) is an error returned, never an
    // exception: the graph is stopped again as it was.
    // Preroll: when every source is a file (Node::seekable) and some render is clocked, run()
    // from stopped opens the gate with the clock standing at 0, and the clock starts (on the
    // engine's own thread; run() does not wait) once every streaming thread that feeds a
    // clocked render has brought its first sample there or its end, or after 1 s, as a
    // GStreamer pipeline prerolls its sinks: the first pictures of a movie are on time, not late
    // by the decoder's start. A seek does the same at its new position. A graph with a live
    // source (one that cannot seek) starts its clock at once.
    Status pause();
    Status run();
    Status stop();
    // Drops every sample in flight (held by renders, queued, being pushed) and resets nodes,
    // without changing the state.
    Status flush();
    // Flushes, then moves every seekable source (files) to `media_ns` and the clock with them;
    // renders see a discontinuity (and the clock waits for them: see Preroll above). While
    // playing (not yet while paused), and before the end of a
    // stream has gone past the queues: a source that ended rests, and a seek while its end is
    // still in a queue (the queue's thread pushing on what came before it) carries it on. Errors:
    // the stream has ended (a render, or a node without a streaming thread of its own, has its
    // end), a streaming thread left after an error, no source can seek, a source's own seek
    // failed (the graph is then flushed where it was).
    Status seek(std::int64_t media_ns);
    State state() const noexcept;

    // Properties by node name and key, values as a pipeline writes them. set_property changes a
    // live property (the registry's PropertySpec::live; sluice-play --list marks them) in any
    // state: the node's streaming thread applies it at its next buffer, through a lock-free
    // mailbox (no lock, no allocation there). Refused with a one-line message: an unknown node
    // or property, a value out of range, a property that is not live (fixed when the node is
    // made). property() reads the current value back. Any thread but a streaming thread.
    Status set_property(std::string_view node, std::string_view key, std::string_view value);
    Status property(std::string_view node, std::string_view key, std::string& value) const;

    // The clock follows PTP time as linuxptp's ptp4l keeps it (ptp_clock.hpp says how): running
    // time at PTP's pace, and Clock::tai_ns(), from which AES67 senders take RTP time, is PTP
    // time. It takes precedence over a device render's clock. Waits until ptp4l follows a
    // grandmaster (options.wait); refused with one line when no ptp4l answers or none is found.
    // Stopped state only.
    Status follow_ptp(const PtpOptions& options = {});

    // Sources end their streams once their media time reaches `ns` (-1: no limit).
    void set_media_duration(std::int64_t ns) noexcept;
    std::int64_t media_duration() const noexcept;
    // Stops the graph `d` of wall time after run() (an Asio timer on the engine's io_context).
    void stop_after(std::chrono::nanoseconds d);
    // Calls `tick` every `interval` on the engine's timer thread while the graph is not stopped
    // (progress displays). Replaces any earlier ticker.
    void set_ticker(std::chrono::milliseconds interval, std::function<void()> tick);
    // How long stop() waits for held samples before it posts the ledger (default 500 ms), and
    // before it gives up waiting and returns with them still out (default 5 s).
    void set_stop_thresholds(std::chrono::milliseconds report, std::chrono::milliseconds give_up) noexcept;
    // What to suggest when an output's formats and its peer's cannot meet, e.g. "put
    // 'audioresample rate=44100' between them": appended to prepare()'s error. The engine knows
    // no node types; the node library (build_pipeline) or the app supplies this. Control thread.
    using FormatAdvisor = std::function<std::string(const MediaFormat& offered, const FormatSet& accepted)>;
    void set_format_advisor(FormatAdvisor advisor);

    std::optional<Event> poll_event();
    std::optional<Event> wait_event(std::chrono::milliseconds timeout);
    // Events without polling. With a callback set, each event is handed to it on the engine's
    // own io thread (the one that runs timers; never a streaming thread), in order, instead of
    // being queued: keep it short, and never call stop() or wait_* from it. An empty function
    // queues again. Exceptions it throws are dropped. It may run until the graph is destroyed
    // (stop() posts events too): what it touches must outlive the graph.
    void set_event_callback(std::function<void(const Event&)> callback);
    // An eventfd that becomes readable when an event is queued (events queued before the first
    // call count too), for an Asio, GLib or poll() loop: when readable, read its 8 bytes to
    // reset it, then poll_event() until nothing is left. Owned by the graph; do not close it.
    // -1 when the system has no eventfd left.
    int event_fd();
    // Waits until every render has seen end of stream, an error is posted, or `timeout`.
    // Returns true on end of stream.
    bool wait_until_ended(std::chrono::milliseconds timeout);
    bool ended() const noexcept;

    GraphStats stats() const;
    // The graph in Graphviz's DOT language: nodes (name and type), links (pins, the negotiated
    // format, the pool's buffers and their size once prepared). Control thread; allocates.
    // `dot -Tsvg` draws it; sluice-play --dot FILE writes it.
    std::string to_dot() const;
    Clock& clock() noexcept;

private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

}  // namespace sluice::engine

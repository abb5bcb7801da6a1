// SPDX-License-Identifier: MIT
#pragma once

// Graph's private state (graph.cpp). To its nodes it is a NodeHost, and nothing else.

#include <sluice/engine/graph.hpp>

#include <asio/io_context.hpp>
#include <asio/steady_timer.hpp>
#include <asio/executor_work_guard.hpp>

#include <atomic>
#include <functional>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

namespace sluice::engine {

struct Graph::Impl final : NodeHost {
    // Gate values: sources flow only while it is kOpen.
    static constexpr std::uint32_t kClosed = 0, kOpen = 1, kStopping = 2;

    Graph& self;
    std::vector<std::unique_ptr<Node>> nodes;
    // The nodes' names as the pools' ledgers hold them (SampleRef::set_holder): owned here, so
    // they outlive the nodes while the graph is destroyed, renders first.
    std::deque<std::string> holder_names;

    // Serializes state changes (prepare, pause, run, stop, flush). Never taken by streaming code.
    std::mutex control;
    std::atomic<State> state{State::stopped};
    std::vector<Node*> order;  // sources first, every node after all its upstream nodes
    Node* clock_master = nullptr;  // the render whose device the clock follows; control thread
    std::unique_ptr<PtpClock> ptp;  // follow_ptp(): the clock follows PTP time instead; control thread
    int priority_ceiling_of(const Node& node) const;  // see Node::priority_ceiling
    bool feeds_clocked_render(const Node& node) const;  // see preroll_feeders
    std::map<const OutputPin*, std::size_t> needed;  // buffers each pool may have out at once
    std::size_t render_inputs = 0;

    // Streaming.
    std::vector<std::jthread> threads;
    std::stop_source stop_source{std::nostopstate};
    std::stop_token stop_token;  // copy of stop_source's token, read by streaming threads
    // Parks every streaming thread at the gate, flushes every node, runs `while_parked` (no
    // node code runs meanwhile), and reopens the gate as it was. `before_flush`, when given,
    // runs once every thread is parked and may refuse: then no node is flushed (a sample being
    // pushed or waiting on the clock as the threads parked is dropped all the same). `what` names the
    // caller in errors. Control thread, `control` held.
    Status flush_parked(const char* what, const std::function<Status()>& while_parked,
                        const std::function<Status()>& before_flush = {});

    std::atomic<std::uint32_t> gate{kClosed};
    std::atomic<std::uint32_t> parked{0};  // streaming threads waiting at the gate, or resting (rest())
    std::atomic<std::uint32_t> active{0};  // streaming threads still in their loop (resting ones too)
    // Bumped by a seek that carries on the streams of resting threads, and by stop: wakes them.
    std::atomic<std::uint32_t> resumes{0};
    // An end of stream reached a node with no streaming thread of its own (a render, a mixer):
    // a seek can no longer carry the stream on. Set by the thread that sends the end.
    std::atomic<bool> ended_past_queues{false};
    std::atomic<bool> flushing{false};
    std::atomic<std::uint32_t> render_inputs_ended{0};
    std::atomic<bool> ended{false};
    std::atomic<bool> failed{false};
    std::atomic<std::int64_t> media_limit{-1};
    Clock clock;

    // Preroll. In a graph whose every source is a file (seekable), run() from stopped and each
    // seek hold the clock until every streaming thread that feeds a clocked render has brought
    // its first sample there (or its end), at most kPrerollBound, as a GStreamer pipeline
    // prerolls its sinks before its clock runs: the first pictures of a movie are then on time
    // instead of late by the decoder's start (24-36 ms at start, up to 107 ms after a seek).
    // A source that cannot seek is live: its graph's clock starts at once, as before.
    static constexpr std::chrono::milliseconds kPrerollBound{1000};
    // The streaming threads' nodes (sources, queues) whose threads feed a clocked render
    // without another streaming thread between: the threads preroll waits for. One thread that
    // feeds two renders brings a sample to only one of them (it then waits there), so it counts
    // once. Set by pause_locked() before the threads start; read-only while they run.
    std::vector<const Node*> preroll_feeders;
    bool fresh_start = false;  // paused from stopped, not yet run: run() prerolls. `control`
    std::atomic<bool> prerolling{false};
    // Which preroll (run's or a seek's); a thread counts itself once per generation.
    std::atomic<std::uint32_t> preroll_generation{0};
    std::atomic<std::uint32_t> prerolled{0};  // feeding threads that brought a sample (or an end)
    // Starts a preroll: the clock stands (not running) and the io thread starts it once every
    // feeding thread has prerolled, the bound has passed, or the graph failed or ended.
    // Control thread, `control` held, the clock not running.
    void begin_preroll();
    void poll_preroll(std::uint32_t generation, std::chrono::steady_clock::time_point deadline, std::size_t expected);  // io thread
    // Stops waiting: starts the clock (when `start_clock`) and lets held renders go. `control` held.
    void end_preroll(bool start_clock);
    // A feeding streaming thread brought its first sample to a clocked render (or its end).
    void preroll_arrived() noexcept;

    // Bus.
    std::mutex events_mutex;
    std::condition_variable events_cv;
    std::deque<Event> events;
    // Set by the app: events go to it, on the io thread, instead of the queue. Guarded by
    // events_mutex.
    std::function<void(const Event&)> event_callback;
    // An eventfd written for every event queued, made on the app's first event_fd() call.
    // Guarded by events_mutex; closed by ~Impl.
    int event_fd = -1;
    // While stop() runs: the first error posted meanwhile (a node that could not finish its
    // file), which stop() then returns. Guarded by events_mutex.
    bool stopping = false;
    std::optional<Event> stop_error;

    // Stop timing.
    std::atomic<std::int64_t> last_stop_ns{0};
    std::chrono::milliseconds stop_report{500};
    std::chrono::milliseconds stop_give_up{5000};
    Graph::FormatAdvisor format_advisor;

    // Timers: the engine's io_context on its own thread.
    asio::io_context io;
    asio::executor_work_guard<asio::io_context::executor_type> work{io.get_executor()};
    asio::steady_timer stop_timer{io};
    asio::steady_timer tick_timer{io};
    asio::steady_timer preroll_timer{io};  // see begin_preroll()
    std::chrono::nanoseconds stop_after{0};
    std::chrono::milliseconds tick_interval{0};
    std::function<void()> tick;
    std::thread io_thread;

    explicit Impl(Graph& g) : self(g) {}
    ~Impl();

    // The Graph wires its nodes (links, formats) as their host: it needs the host's key.
    static HostKey key() noexcept { return host_key(); }

    // NodeHost: what nodes may ask of the graph.
    Signals signals() noexcept override { return {&flushing, &stop_token, &clock, &media_limit}; }
    void post(Event e) override;
    void input_ended() noexcept override;
    void park() noexcept override;  // streaming thread in present(): the clock is paused or prerolls
    void park_at_gate() noexcept;   // streaming thread: wait at the gate while it is closed
    // A streaming thread whose stream ended waits here, counted parked, until a seek carries
    // the stream on (true: it has then waited at the gate as park_at_gate() does) or a stop (false).
    bool rest() noexcept;

    void stream(Node& source);
    bool is_streaming_thread() const;
    void arm_ticker();

    Status prepare_locked();
    Status check_files() const;
    Status pause_locked();
    Status stop_locked();
    // Stop's first steps: decommit every pool, wake and join the streaming threads, stop every
    // node (a node's error is posted). Control thread, `control` held.
    void halt_locked();
    // Waits until every streaming thread is parked at the gate, resting or has left its loop, or until
    // `deadline`; returns whether they all are. Control thread.
    bool wait_until_parked(std::chrono::steady_clock::time_point deadline) const;
    void wait_for_samples(std::chrono::steady_clock::time_point t0);
};

}  // namespace sluice::engine

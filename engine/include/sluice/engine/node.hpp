// SPDX-License-Identifier: MIT
#pragma once

// Node: the unit of a push graph. A node has input and output pins and is one of three kinds:
//
//   source     no inputs; the graph gives it a streaming thread that calls produce() in a loop
//   transform  inputs and outputs; process() runs on the thread of whoever pushed the sample,
//              except in a transform that owns a streaming thread (queue, a thread boundary):
//              its process() hands samples over and the graph's thread for it calls produce()
//   render     inputs only; consumes samples (files, devices, counters)
//
// Writing a node: subclass Node, declare pins in the constructor (add_input / add_output), then
// override the few virtual functions that matter for it:
//
//   produce()        sources: get_buffer(0), fill it, push(0, ...); return end_of_stream when done
//   process(i, s)    transforms and renders: handle one sample arriving on input i
//   output_formats() what each output can carry once the inputs' formats are fixed
//   configure()      all formats fixed: size buffers, refuse impossible combinations
//   output_buffers() bytes per buffer (and buffers kept in flight) for each output's pool
//   holds(i)         samples of input i kept after process() returns (a render's last frame...)
//   start/stop/flush lifecycle on the control thread (open and finish files, drop held samples)
//
// Threading rules: negotiation and lifecycle functions run on the control thread (the one calling
// Graph's methods) while no streaming thread runs, except flush(), which runs while they are
// parked. produce/process/end_of_stream run on streaming threads: never concurrently for the same
// input, but concurrently for different inputs when they come from different sources (a mixer).
// Streaming functions must not allocate, lock or block other than through the helpers below.
//
// Errors: return them (a Status, Flow::error after report_error()). An exception that escapes a
// node's function is caught at the node's boundary: the graph posts an error event naming the
// node and the exception's text, and the stream (or the call: start, configure...) fails as if
// the node had reported it. An error a node reports from stop() (a file that could not be
// finished) makes Graph::stop() fail, so an app never takes a truncated file for a good one.

#include <sluice/allocators/sample_allocator.hpp>
#include <sluice/engine/clock.hpp>
#include <sluice/engine/format.hpp>
#include <sluice/engine/lateness.hpp>
#include <sluice/engine/node_host.hpp>
#include <sluice/engine/status.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice::engine {

class Graph;
class Node;
class OutputPin;

// Ends a source's stream after `num_buffers` samples or at the host's media limit: every source
// keeps one and asks Node::limit_reached() before each sample.
struct StreamLimit {
    std::int64_t num_buffers = -1;  // -1: unlimited
    std::uint64_t produced = 0;     // the source counts its samples here
};

// What a push or a produce() step came to.
enum class Flow {
    ok,
    end_of_stream,  // the stream is over (a source ran out; a render wants no more)
    flushing,       // the graph is flushing: the sample was dropped
    stopped,        // the graph is stopping: leave the loop
    error,          // a node reported an error, posted on the graph's bus (report_error,
                    // buffer_failed: the one way to make this value)
};

// What an input pin tells the pool upstream of it.
struct InputNeeds {
    std::size_t holds = 0;       // samples kept after process() returns (last frame, queue, look-ahead)
    std::size_t alignment = 64;  // of data()
    std::size_t prefix = 0;      // bytes wanted before data()
};

// What a node needs from the pool of one of its outputs.
struct BufferNeeds {
    std::size_t bytes = 0;    // per buffer
    // Buffers the node itself may have in flight at once; 0: it never takes one from this pool,
    // passing on the samples it is given (tee, queue), and the pool is the smallest there is:
    // one buffer, as large as the largest of the pools that feed the node (what arrives after
    // it, which the nodes there size their own pools by).
    std::size_t buffers = 1;
    // The pool gets `buffers` and what downstream holds, without the two spares it otherwise
    // adds so that a producer rarely waits: for a source whose `buffers` is a limit of its own
    // (appsrc's max-buffers=), where spares would only be more samples queued ahead of the
    // next, which is latency.
    bool exact = false;
};

struct NodeStats {
    std::uint64_t samples_in = 0;        // samples handed to process()
    std::uint64_t samples_out = 0;       // samples pushed downstream
    std::uint64_t drops = 0;             // samples dropped (flushing, or by the node)
    std::uint64_t late = 0;              // clocked renders: samples presented more than 1 ms late
    std::uint64_t deadline_misses = 0;   // clocked renders: samples later than their own duration
    std::int64_t max_lateness_ns = 0;    // clocked renders: worst lateness seen
    std::int64_t lateness_p999_ns = 0;   // clocked renders: 99.9th percentile of lateness
    std::int64_t position_ns = kNoTime;  // stop time of the last sample handed to process()
};

// What both kinds of pin have: the node they belong to, a name, their place among that node's
// pins of their kind, the pin of the other kind they are linked to, and the format of the link.
template <class Peer>
class Pin {
public:
    Node& node() const noexcept { return *node_; }
    const std::string& name() const noexcept { return name_; }
    std::string full_name() const;  // "node.pin"
    std::size_t index() const noexcept { return index_; }
    Peer* peer() const noexcept { return peer_; }
    bool linked() const noexcept { return peer_ != nullptr; }
    const MediaFormat& format() const noexcept { return format_; }  // fixed by Graph::prepare()
    // Whether the pin may stay unlinked: an optional input (a muxer's video when only audio is
    // recorded) never sees a sample or an end of stream; what a node pushes to an optional
    // output (a demuxer's audio when only its video is wanted) is dropped. Neither has a format.
    bool optional() const noexcept { return optional_; }

    // The host's side: linking and fixing the format (Graph::connect, Graph::prepare). Control
    // thread, graph stopped; set_format allocates.
    void set_peer(Peer* peer, HostKey) noexcept { peer_ = peer; }
    void set_format(const MediaFormat& format, HostKey) { format_ = format; }

protected:
    ~Pin() = default;  // a pin is an InputPin or an OutputPin, never deleted as a Pin

private:
    friend class Node;  // its owner makes it
    Node* node_ = nullptr;
    std::string name_;
    std::size_t index_ = 0;
    Peer* peer_ = nullptr;
    MediaFormat format_;
    bool optional_ = false;
};

class InputPin : public Pin<OutputPin> {
public:
    const FormatSet& accepts() const noexcept { return accepts_; }
    const InputNeeds& needs() const noexcept { return needs_; }

private:
    friend class Node;  // its owner sets what it accepts and needs
    FormatSet accepts_;
    InputNeeds needs_;
};

class OutputPin : public Pin<InputPin> {
public:
    const FormatSet& offers() const noexcept { return offers_; }

    // Fixes the size of this pin's pool (0, the default: sized automatically from the graph).
    // A fixed size too small for what the graph may hold at once makes Graph::prepare() fail.
    void set_pool_buffers(std::size_t n) noexcept { pool_buffers_ = n; }
    std::size_t pool_buffers() const noexcept { return pool_buffers_; }

    // The pool samples leaving this pin come from; its properties are set by Graph::prepare().
    SampleAllocator& allocator() noexcept { return *allocator_; }
    const SampleAllocator& allocator() const noexcept { return *allocator_; }

    // The host's side: giving up a pool whose samples outlive the graph (left allocated on
    // purpose so that they stay valid; the host says so). Control thread, while destroying.
    void abandon_allocator(HostKey) noexcept { (void)allocator_.release(); }

private:
    friend class Node;  // its owner sets what it offers
    FormatSet offers_;
    std::size_t pool_buffers_ = 0;
    std::unique_ptr<SampleAllocator> allocator_ = std::make_unique<SampleAllocator>();
};

extern template class Pin<OutputPin>;
extern template class Pin<InputPin>;

class Node {
public:
    enum class Kind { source, transform, render };

    // Where a source's streaming thread runs. priority > 0 asks for SCHED_FIFO at that priority;
    // cpu >= 0 pins the thread (and places its pools on that CPU's NUMA node). Refusals by the OS
    // are posted on the bus as warnings and the thread runs anyway.
    struct ThreadOptions {
        int priority = 0;
        int cpu = -1;
    };

    Node(std::string name, Kind kind);
    Node(const Node&) = delete;
    Node& operator=(const Node&) = delete;
    virtual ~Node();

    // Called by the host (the Graph) when it takes the node: everything the node will ask of it,
    // and the name the pools' ledgers record for it (kept by the host so it outlives the node).
    // Control thread; once.
    void attach(NodeHost& host, const char* holder_name) noexcept;

    const std::string& name() const noexcept { return name_; }
    Kind kind() const noexcept { return kind_; }
    // The type it was made as by the registry ("tone"); empty for a node made by hand.
    const std::string& type_name() const noexcept { return type_name_; }
    void set_type_name(std::string type) { type_name_ = std::move(type); }
    std::size_t input_count() const noexcept { return inputs_.size(); }
    std::size_t output_count() const noexcept { return outputs_.size(); }
    InputPin& input(std::size_t i) { return *inputs_.at(i); }
    OutputPin& output(std::size_t i) { return *outputs_.at(i); }
    const InputPin& input(std::size_t i) const { return *inputs_.at(i); }
    const OutputPin& output(std::size_t i) const { return *outputs_.at(i); }

    // Counters, readable from any thread while the graph runs.
    NodeStats stats() const noexcept;
    // Clocked renders: the distribution of lateness since start. Any thread.
    const LatenessHistogram& lateness() const noexcept { return lateness_; }
    // Counters of the node's own (packets lost, frames written...), by name. Any thread;
    // allocates. Default: none.
    virtual std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const;

    // Properties as a pipeline writes them ("db", "-6"). The registry records the values a node
    // was made with, defaults included; an app reads them, and changes the live ones, through
    // Graph::property and Graph::set_property. Control thread.
    using PropertyValues = std::vector<std::pair<std::string, std::string>>;
    void set_made_with(PropertyValues values) { made_with_ = std::move(values); }
    const PropertyValues& made_with() const noexcept { return made_with_; }

    void set_thread_options(ThreadOptions o) noexcept { thread_options_ = o; }
    ThreadOptions thread_options() const noexcept { return thread_options_; }
    // Renders: present each sample at its time on the graph's clock (true) or at once (false).
    void set_clocked(bool on) noexcept { clocked_ = on; }
    bool clocked() const noexcept { return clocked_; }

    // Samples of input i this node keeps after process() returns. Default: the pin's needs.
    virtual std::size_t holds(std::size_t input) const { return inputs_.at(input)->needs_.holds; }
    // Transforms that cut a thread boundary (queue): the graph gives the node a streaming thread
    // of its own, as it gives each source, which calls produce() in a loop (a produce() that
    // returns end_of_stream ends the node's outputs, and the thread rests until a seek carries
    // the stream on, then calls produce() again, or a stop), parks it at pauses and
    // flushes and gives it the node's thread options; process() and end_of_stream() hand
    // samples over to it, and unblock() wakes both sides. Sources always have one. Default: no.
    virtual bool owns_streaming_thread() const noexcept;
    // Whether a sample arriving on input i may leave unchanged on output o (the same buffer):
    // tees and in-place transforms. The graph uses it to size pools. Default: no.
    virtual bool passes_through(std::size_t input, std::size_t output) const;

    // Files this node reads or writes, so that prepare() can refuse a graph that would write the
    // file it reads (the same device and inode). Default: none.
    struct FileUse {
        std::string path;
        bool writes = false;
    };
    virtual std::vector<FileUse> file_uses() const;

    // Renders bound to a device with a clock of its own (jacksink): the device's time, which the
    // graph's clock follows while this render is its master, from start() to stop(). The graph
    // takes the first render, in the order nodes were added, that offers one. Default: none.
    virtual const DeviceTime* device_time() const noexcept { return nullptr; }

    // Nodes whose device runs a real-time thread of its own (JACK's process callback): the
    // highest SCHED_FIFO priority a streaming thread that runs this node may have, one below
    // that thread's, so that the threads feeding or draining its ring never preempt the
    // device's (the callback has the deadline; the ring has room for the rest), or
    // kNormalPriority: a ring long enough for threads at normal priority, which then stay there
    // (a second real-time thread beside the device's costs the device wake-ups on an idle
    // machine; see jack.cpp). The graph asks after start() and caps every streaming thread (a
    // source's, a queue's) that reaches the node, the lowest ceiling winning. Default 0: no limit.
    static constexpr int kNormalPriority = -1;
    virtual int priority_ceiling() const noexcept { return 0; }

    // ==== What the host drives (the Graph, or any NodeHost), as a PipeWire host drives a node
    // through its methods. A node overrides the ones that matter to it (at any access: only the
    // host calls them), and the host calls them on the threads said below.

    // Request pins (a tee's outputs, a mixer's inputs): Graph::connect(Node&, Node&) calls these
    // when every pin of the kind is taken; a node that can grow adds a pin and returns true.
    // Default: false.
    virtual bool request_output();
    virtual bool request_input();

    // ---- Negotiation (control thread, nodes visited from the sources down).
    // What output o can carry, every input's format being fixed. Default: the offers given to
    // add_output, narrowed by input 0's format when the node has inputs.
    virtual FormatSet output_formats(std::size_t output) const;
    // Every pin's format is fixed; check the combination and size things. Default: accept.
    virtual Status configure();
    // The pool of output o. Default: one frame (video) or 1024 frames (audio) of its format.
    virtual BufferNeeds output_buffers(std::size_t output) const;

    // ---- Lifecycle (control thread).
    virtual Status start();  // before the streaming threads start: open files, reset counters
    // After every streaming thread left: drop held samples, finish files. A failure to finish
    // (a full disk) is reported with report_error(), and Graph::stop() then fails.
    virtual void stop();
    virtual void flush();    // streaming threads parked: drop held samples, reset position
    // Seeking (sources). Graph::seek() parks every streaming thread, flushes every node, then
    // calls seek() on each source that says seekable(): its next sample starts at `media_ns`
    // (or the sync point before it, decoded but not pushed) and carries
    // SampleFlags::discontinuity. Control thread, streaming threads parked. Defaults: not
    // seekable; seek() fails.
    virtual bool seekable() const;
    virtual Status seek(std::int64_t media_ns);
    // Nodes that keep an end of stream across a flush (a queue, whose upstream thread has ended):
    // a seek carries that stream on from the new position, so forget the end. Graph::seek calls
    // it on every node after flush() and the sources' seek() succeeded, streaming threads
    // parked, and only while the end has reached no node without a streaming thread of its own
    // (after that a seek is refused). Default: nothing.
    virtual void forget_end_of_stream();
    // Called on the control thread when the graph flushes or stops, before it waits for the
    // streaming threads: wake any streaming thread blocked inside this node (a mixer waiting for
    // its other inputs). Default: nothing.
    virtual void unblock();

    // ---- Live properties (Graph::set_property; control thread, any state, calls serialised).
    // A node with properties that may change while it streams parses and range-checks the new
    // value here (errors name the node and the property) and hands it to its streaming thread
    // through a lock-free mailbox, an atomic word read at the next buffer: the streaming thread
    // takes no lock and allocates nothing for it. Default: no property is live; a property the
    // node was made with is refused as fixed, any other as unknown.
    virtual Status set_property(std::string_view key, std::string_view value);
    // The current value of `key` as a pipeline writes it. Default: the value it was made with.
    virtual Status get_property(std::string_view key, std::string& value) const;

    // ---- Streaming.
    virtual Flow produce();                                 // sources
    virtual Flow process(std::size_t input, SampleRef&& s);  // transforms and renders
    // The stream on input i has ended. Default: forward to every output; a render reports it
    // to the graph (the graph ends when every render has).
    virtual void end_of_stream(std::size_t input);

    // ---- The host's own part.
    // Ends the stream of output o downstream, when produce() said end_of_stream. The source's
    // streaming thread; never blocks.
    void push_end_of_stream(std::size_t output, HostKey) noexcept { push_end_of_stream(output); }
    // Turns the exception being handled into an error event naming this node (outside a catch:
    // an unknown error). The thread that caught it; allocates.
    Flow report_exception(const char* where, HostKey) noexcept { return report_exception(where); }
    // Takes back the pins a refused link had asked for (request_input, request_output): the node
    // keeps its first `inputs` inputs and `outputs` outputs. Control thread, graph stopped.
    void remove_requested_pins(std::size_t inputs, std::size_t outputs, HostKey) noexcept;

protected:
    InputPin& add_input(std::string name, FormatSet accepts, InputNeeds needs = {});
    OutputPin& add_output(std::string name, FormatSet offers);
    // An output that may stay unlinked (OutputPin::optional); the node asks linked() before
    // doing work for it.
    OutputPin& add_optional_output(std::string name, FormatSet offers);
    // An input that may stay unlinked (InputPin::optional); a node needs at least one linked.
    InputPin& add_optional_input(std::string name, FormatSet accepts, InputNeeds needs = {});
    void set_input_needs(std::size_t input, InputNeeds needs) { inputs_.at(input)->needs_ = needs; }

    // ---- Helpers for streaming code.
    // A free buffer from output o's pool, waiting while it is empty; fails when the graph stops.
    Result<SampleRef> get_buffer(std::size_t output) noexcept;
    // What to return when get_buffer() failed: Flow::stopped when the graph is stopping (the pool
    // was decommitted, the wait cancelled), else Flow::error, the error posted (once, here).
    Flow buffer_failed(std::error_code ec) noexcept;
    // Hands a sample to the node downstream of output o, on this thread. Takes the sample
    // whatever happens (by value), so the caller's reference is always empty afterwards. An
    // unlinked optional output drops it and returns ok.
    Flow push(std::size_t output, SampleRef sample) noexcept;
    // Ends the stream of output o downstream (a node whose own stream ends). Streaming thread.
    void push_end_of_stream(std::size_t output) noexcept;
    // Renders: waits for the sample's start time if clocked and records its lateness. Returns
    // ok to present, or flushing/stopped (drop it). Never allocates.
    Flow present(const SampleRef& sample) noexcept;
    // Posts an error on the graph's bus (allocates: not for the steady state) and returns
    // Flow::error for the caller to return. Any thread, also from stop().
    Flow report_error(std::error_code code, std::string message);
    // Posts a warning (something the app should know that does not stop the stream).
    void report_warning(std::string message);
    void count_drop() noexcept;
    // Whether the graph is flushing (samples pushed now are dropped).
    bool flushing() const noexcept;
    const std::stop_token& stop_token() const noexcept;
    Clock& clock() const noexcept;
    // Media time after which sources end their stream (Graph::set_media_duration), or -1.
    std::int64_t media_limit_ns() const noexcept;
    // Sources: whether a sample starting at `next_start` would pass `limit` (its num-buffers) or
    // the media limit. kNoTime: only num-buffers counts.
    bool limit_reached(const StreamLimit& limit, MediaTime next_start) const noexcept;

private:
    Flow report_exception(const char* where) noexcept;

    struct alignas(64) Counters {
        std::atomic<std::uint64_t> in{0}, out{0}, drops{0}, late{0}, misses{0};
        std::atomic<std::int64_t> max_lateness{0};
        std::atomic<std::int64_t> position{kNoTime};
    };

    std::string name_;
    std::string type_name_;
    PropertyValues made_with_;
    Kind kind_;
    std::vector<std::unique_ptr<InputPin>> inputs_;
    std::vector<std::unique_ptr<OutputPin>> outputs_;
    ThreadOptions thread_options_{};
    bool clocked_ = false;
    NodeHost* host_ = nullptr;
    NodeHost::Signals signals_{};
    const char* holder_name_ = nullptr;  // name_ as the host keeps it for the pools' ledgers
    Counters counters_;
    LatenessHistogram lateness_;
};

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
#pragma once

// NodeHost: everything a node may ask of the graph that runs it, and nothing more. A node talks
// to the graph only through this narrow interface, as a PipeWire node talks through the
// callbacks it is handed (spa_node_callbacks): it knows neither the graph's scheduler nor its
// other nodes. The Graph is one host; a test harness may be another.
//
// Two kinds of thing pass through it:
//   - streaming signals, read on hot paths: whether the graph is flushing, its stop token, its
//     clock, the media limit. The host hands them over once, as plain words (Signals), so that
//     reading one costs a load and never a call;
//   - events, rare by nature: errors, warnings, a render's end of stream, a clocked render that
//     found the clock not running (paused, or prerolling). Those are calls.

#include <sluice/engine/clock.hpp>

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string>
#include <system_error>

namespace sluice::engine {

// What the graph tells its app: errors, end of stream, warnings, state changes.
struct Event {
    enum class Type { state_changed, end_of_stream, error, warning, stop_stuck };
    Type type = Type::state_changed;
    std::string node;  // the node it concerns, if any
    std::error_code code;
    std::string message;
};
const char* to_string(Event::Type t) noexcept;

class NodeHost;

// The host's key. The few things only a host does to a node and its pins (link two pins, fix a
// link's format, take back a pin asked for by a link that was then refused, end a source's
// stream) take one, and only a NodeHost, or what derives from it, can make one: the graph reaches
// into nodes through those named calls, not through friendship with their private members. A
// guard against mistakes (a node relinking its own pins), not against intent.
class HostKey {
    friend class NodeHost;
    HostKey() = default;
};

class NodeHost {
public:
    // Words the host owns and keeps valid for as long as the node is attached.
    struct Signals {
        const std::atomic<bool>* flushing = nullptr;            // samples pushed now are dropped
        const std::stop_token* stop_token = nullptr;             // the run is stopping
        Clock* clock = nullptr;                                  // the graph's running time
        const std::atomic<std::int64_t>* media_limit = nullptr;  // sources end their streams here (-1: none)
    };
    virtual Signals signals() noexcept = 0;

    // Posts an event on the host's bus. Any thread; locks; allocates.
    virtual void post(Event event) = 0;
    // A render's input saw end of stream (the host ends when every one has). Once per input and
    // run, from a streaming thread or, while they run, a render's own thread (videosink's window
    // thread when its window is closed). Never blocks.
    virtual void input_ended() noexcept = 0;
    // A clocked render found the clock not running: the host is paused, or it prerolls (holds
    // its clock until every streaming thread that feeds a clocked render has brought a first
    // sample there, so that playback starts with every render ready). Wait here until the clock
    // runs, or the host pauses, flushes or stops; the caller then looks at all of them again.
    // Streaming thread; blocks.
    virtual void park() noexcept = 0;

protected:
    ~NodeHost() = default;
    static HostKey host_key() noexcept { return HostKey{}; }  // any thread; a plain value
};

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
#include <sluice/engine/graph.hpp>

#include "graph_impl.hpp"

#include <sluice/engine/log.hpp>

#include <sluice/allocators/numa.hpp>

#include <asio/post.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <set>
#include <system_error>
#include <type_traits>

#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::engine {

const char* to_string(State s) noexcept {
    switch (s) {
        case State::stopped: return "stopped";
        case State::paused: return "paused";
        case State::running: return "running";
    }
    return "?";
}

const char* to_string(Event::Type t) noexcept {
    switch (t) {
        case Event::Type::state_changed: return "state-changed";
        case Event::Type::end_of_stream: return "end-of-stream";
        case Event::Type::error: return "error";
        case Event::Type::warning: return "warning";
        case Event::Type::stop_stuck: return "stop-stuck";
    }
    return "?";
}

// ---------------------------------------------------------------------------------------------
// Impl: bus, gate, streaming threads

namespace {
// This streaming thread feeds a clocked render (Impl::preroll_feeders), and the preroll it last
// counted itself in. Set when the thread starts; a thread belongs to one graph.
thread_local bool t_preroll_feeder = false;
thread_local std::uint32_t t_prerolled_generation = 0;
}  // namespace

Graph::Impl::~Impl() {
    if (event_fd >= 0) ::close(event_fd);
}

void Graph::Impl::post(Event e) {
    if (e.type == Event::Type::error) failed.store(true, std::memory_order_release);  // release: read by wait_until_ended
    {
        std::lock_guard lock(events_mutex);
        if (stopping && e.type == Event::Type::error && !stop_error) stop_error = e;
        if (event_callback) {
            // The app's callback runs on the io thread, never on a streaming thread.
            asio::post(io, [this, e = std::move(e)] {
                std::function<void(const Event&)> callback;
                {
                    std::lock_guard lock(events_mutex);
                    callback = event_callback;
                }
                if (!callback) return;
                try {
                    callback(e);
                } catch (...) {  // an app's exception must not end the engine's thread
                }
            });
        } else {
            events.push_back(std::move(e));
            if (event_fd >= 0) {
                const std::uint64_t one = 1;
                (void)!::write(event_fd, &one, sizeof one);  // a counter: never blocks, never fails while open
            }
        }
    }
    events_cv.notify_all();
}

namespace {
// Whether the graph runs a streaming thread for the node: every source, and the transforms that
// cut a thread boundary (queue).
bool has_streaming_thread(const Node& n) { return n.kind() == Node::Kind::source || n.owns_streaming_thread(); }

// Whether `in`, an input that accepts anything, may be handed `f` in its own layout (padded
// rows): its node passes samples on unchanged to each output (Node::passes_through), and every
// input they reach takes `f` as it is, directly or through more such nodes. Their formats are not
// fixed yet, so this looks at what those inputs accept. A chain deeper than 64 is taken for packed.
bool passes_layout_on(const InputPin& in, const MediaFormat& f, int depth = 0) {
    const Node& n = in.node();
    bool passes = false;
    for (std::size_t o = 0; o < n.output_count(); ++o) {
        if (!n.output(o).linked()) continue;
        if (!n.passes_through(in.index(), o)) return false;  // it may read the picture itself
        const InputPin& next = *n.output(o).peer();
        if (next.accepts().empty() ? depth >= 64 || !passes_layout_on(next, f, depth + 1)
                                   : intersect(FormatSet{f}, next.accepts()).empty())
            return false;
        passes = true;
    }
    return passes;
}

// Whether some offered format has the kind of some accepted one; true when either side is open.
bool kinds_meet(const FormatSet& offers, const FormatSet& accepts) {
    if (offers.empty() || accepts.empty()) return true;
    for (const auto& o : offers)
        for (const auto& a : accepts)
            if (o.kind == a.kind) return true;
    return false;
}

// What `out` will carry as far as can be told before prepare(): its own offers or, for a pin
// that offers anything (a tee's branch), what the pin feeding its node offers, up the chain.
const FormatSet& effective_offers(const OutputPin& out) {
    const OutputPin* pin = &out;
    for (int depth = 0; depth < 64 && pin->offers().empty(); ++depth) {
        const Node& n = pin->node();
        if (n.input_count() == 0 || !n.input(0).linked()) break;
        pin = n.input(0).peer();
    }
    return pin->offers();
}

// Runs a node's control-thread function; an exception becomes a failed Status naming the node.
template <class F>
Status guarded(const Node& node, const char* what, F&& f) {
    try {
        return f();
    } catch (const std::exception& e) {
        return {engine::GraphErrc::bad_state, node.name() + ": " + what + " threw: " + e.what()};
    } catch (...) {
        return {engine::GraphErrc::bad_state, node.name() + ": " + what + " threw an exception that is not a std::exception"};
    }
}

// "gain0 holds sample 3 of tone0.src for 1200 ms", for a stuck stop's report. How long is known only when the
// ledger was on at the get (debug builds, or set_ledger_enabled); a graph names holders always.
std::string held_sample_report(const LedgerEntry& e, const std::string& pool) {
    std::string text = (e.holder == "?" ? std::string("someone") : std::string(e.holder)) + " holds sample " +
                       std::to_string(e.index) + " of " + pool;
    if (e.held_for.count() > 0)
        text += " for " + std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(e.held_for).count()) + " ms";
    return text;
}
}  // namespace

void Graph::Impl::park() noexcept {
    // Prerolling: the gate is open and the clock stands until every feeding thread has brought
    // a sample to a clocked render. Held here, looking at the gate every 10 ms at most (a pause
    // or a flush closes it) besides the clock's own wake-ups (start, interrupt). acquire: pairs
    // with begin_preroll()'s release and end_preroll()'s (the clock's start before it).
    while (prerolling.load(std::memory_order_acquire) && gate.load(std::memory_order_acquire) == kOpen &&
           !stop_token.stop_requested() && !flushing.load(std::memory_order_relaxed)) {  // relaxed: see push()
        preroll_arrived();
        if (clock.wait_until_running(10'000'000, stop_token) != ClockWait::interrupted) return;
    }
    // The clock runs, or a flush or a stop is under way: present() looks at them again. A flush
    // (a seek) must not find this thread parked here with the sample it holds: the nodes would
    // be flushed and the sources moved under it, and the old sample presented after the seek
    // (a backward seek waiting its whole distance). `flushing` is set before the gate closes
    // and stays set until every thread is parked, so present() returns Flow::flushing instead
    // and the thread parks at its source's gate. relaxed: as above.
    if (gate.load(std::memory_order_acquire) == kOpen || stop_token.stop_requested() ||
        flushing.load(std::memory_order_relaxed))
        return;  // acquire: as above
    park_at_gate();
}

void Graph::Impl::preroll_arrived() noexcept {
    if (!t_preroll_feeder) return;
    // relaxed: begin_preroll() stored it before a release this thread has acquired since (the
    // gate's opening after run() or a seek's flush, or `prerolling`).
    const std::uint32_t generation = preroll_generation.load(std::memory_order_relaxed);
    if (t_prerolled_generation == generation) return;
    t_prerolled_generation = generation;
    // release: the io thread's acquire load sees this thread's arrival (nothing else rides on it).
    prerolled.fetch_add(1, std::memory_order_release);
}

void Graph::Impl::begin_preroll() {
    // relaxed: every streaming thread is parked at the gate now (run from paused, or inside a
    // flush), and the release store that opens it publishes these; the store of `prerolling`
    // publishes them to the io thread.
    const std::uint32_t generation = preroll_generation.load(std::memory_order_relaxed) + 1;
    preroll_generation.store(generation, std::memory_order_relaxed);
    prerolled.store(0, std::memory_order_relaxed);
    prerolling.store(true, std::memory_order_release);
    const auto deadline = std::chrono::steady_clock::now() + kPrerollBound;
    // The count to wait for goes with the poll: the io thread never reads preroll_feeders, which
    // a stop and a new start may refill meanwhile.
    const std::size_t expected = preroll_feeders.size();
    asio::post(io, [this, generation, deadline, expected] { poll_preroll(generation, deadline, expected); });
}

void Graph::Impl::poll_preroll(std::uint32_t generation, std::chrono::steady_clock::time_point deadline,
                               std::size_t expected) {
    // Every 2 ms on the io thread, so that a streaming thread's arrival is a counter's increment
    // and never a call, a lock or an allocation.
    preroll_timer.expires_after(std::chrono::milliseconds(2));
    preroll_timer.async_wait([this, generation, deadline, expected](std::error_code ec) {
        if (ec) return;
        // relaxed: the generation is only compared (a newer preroll took over from this one).
        if (!prerolling.load(std::memory_order_acquire) || preroll_generation.load(std::memory_order_relaxed) != generation)
            return;  // acquire: as in park()
        // acquire: pairs with the streaming threads' release increments, and with post()'s and
        // input_ended()'s release stores of `failed` and `ended`.
        const bool done = prerolled.load(std::memory_order_acquire) >= expected ||
                          failed.load(std::memory_order_acquire) || ended.load(std::memory_order_acquire) ||
                          std::chrono::steady_clock::now() >= deadline;
        if (!done) return poll_preroll(generation, deadline, expected);
        std::lock_guard lock(control);
        // relaxed: guarded by `control`, under which a pause, a seek or a stop changes them.
        if (!prerolling.load(std::memory_order_relaxed) || preroll_generation.load(std::memory_order_relaxed) != generation ||
            state.load(std::memory_order_relaxed) != State::running)
            return;
        end_preroll(true);
    });
}

void Graph::Impl::end_preroll(bool start_clock) {
    // relaxed: guarded by `control`.
    if (!prerolling.load(std::memory_order_relaxed)) return;
    // The clock first: a held render that sees the preroll over sees the clock running.
    if (start_clock) clock.start();
    prerolling.store(false, std::memory_order_release);  // release: as in park()
    clock.interrupt();
}

void Graph::Impl::park_at_gate() noexcept {
    for (;;) {
        // seq_cst: flush() reads `parked` and then node state; our count must be visible before
        // we stop touching nodes, and its reads of the count are seq_cst too.
        parked.fetch_add(1, std::memory_order_seq_cst);
        parked.notify_all();
        // acquire: pairs with the release store that opens the gate (run, flush end, stop).
        while (gate.load(std::memory_order_acquire) == kClosed && !stop_token.stop_requested())
            gate.wait(kClosed, std::memory_order_acquire);
        parked.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as above
        // The gate may have closed again between our wake-up and the count above (a seek right
        // after run()): a flush that saw us counted parked is flushing the nodes now, so look
        // once more before leaving. seq_cst, with flush_parked's seq_cst store of kClosed and its
        // seq_cst loads of `parked`: either it sees our count gone (and waits for us) or we see
        // its closed gate here (and park again).
        if (gate.load(std::memory_order_seq_cst) != kClosed || stop_token.stop_requested()) return;
    }
}

bool Graph::Impl::rest() noexcept {
    // relaxed: a seek bumps `resumes` only once it has seen every thread parked, our count
    // below included (seq_cst RMW and loads of `parked`), so after this read.
    const std::uint32_t seen = resumes.load(std::memory_order_relaxed);
    parked.fetch_add(1, std::memory_order_seq_cst);
    parked.notify_all();
    // acquire: pairs with the seek's bump, after the nodes' reset and the sources' new position.
    while (resumes.load(std::memory_order_acquire) == seen && !stop_token.stop_requested())
        resumes.wait(seen, std::memory_order_acquire);
    parked.fetch_sub(1, std::memory_order_seq_cst);  // seq_cst: as in park()
    if (stop_token.stop_requested()) return false;
    park_at_gate();  // the seek opens the gate after its bump
    return !stop_token.stop_requested();
}

namespace {
// The graph whose streaming thread this is, if any: a thread-local, so asking needs no lock.
thread_local const void* t_streaming_for = nullptr;
}  // namespace

bool Graph::Impl::is_streaming_thread() const { return t_streaming_for == this; }

void Graph::Impl::input_ended() noexcept {
    // acq_rel: the last render's increment sees the others'.
    if (render_inputs_ended.fetch_add(1, std::memory_order_acq_rel) + 1 == render_inputs) {
        ended.store(true, std::memory_order_release);  // release: read by wait_until_ended
        try {
            post({Event::Type::end_of_stream, {}, {}, "every render reached end of stream"});
        } catch (...) {
            events_cv.notify_all();  // no memory for the event; `ended` says it all the same
        }
    }
}

namespace {
// Calls `visit` on every node that `node`'s streaming thread reaches, itself included, each once
// however many paths lead to it (tees into mixers). Another streaming thread's node (a queue) is
// visited but not gone past: its own thread runs what lies beyond. `visit` returns false to stop.
template <class Visit>
void for_each_reached(const Node& node, Visit&& visit) {
    std::vector<const Node*> seen, todo{&node};
    while (!todo.empty()) {
        const Node* n = todo.back();
        todo.pop_back();
        if (std::find(seen.begin(), seen.end(), n) != seen.end()) continue;
        seen.push_back(n);
        if (!visit(*n)) return;
        if (n != &node && has_streaming_thread(*n)) continue;
        for (std::size_t o = 0; o < n->output_count(); ++o)
            if (const InputPin* peer = n->output(o).peer()) todo.push_back(&peer->node());
    }
}
}  // namespace

// The lowest priority_ceiling() of the nodes `node`'s streams reach, itself included (0: none;
// Node::kNormalPriority, below every SCHED_FIFO priority, wins).
int Graph::Impl::priority_ceiling_of(const Node& node) const {
    int ceiling = 0;
    for_each_reached(node, [&](const Node& n) {
        if (const int c = n.priority_ceiling(); c != 0 && (ceiling == 0 || c < ceiling)) ceiling = c;
        return true;
    });
    return ceiling;
}

// Whether `node`'s streaming thread reaches a clocked render.
bool Graph::Impl::feeds_clocked_render(const Node& node) const {
    bool feeds = false;
    for_each_reached(node, [&](const Node& n) {
        feeds = n.kind() == Node::Kind::render && n.clocked();
        return !feeds;
    });
    return feeds;
}

void Graph::Impl::stream(Node& source) {
    t_streaming_for = this;
    t_preroll_feeder = std::find(preroll_feeders.begin(), preroll_feeders.end(), &source) != preroll_feeders.end();
    t_prerolled_generation = 0;
    Node::ThreadOptions opts = source.thread_options();
    if (opts.priority > 0)
        if (const int ceiling = priority_ceiling_of(source); ceiling != 0 && ceiling < opts.priority) {
            if (ceiling < 0)
                log_message(LogLevel::info, source.name() + ": streaming thread at normal priority, not SCHED_FIFO " +
                                                std::to_string(opts.priority) +
                                                ": a device it feeds or drains has a real-time thread of its own and a ring long enough");
            else
                log_message(LogLevel::info, source.name() + ": streaming thread at SCHED_FIFO " + std::to_string(ceiling) +
                                                ", not " + std::to_string(opts.priority) +
                                                ": below the real-time thread of a device it feeds or drains");
            opts.priority = std::max(ceiling, 0);
        }
    if (opts.cpu >= 0) {
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(opts.cpu, &set);
        if (int err = ::pthread_setaffinity_np(::pthread_self(), sizeof set, &set))
            post({Event::Type::warning, source.name(), std::error_code(err, std::system_category()),
                  "could not pin the streaming thread to CPU " + std::to_string(opts.cpu) + ": " + std::strerror(err)});
    }
    if (opts.priority > 0) {
        sched_param param{};
        param.sched_priority = opts.priority;
        if (int err = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &param))
            post({Event::Type::warning, source.name(), std::error_code(err, std::system_category()),
                  "could not use SCHED_FIFO priority " + std::to_string(opts.priority) + " (" + std::strerror(err) +
                      "); running at normal priority"});
    }
    for (;;) {
        // acquire: pairs with the release store that opens the gate.
        if (gate.load(std::memory_order_acquire) != kOpen) park_at_gate();
        if (stop_token.stop_requested()) break;
        Flow flow;
        try {
            flow = source.produce();
        } catch (...) {
            flow = source.report_exception("produce()", Impl::key());
        }
        if (flow == Flow::ok || flow == Flow::flushing) continue;
        if (flow == Flow::end_of_stream) {
            // Said before the end goes out: a seek reads it once this thread rests. release:
            // pairs with seek's acquire (the count of parked threads orders it too).
            for (std::size_t o = 0; o < source.output_count(); ++o)
                if (const InputPin* peer = source.output(o).peer(); peer && !has_streaming_thread(peer->node()))
                    ended_past_queues.store(true, std::memory_order_release);
            for (std::size_t o = 0; o < source.output_count(); ++o) source.push_end_of_stream(o, Impl::key());
            // An end that went out before any sample: the preroll waits for this thread no more.
            // acquire: as in park().
            if (prerolling.load(std::memory_order_acquire)) preroll_arrived();
            // Rest, not leave: while the end has gone no further than queues (whose threads
            // still push on what came before it: up to a second of a movie), a seek carries the
            // stream on from its new position, as it did before the source's end. A source the
            // seek could not move is still at its end: it says so again to the queues, which
            // forgot it, without asking produce() (a live source would go on receiving).
            bool resumed = rest();
            while (resumed && source.kind() == Node::Kind::source && !source.seekable()) {
                for (std::size_t o = 0; o < source.output_count(); ++o) source.push_end_of_stream(o, Impl::key());
                resumed = rest();
            }
            if (resumed) continue;
            break;
        }
        if (flow == Flow::error) break;
        // Flow::stopped without a stop: a pool was decommitted under us; only stop() does that.
        if (stop_token.stop_requested()) break;
        std::this_thread::yield();
    }
    // seq_cst: flush() compares `parked` against `active`.
    active.fetch_sub(1, std::memory_order_seq_cst);
    parked.notify_all();
}

void Graph::Impl::arm_ticker() {
    if (tick_interval.count() <= 0 || !tick) return;
    tick_timer.expires_after(tick_interval);
    tick_timer.async_wait([this](std::error_code ec) {
        if (ec) return;
        // relaxed: a stale state only delays the last tick by one interval.
        if (state.load(std::memory_order_relaxed) != State::stopped) tick();
        arm_ticker();
    });
}

// ---------------------------------------------------------------------------------------------
// Building

Graph::Graph() : impl_(std::make_unique<Impl>(*this)) {
    impl_->io_thread = std::thread([this] { impl_->io.run(); });
}

Graph::~Graph() {
    (void)stop();
    Impl& g = *impl_;
    // Renders first, sources last: a node downstream lets go of what it holds before the pools
    // upstream are destroyed (a pool's destructor waits for every sample). A pool whose samples
    // someone outside the graph still holds after the give-up time is left behind, never freed
    // under them, and said so: a hang here would be worse than the leak.
    std::vector<Node*> order = g.order;
    for (const auto& n : g.nodes)
        if (std::find(order.begin(), order.end(), n.get()) == order.end()) order.push_back(n.get());
    for (auto it = order.rbegin(); it != order.rend(); ++it) {
        Node& n = **it;
        for (std::size_t o = 0; o < n.output_count(); ++o) {
            OutputPin& out = n.output(o);
            const auto until = std::chrono::steady_clock::now() + g.stop_give_up;
            while (out.allocator().stats().outstanding != 0 && std::chrono::steady_clock::now() < until)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
            if (const std::size_t held = out.allocator().stats().outstanding; held != 0) {
                std::string who;
                for (const LedgerEntry& e : out.allocator().ledger())
                    who += (who.empty() ? "" : ", ") + held_sample_report(e, out.full_name());
                log_message(LogLevel::error, "graph destroyed while " + std::to_string(held) + " samples of " +
                                                 out.full_name() + " are still held (" + who +
                                                 "); its pool is left allocated so they stay valid");
                out.abandon_allocator(Impl::key());  // leaked on purpose: see above
            }
        }
        const auto owned = std::find_if(g.nodes.begin(), g.nodes.end(), [&](const auto& p) { return p.get() == &n; });
        if (owned != g.nodes.end()) owned->reset();
    }
    impl_->work.reset();
    asio::post(impl_->io, [this] {
        impl_->stop_timer.cancel();
        impl_->tick_timer.cancel();
        impl_->preroll_timer.cancel();
    });
    impl_->io.stop();
    impl_->io_thread.join();
}

Node& Graph::add(std::unique_ptr<Node> node) {
    std::lock_guard lock(impl_->control);
    node->attach(*impl_, impl_->holder_names.emplace_back(node->name()).c_str());
    impl_->nodes.push_back(std::move(node));
    return *impl_->nodes.back();
}

Node* Graph::find(std::string_view name) const noexcept {
    for (const auto& n : impl_->nodes)
        if (n->name() == name) return n.get();
    return nullptr;
}

std::vector<Node*> Graph::nodes() const {
    std::vector<Node*> out;
    for (const auto& n : impl_->nodes) out.push_back(n.get());
    return out;
}

Status Graph::connect(Node& from, Node& to) { return connect(from, {}, to, {}); }

namespace {
// The pin named `name` among a node's `count` inputs (or outputs), pin_at(i) each; or nullptr, and
// `error` says which pins the node has ("video has no input named 'x' (its inputs: sink)").
template <class PinAt>
auto* pin_named(const Node& node, const char* kind, std::size_t count, PinAt pin_at, std::string_view name,
                Status& error) {
    std::string names;
    for (std::size_t i = 0; i < count; ++i) {
        if (pin_at(i).name() == name) return &pin_at(i);
        names += (i ? ", " : "") + pin_at(i).name();
    }
    error = {engine::GraphErrc::not_linked, node.name() + " has no " + kind + " named '" + std::string(name) +
                                                "' (its " + kind + "s: " + (names.empty() ? "none" : names) + ")"};
    return static_cast<std::remove_reference_t<decltype(pin_at(0))>*>(nullptr);
}
}  // namespace

Status Graph::connect(Node& from, std::string_view from_pin, Node& to, std::string_view to_pin) {
    OutputPin* out = nullptr;
    InputPin* in = nullptr;
    Status no_such_pin;
    if (!to_pin.empty() &&
        !(in = pin_named(to, "input", to.input_count(), [&](std::size_t i) -> InputPin& { return to.input(i); }, to_pin,
                         no_such_pin)))
        return no_such_pin;
    if (!from_pin.empty() &&
        !(out = pin_named(from, "output", from.output_count(),
                          [&](std::size_t i) -> OutputPin& { return from.output(i); }, from_pin, no_such_pin)))
        return no_such_pin;
    {
        // A node asked for a pin (a mixer's input, a tee's output) would keep it unlinked if the
        // link were then refused for the state; refuse first.
        std::lock_guard lock(impl_->control);
        if (impl_->state.load(std::memory_order_relaxed) != State::stopped)  // relaxed: guarded by `control`
            return {engine::GraphErrc::bad_state, "cannot link pins while the graph is " + std::string(to_string(state()))};
    }
    const std::size_t inputs_before = to.input_count(), outputs_before = from.output_count();
    // Unnamed pins: the first free pair whose media kinds meet (a demuxer's video to a video
    // render, a video source to a muxer's video input), else the first free input and output,
    // whose mismatch connect(OutputPin&, InputPin&) then names.
    if (!in || !out) {
        for (std::size_t i = 0; i < to.input_count() && !(in && out); ++i) {
            InputPin* candidate_in = in ? in : (!to.input(i).peer() ? &to.input(i) : nullptr);
            if (!candidate_in) continue;
            for (std::size_t o = 0; o < from.output_count(); ++o) {
                OutputPin* candidate_out = out ? out : (!from.output(o).peer() ? &from.output(o) : nullptr);
                if (candidate_out && kinds_meet(effective_offers(*candidate_out), candidate_in->accepts())) {
                    in = candidate_in;
                    out = candidate_out;
                    break;
                }
            }
            if (to_pin.size()) break;  // the input was named: only it was tried
        }
    }
    // A node with no free output adds one on request (a tee), carrying what feeds it: pick the
    // input that fits that.
    if (!in && !out && from.input_count() > 0 && from.input(0).linked()) {
        const FormatSet& would_offer = effective_offers(*from.input(0).peer());
        for (std::size_t i = 0; i < to.input_count() && !in; ++i)
            if (!to.input(i).peer() && kinds_meet(would_offer, to.input(i).accepts())) in = &to.input(i);
    }
    for (std::size_t i = 0; i < to.input_count() && !in; ++i)
        if (!to.input(i).peer()) in = &to.input(i);
    if (!in && to.request_input()) in = &to.input(to.input_count() - 1);
    // The input side first: a full mixer is the culprit, not the tee linked to it.
    if (!in)
        return {engine::GraphErrc::not_linked, "cannot link " + from.name() + " to " + to.name() + ": " + to.name() +
                                      (to.input_count() ? " has no free input (it takes at most " +
                                                              std::to_string(to.input_count()) + ")"
                                                        : " has no inputs")};
    for (std::size_t i = 0; i < from.output_count() && !out; ++i)
        if (!from.output(i).peer() && kinds_meet(effective_offers(from.output(i)), in->accepts())) out = &from.output(i);
    for (std::size_t i = 0; i < from.output_count() && !out; ++i)
        if (!from.output(i).peer()) out = &from.output(i);
    if (!out && from.request_output()) out = &from.output(from.output_count() - 1);
    if (!out) {
        to.remove_requested_pins(inputs_before, to.output_count(), Impl::key());  // the input asked for above goes again
        return {engine::GraphErrc::not_linked, "cannot link " + from.name() + " to " + to.name() + ": " + from.name() +
                                      (from.output_count() ? " has no free output" : " has no outputs")};
    }
    Status st = connect(*out, *in);
    if (!st) {
        // Refused (media kinds that never meet): the pins asked for above go again, unlinked,
        // rather than stay to fail prepare() as "not linked".
        to.remove_requested_pins(inputs_before, to.output_count(), Impl::key());
        from.remove_requested_pins(from.input_count(), outputs_before, Impl::key());
    }
    return st;
}

Status Graph::connect(OutputPin& from, InputPin& to) {
    std::lock_guard lock(impl_->control);
    if (impl_->state.load(std::memory_order_relaxed) != State::stopped)  // relaxed: guarded by `control`
        return {engine::GraphErrc::bad_state, "cannot link pins while the graph is " + std::string(to_string(state()))};
    if (from.linked() || to.linked())
        return {engine::GraphErrc::not_linked, "cannot link " + from.full_name() + " to " + to.full_name() + ": " +
                                      (from.linked() ? from.full_name() : to.full_name()) + " is already linked"};
    // Kinds can be checked now when both sides declare formats; the rest waits for prepare().
    if (!kinds_meet(from.offers(), to.accepts()))
        return {engine::GraphErrc::not_linked, "cannot link " + from.full_name() + " to " + to.full_name() + ": " +
                                          from.full_name() + " offers " + to_string(from.offers()) + ", " +
                                          to.full_name() + " accepts " + to_string(to.accepts())};
    from.set_peer(&to, Impl::key());
    to.set_peer(&from, Impl::key());
    return {};
}

// ---------------------------------------------------------------------------------------------
// Prepare: links, order, formats, pools

namespace {

// Buffers of `out`'s pool that nodes downstream may keep at once, following samples through
// nodes that pass them on unchanged. Memoised per pin, so sizing every pool of a graph is linear
// in its links (a chain of 10 000 gains included).
std::size_t held_downstream(const OutputPin& out, std::map<const OutputPin*, std::size_t>& memo) {
    if (const auto it = memo.find(&out); it != memo.end()) return it->second;
    const InputPin* in = out.peer();
    const Node& node = in->node();
    std::size_t held = node.holds(in->index());
    for (std::size_t o = 0; o < node.output_count(); ++o)
        if (node.output(o).linked() && node.passes_through(in->index(), o)) held += held_downstream(node.output(o), memo);
    memo[&out] = held;
    return held;
}

// Why a pool of `buffers` x `bytes` may have been refused, for its error message: more buffers
// than a pool can have, or more memory than the machine has (what a queue of 4096 4K pictures
// asks for); empty when neither.
std::string pool_refused_because(std::size_t buffers, std::size_t bytes) {
    if (buffers > SampleAllocator::kMaxBuffers)
        return " (more than the " + std::to_string(SampleAllocator::kMaxBuffers) +
               " buffers a pool can have: fewer or smaller queues downstream would do)";
    const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
    const double wanted = double(buffers) * double(bytes), memory = double(pages) * double(page);
    if (pages > 0 && page > 0 && wanted > memory) {
        char text[160];
        std::snprintf(text, sizeof text, " (%.1f GB, more than this machine's %.1f GB of memory)", wanted / 1e9, memory / 1e9);
        return text;
    }
    return {};
}

// The walk held_downstream() took, for the one error message that shows it: "tee -> [left
// (keeps 1) | right (keeps 1)]". At most `budget` nodes are named.
void describe_holders(const OutputPin& out, std::string& path, std::size_t& budget) {
    const InputPin* in = out.peer();
    const Node& node = in->node();
    if (budget == 0) {
        path += "...";
        return;
    }
    --budget;
    path += node.name();
    if (const std::size_t held = node.holds(in->index()); held != 0) path += " (keeps " + std::to_string(held) + ")";
    std::vector<const OutputPin*> through;
    for (std::size_t o = 0; o < node.output_count(); ++o)
        if (node.output(o).linked() && node.passes_through(in->index(), o)) through.push_back(&node.output(o));
    if (through.size() == 1) {
        path += " -> ";
        describe_holders(*through[0], path, budget);
    } else if (through.size() > 1) {
        path += " -> [";
        for (std::size_t i = 0; i < through.size(); ++i) {
            if (i != 0) path += " | ";
            describe_holders(*through[i], path, budget);
        }
        path += "]";
    }
}

// The node whose streaming thread reaches each node first (following input 0 upstream to a
// source or a queue), for every node in `order` (sources first): one step per node.
std::map<const Node*, const Node*> upstream_sources(const std::vector<Node*>& order) {
    std::map<const Node*, const Node*> source;
    for (const Node* n : order) {
        const InputPin* fed_by = nullptr;  // the first linked input
        for (std::size_t i = 0; !has_streaming_thread(*n) && i < n->input_count() && !fed_by; ++i)
            if (n->input(i).linked()) fed_by = &n->input(i);
        source[n] = fed_by ? source.at(&fed_by->peer()->node()) : n;
    }
    return source;
}

}  // namespace

Status Graph::prepare() {
    std::lock_guard lock(impl_->control);
    return impl_->prepare_locked();
}

Status Graph::Impl::prepare_locked() {
    if (state.load(std::memory_order_relaxed) != State::stopped)  // relaxed: guarded by `control`
        return {engine::GraphErrc::bad_state, "the graph can only be prepared while stopped"};
    if (nodes.empty()) return {engine::GraphErrc::invalid_argument, "the graph has no nodes"};
    std::set<std::string_view> names;
    for (const auto& n : nodes)
        if (!names.insert(n->name()).second) return {engine::GraphErrc::invalid_argument, "two nodes are named '" + n->name() + "'"};

    render_inputs = 0;
    for (const auto& n : nodes) {
        std::size_t linked_inputs = 0;
        for (std::size_t i = 0; i < n->input_count(); ++i) {
            if (n->input(i).linked()) ++linked_inputs;
            else if (!n->input(i).optional())
                return {engine::GraphErrc::not_linked, "pin " + n->input(i).full_name() + " is not linked"};
        }
        for (std::size_t o = 0; o < n->output_count(); ++o)
            if (!n->output(o).peer() && !n->output(o).optional())
                return {engine::GraphErrc::not_linked, "pin " + n->output(o).full_name() + " is not linked"};
        bool any_linked = n->output_count() == 0;
        for (std::size_t o = 0; o < n->output_count(); ++o) any_linked = any_linked || n->output(o).linked();
        if (!any_linked)
            return {engine::GraphErrc::not_linked, n->name() + " has none of its outputs linked"};
        if (n->kind() == Node::Kind::source && n->input_count() != 0)
            return {engine::GraphErrc::invalid_argument, "source " + n->name() + " has inputs"};
        // A transform or render with nothing feeding it would never run (and a node with
        // request inputs, like mix, has none until something links to it).
        if (n->kind() != Node::Kind::source && linked_inputs == 0)
            return {engine::GraphErrc::not_linked, n->name() + " has nothing linked to its input"};
        if (n->kind() != Node::Kind::render && n->output_count() == 0)
            return {engine::GraphErrc::not_linked, n->name() + " has nothing linked to its output"};
        if (n->kind() == Node::Kind::render) render_inputs += linked_inputs;
    }

    // Kahn's algorithm: a node comes after every node feeding it; what is left is a cycle.
    order.clear();
    std::map<const Node*, std::size_t> pending;
    for (const auto& n : nodes) {
        std::size_t linked = 0;
        for (std::size_t i = 0; i < n->input_count(); ++i) linked += n->input(i).linked() ? 1 : 0;
        pending[n.get()] = linked;
    }
    std::vector<Node*> ready;
    for (const auto& n : nodes)
        if (pending[n.get()] == 0) ready.push_back(n.get());
    while (!ready.empty()) {
        Node* n = ready.back();
        ready.pop_back();
        order.push_back(n);
        for (std::size_t o = 0; o < n->output_count(); ++o) {
            if (!n->output(o).linked()) continue;
            Node* d = &n->output(o).peer()->node();
            if (--pending[d] == 0) ready.push_back(d);
        }
    }
    if (order.size() != nodes.size()) {
        std::string cycle;
        for (const auto& n : nodes)
            if (pending[n.get()] != 0) cycle += (cycle.empty() ? "" : ", ") + n->name();
        return {engine::GraphErrc::invalid_argument, "the graph has a cycle through " + cycle};
    }
    if (std::none_of(nodes.begin(), nodes.end(), [](const auto& n) { return n->kind() == Node::Kind::source; }))
        return {engine::GraphErrc::invalid_argument, "the graph has no source"};

    // Formats, from the sources down: what each output offers meets what its peer accepts.
    if (Status st = check_files(); !st) return st;

    for (Node* n : order) {
        for (std::size_t o = 0; o < n->output_count(); ++o) {
            OutputPin& out = n->output(o);
            if (!out.linked()) continue;
            InputPin& in = *out.peer();
            FormatSet offered;
            if (Status st = guarded(*n, "output_formats()", [&] { offered = n->output_formats(o); return Status{}; }); !st)
                return st;
            // An input that accepts anything still reads pictures as packed rows: padded ones go
            // only to inputs that say they read any layout (MediaFormat::kAnyLayout), or that
            // pass them on unchanged to such inputs (tee, queue).
            FormatSet anything = offered;
            for (MediaFormat& f : anything)
                if (!f.packed() && !passes_layout_on(in, f)) f.stride = f.plane_rows = 0;
            const FormatSet agreed = intersect(offered, in.accepts().empty() ? anything : in.accepts());
            if (agreed.empty()) {
                std::string advice;
                if (format_advisor && !offered.empty()) advice = format_advisor(offered.front(), in.accepts());
                return {engine::GraphErrc::not_linked, "cannot link " + out.full_name() + " to " + in.full_name() + ": " +
                                                           out.full_name() + " offers " + to_string(offered) + ", " +
                                                           in.full_name() + " accepts " + to_string(in.accepts()) +
                                                           (advice.empty() ? "" : " (" + advice + ")")};
            }
            const MediaFormat fixed = fixate(agreed.front());
            out.set_format(fixed, Impl::key());
            in.set_format(fixed, Impl::key());
        }
        if (Status st = guarded(*n, "configure()", [&] { return n->configure(); }); !st)
            return {st.code(), st.message().starts_with(n->name() + ": ") ? st.message() : n->name() + ": " + st.message()};
    }

    // Pools: big enough for everything the graph downstream may keep at once, plus the
    // producer's own buffers in flight, or refused when the app fixed a smaller size.
    needed.clear();
    const std::map<const Node*, const Node*> source_of = upstream_sources(order);
    std::map<const OutputPin*, std::size_t> held_memo;
    // Deepest first, so the memoised recursion never goes deeper than one link.
    for (auto it = order.rbegin(); it != order.rend(); ++it)
        for (std::size_t o = 0; o < (*it)->output_count(); ++o)
            if ((*it)->output(o).linked()) (void)held_downstream((*it)->output(o), held_memo);
    for (Node* n : order)
        for (std::size_t o = 0; o < n->output_count(); ++o) {
            OutputPin& out = n->output(o);
            if (!out.linked()) continue;  // no pool: nothing will be pushed through it
            BufferNeeds want;
            if (Status st = guarded(*n, "output_buffers()", [&] { want = n->output_buffers(o); return Status{}; }); !st)
                return st;
            // A node that never takes a buffer from this pool (it passes on what it is given: tee,
            // queue, capsfilter) gets one buffer, whatever downstream holds: sized like the
            // others, each pool of a chain of 500 queues held buffers for everything after it
            // (1.3 GB of pools that nobody used).
            const bool unused = want.buffers == 0;
            const std::size_t need = unused ? 1 : want.buffers + held_downstream(out, held_memo);
            needed[&out] = need;
            std::size_t buffers = out.pool_buffers();
            if (buffers != 0 && buffers < need) {
                std::string path = out.full_name() + " -> ";
                std::size_t budget = 64;
                describe_holders(out, path, budget);
                return {engine::GraphErrc::starvation, "pool of " + out.full_name() + " has " + std::to_string(buffers) +
                                              " buffers but " + std::to_string(need) + " may be held at once on " +
                                              path + "; it would run dry with every holder waiting"};
            }
            if (buffers == 0) buffers = need + (want.exact || unused ? 0 : 2);
            // Its one buffer is as large as those that feed it (their pools are sized: graph
            // order): a node after it sizes its own pool by this one, as the largest sample that
            // reaches it (gain copies a shared sample into its pool, audioresample sizes its
            // output). With the 1 byte such a node asks for, a gain after a tee wrote an empty
            // file and an audioresample after a queue crashed in libsoxr.
            std::size_t bytes = want.bytes;
            if (unused)
                for (std::size_t i = 0; i < n->input_count(); ++i)
                    if (const OutputPin* feed = n->input(i).peer())
                        bytes = std::max(bytes, feed->allocator().properties().buffer_bytes);
            const InputNeeds& downstream = out.peer()->needs();
            const Node* source = source_of.at(n);
            const AllocatorProperties props{.buffers = buffers,
                                            .buffer_bytes = std::max<std::size_t>(bytes, 1),
                                            .alignment = std::max<std::size_t>(downstream.alignment, 64),
                                            .prefix = downstream.prefix,
                                            .numa_node = numa_node_of_cpu(source->thread_options().cpu)};
            out.allocator().set_holders_named(true);  // Node::get_buffer and push name every holder
            auto granted = out.allocator().set_properties(props);
            if (!granted)
                return {granted.error(), "pool of " + out.full_name() + " (" + std::to_string(buffers) + " x " +
                                             std::to_string(props.buffer_bytes) + " bytes): " + granted.error().message() +
                                             pool_refused_because(buffers, props.buffer_bytes)};
        }
    return {};
}

// Refuses a graph that would write a file it reads, or write one file twice: compared by device
// and inode where the file exists, by absolute path where it does not yet.
Status Graph::Impl::check_files() const {
    struct Use {
        const Node* node;
        std::string path;
        bool writes;
        std::string key;
    };
    std::vector<Use> uses;
    for (const auto& n : nodes) {
        std::vector<Node::FileUse> mine;
        if (Status st = guarded(*n, "file_uses()", [&] { mine = n->file_uses(); return Status{}; }); !st) return st;
        for (auto& f : mine) {
            struct stat st {};
            std::string key;
            if (::stat(f.path.c_str(), &st) == 0) {
                if (!S_ISREG(st.st_mode)) continue;  // devices and FIFOs are the nodes' own business
                key = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
            } else {
                std::error_code ec;
                key = std::filesystem::weakly_canonical(std::filesystem::absolute(f.path, ec), ec).string();
            }
            uses.push_back({n.get(), std::move(f.path), f.writes, std::move(key)});
        }
    }
    for (std::size_t i = 0; i < uses.size(); ++i)
        for (std::size_t j = 0; j < uses.size(); ++j) {
            const Use& w = uses[i];
            const Use& other = uses[j];
            if (i == j || !w.writes || w.key != other.key || (other.writes && j < i)) continue;
            return {engine::GraphErrc::invalid_argument,
                    other.writes ? w.node->name() + " and " + other.node->name() + " would both write " + w.path
                                 : w.node->name() + " would write " + w.path + ", which " + other.node->name() +
                                       " reads" + (w.path == other.path ? "" : " as " + other.path) +
                                       ": the input would be destroyed"};
        }
    return {};
}

// ---------------------------------------------------------------------------------------------
// States

Status Graph::pause() {
    std::lock_guard lock(impl_->control);
    return impl_->pause_locked();
}

Status Graph::Impl::pause_locked() {
    const State s = state.load(std::memory_order_relaxed);  // relaxed: guarded by `control`
    if (s == State::paused) return {};
    if (s == State::running) {
        // release: streaming threads that see the closed gate park (acquire in stream()).
        gate.store(kClosed, std::memory_order_release);
        end_preroll(false);  // a pause while prerolling: run() starts the clock where it stands
        clock.pause();
        state.store(State::paused, std::memory_order_release);  // release: read by state()
        post({Event::Type::state_changed, {}, {}, "paused"});
        return {};
    }
    if (Status st = prepare_locked(); !st) return st;
    auto decommit_all = [this] {
        for (Node* n : order)
            for (std::size_t o = 0; o < n->output_count(); ++o) (void)n->output(o).allocator().decommit();
    };
    for (Node* n : order)
        for (std::size_t o = 0; o < n->output_count(); ++o)
            if (!n->output(o).linked()) continue;
            else if (std::error_code ec = n->output(o).allocator().commit()) {
                decommit_all();
                return {ec, "pool of " + n->output(o).full_name() + ": " + ec.message()};
            }
    // Renders first, so files are open before anything can reach them.
    for (auto it = order.rbegin(); it != order.rend(); ++it)
        if (Status st = guarded(**it, "start()", [&] { return (*it)->start(); }); !st) {
            for (auto back = order.rbegin(); back != it; ++back)
                (void)guarded(**back, "stop()", [&] { (*back)->stop(); return Status{}; });
            decommit_all();
            return {st.code(), st.message().starts_with((*it)->name() + ": ") ? st.message()
                                                                                 : (*it)->name() + ": " + st.message()};
        }
    // relaxed: no streaming thread runs yet; the thread starts below publish these.
    render_inputs_ended.store(0, std::memory_order_relaxed);
    ended_past_queues.store(false, std::memory_order_relaxed);
    ended.store(false, std::memory_order_relaxed);
    failed.store(false, std::memory_order_relaxed);
    flushing.store(false, std::memory_order_relaxed);
    gate.store(kClosed, std::memory_order_relaxed);
    clock.reset();
    // The master clock: the first render (in the order added) whose device keeps time.
    clock_master = nullptr;
    for (const auto& n : nodes)
        if (n->kind() == Node::Kind::render && n->device_time() != nullptr) {
            clock_master = n.get();
            break;
        }
    // PTP, where asked for, before any device: machines that share a grandmaster share its time.
    if (ptp) clock_master = nullptr;
    clock.follow(ptp ? &ptp->device_time() : clock_master ? clock_master->device_time() : nullptr);
    clock.share(ptp.get());
    // Preroll (see graph_impl.hpp): only where every source is a file.
    preroll_feeders.clear();
    fresh_start = true;
    const bool files_only = std::all_of(order.begin(), order.end(), [](const Node* n) {
        return n->kind() != Node::Kind::source || n->seekable();
    });
    if (files_only)
        for (const Node* n : order)
            if (has_streaming_thread(*n) && feeds_clocked_render(*n)) preroll_feeders.push_back(n);
    stop_source = std::stop_source();
    stop_token = stop_source.get_token();
    threads.clear();
    try {
        for (Node* n : order)
            if (has_streaming_thread(*n)) {
                threads.emplace_back([this, n] { stream(*n); });
                // relaxed: read by this thread below, and by others under `control` after it; the
                // new thread cannot leave (and decrement it) before the gate opens or a stop is
                // requested (halt_locked() below, after every increment), both later.
                active.fetch_add(1, std::memory_order_relaxed);
            }
    } catch (const std::exception& e) {
        // No thread for a source (the process's thread or address-space limit, or no memory):
        // the threads already made leave, the nodes stop and the pools are decommitted, as in a
        // stop, and the caller hears why instead of catching an exception. Unlike stop(), an
        // error a node reports while stopping here is an event, not this Status (the Status
        // says why nothing ran); no source has produced, so no sample is waited for.
        const std::error_code ec = [&] {
            if (const auto* se = dynamic_cast<const std::system_error*>(&e)) return se->code();
            return make_error_code(Errc::out_of_memory);
        }();
        halt_locked();
        return {ec, std::string("cannot start a streaming thread: ") + (ec == make_error_code(Errc::out_of_memory) ? "out of memory" : ec.message())};
    }
    // Paused means ready: every new streaming thread has its priority and waits at the gate, so
    // that run() starts the clock only then. A thread starts at normal priority and takes its
    // SCHED_FIFO one itself; on a loaded machine it waited its turn behind the load while the
    // clock ran (48 ms once, in 20 s runs of bench/realtime_soak.sh's tail), and the first
    // samples were presented that late. Bounded: a thread not ready in 2 s is said so, not waited for.
    if (!wait_until_parked(std::chrono::steady_clock::now() + std::chrono::seconds(2)))
        post({Event::Type::warning, {}, {}, "a streaming thread was not ready within 2 s; the graph goes on without waiting for it"});
    state.store(State::paused, std::memory_order_release);  // release: read by state()
    post({Event::Type::state_changed, {}, {}, "paused"});
    return {};
}

Status Graph::run() {
    std::lock_guard lock(impl_->control);
    Impl& g = *impl_;
    if (g.state.load(std::memory_order_relaxed) == State::running) return {};  // relaxed: guarded by `control`
    if (Status st = g.pause_locked(); !st) return st;
    if (g.fresh_start && !g.preroll_feeders.empty())
        g.begin_preroll();  // the io thread starts the clock once the renders have their first samples
    else
        g.clock.start();
    g.fresh_start = false;
    // release: pairs with the acquire loads of the gate in stream() and park_at_gate().
    g.gate.store(Impl::kOpen, std::memory_order_release);
    g.gate.notify_all();
    g.state.store(State::running, std::memory_order_release);  // release: read by state()
    if (g.stop_after.count() > 0)
        asio::post(g.io, [&g, d = g.stop_after] {
            g.stop_timer.expires_after(d);
            g.stop_timer.async_wait([&g](std::error_code ec) {
                if (!ec) (void)g.self.stop();
            });
        });
    g.post({Event::Type::state_changed, {}, {}, "running"});
    return {};
}

Status Graph::stop() {
    if (impl_->is_streaming_thread())
        return {engine::GraphErrc::bad_state, "stop() called from a streaming thread would wait for itself"};
    std::lock_guard lock(impl_->control);
    return impl_->stop_locked();
}

Status Graph::Impl::stop_locked() {
    if (state.load(std::memory_order_relaxed) == State::stopped) return {};  // relaxed: guarded by `control`
    const auto t0 = std::chrono::steady_clock::now();
    {
        std::lock_guard lock(events_mutex);
        stopping = true;
        stop_error.reset();
    }
    halt_locked();
    // 4. Samples still out somewhere.
    wait_for_samples(t0);
    const auto took = std::chrono::steady_clock::now() - t0;
    // relaxed: a statistic, read by stats().
    last_stop_ns.store(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count(), std::memory_order_relaxed);
    state.store(State::stopped, std::memory_order_release);  // release: read by state()
    std::optional<Event> error;
    {
        std::lock_guard lock(events_mutex);
        stopping = false;
        error = std::move(stop_error);
        stop_error.reset();
    }
    post({Event::Type::state_changed, {}, {}, "stopped"});
    if (error) return {error->code ? error->code : make_error_code(engine::GraphErrc::io_error), error->message};
    return {};
}

void Graph::Impl::halt_locked() {
    // 1. Decommit every pool first: a thread blocked in get_buffer, or about to be, gets
    //    not_committed. Then release threads parked at the gate or waiting on the clock.
    for (Node* n : order)
        for (std::size_t o = 0; o < n->output_count(); ++o) (void)n->output(o).allocator().decommit();
    stop_source.request_stop();
    end_preroll(false);
    // release: parked threads re-check the stop token after waking.
    gate.store(kStopping, std::memory_order_release);
    gate.notify_all();
    resumes.fetch_add(1, std::memory_order_release);  // release: a resting thread that sees it sees the stop request
    resumes.notify_all();
    clock.interrupt();
    for (Node* n : order) n->unblock();
    // 2. Join.
    threads.clear();
    // 3. Nodes finish: renders drop what they hold, files get their final headers. A node that
    //    cannot finish reports an error, which a stop returns.
    for (Node* n : order)
        if (Status st = guarded(*n, "stop()", [&] { n->stop(); return Status{}; }); !st)
            post({Event::Type::error, n->name(), st.code(), st.message()});
    clock.reset();
}

bool Graph::Impl::wait_until_parked(std::chrono::steady_clock::time_point deadline) const {
    // seq_cst: pairs with park() and the end of stream(): a thread counted parked touches no
    // node until the gate opens again (park() looks at the gate once more after uncounting).
    while (parked.load(std::memory_order_seq_cst) < active.load(std::memory_order_seq_cst)) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
    return true;
}

void Graph::Impl::wait_for_samples(std::chrono::steady_clock::time_point t0) {
    bool reported = false;
    for (;;) {
        std::size_t out = 0;
        for (Node* n : order)
            for (std::size_t o = 0; o < n->output_count(); ++o) out += n->output(o).allocator().stats().outstanding;
        if (out == 0) return;
        const auto waited = std::chrono::steady_clock::now() - t0;
        if (!reported && waited >= stop_report) {
            reported = true;
            std::string who;
            for (Node* n : order)
                for (std::size_t o = 0; o < n->output_count(); ++o)
                    for (const LedgerEntry& e : n->output(o).allocator().ledger())
                        who += (who.empty() ? "" : "; ") + held_sample_report(e, n->output(o).full_name());
            std::string text = "stop is waiting for " + std::to_string(out) + " samples: " + who;
            post({Event::Type::stop_stuck, {}, make_error_code(engine::GraphErrc::samples_held), std::move(text)});
        }
        if (waited >= stop_give_up) {
            post({Event::Type::warning, {}, make_error_code(engine::GraphErrc::samples_held),
                  "stop gave up waiting for " + std::to_string(out) + " samples; they stay valid until released"});
            return;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

Status Graph::Impl::flush_parked(const char* what, const std::function<Status()>& while_parked,
                                 const std::function<Status()>& before_flush) {
    Impl& g = *this;
    // relaxed: push() treats it as a hint; the parking below is the synchronisation.
    g.flushing.store(true, std::memory_order_relaxed);
    const std::uint32_t previous = g.gate.load(std::memory_order_relaxed);
    g.gate.store(kClosed, std::memory_order_seq_cst);  // seq_cst: pairs with park()'s last look
    g.clock.interrupt();
    for (Node* n : g.order) n->unblock();
    // Every streaming thread parks at the gate (or has finished): then no node code runs.
    if (!g.wait_until_parked(std::chrono::steady_clock::now() + std::chrono::seconds(2))) {
        g.flushing.store(false, std::memory_order_relaxed);
        g.gate.store(previous, std::memory_order_release);
        g.gate.notify_all();
        return {engine::GraphErrc::timeout, std::string(what) + ": a streaming thread did not reach a safe point within 2 s"};
    }
    Status st = before_flush ? before_flush() : Status{};
    if (st) {
        for (Node* n : g.order) n->flush();
        st = while_parked();
    }
    g.flushing.store(false, std::memory_order_relaxed);
    g.gate.store(previous, std::memory_order_release);  // release: the nodes' reset state
    g.gate.notify_all();
    return st;
}

Status Graph::flush() {
    std::lock_guard lock(impl_->control);
    Impl& g = *impl_;
    const State s = g.state.load(std::memory_order_relaxed);  // relaxed: guarded by `control`
    if (s == State::stopped) {
        for (Node* n : g.order) n->flush();
        return {};
    }
    return g.flush_parked("flush", [&g] {
        // A flush while prerolling: what was counted was dropped; count again.
        if (g.prerolling.load(std::memory_order_relaxed)) g.begin_preroll();  // relaxed: `control` held
        return Status{};
    });
}

Status Graph::seek(std::int64_t media_ns) {
    std::lock_guard lock(impl_->control);
    Impl& g = *impl_;
    if (media_ns < 0) return {engine::GraphErrc::invalid_argument, "seek: a position before 0 (" + std::to_string(media_ns) + " ns)"};
    if (g.state.load(std::memory_order_relaxed) == State::stopped)  // relaxed: guarded by `control`
        return {engine::GraphErrc::bad_state, "seek: the graph is stopped; run or pause it first"};
    std::size_t streaming = 0, seekable = 0;
    for (Node* n : g.order) {
        if (has_streaming_thread(*n)) ++streaming;
        if (n->kind() == Node::Kind::source && n->seekable()) ++seekable;
    }
    if (seekable == 0) return {engine::GraphErrc::unsupported_format, "seek: no source of this graph can seek"};
    // Paused, a clocked render parks inside present() with a sample of the old position on the
    // stack of its source's produce(); a seek under it would present that sample against the
    // moved clock on resume (a backward seek waiting its whole distance). Not yet: seek playing.
    if (g.state.load(std::memory_order_relaxed) == State::paused)  // relaxed: guarded by `control`
        return {engine::GraphErrc::bad_state, "seek: the graph is paused; seek while it plays (not yet while paused)"};
    // A thread that left after an error has nothing to carry on. A source whose stream ended
    // rests, and a seek carries it on, while the end has reached only queues (which keep it, and
    // drop it below); an end that reached any node without a thread of its own (a tee, a
    // converter, a mixer, a render) is final. Asked again once every thread is parked, before
    // anything is flushed: an end or an error may be on its way now. seq_cst: as flush reads
    // `active`; acquire: pairs with the streaming threads' release of the end.
    auto can_go_on = [&]() -> Status {
        if (g.active.load(std::memory_order_seq_cst) < streaming)
            return {engine::GraphErrc::bad_state, "seek: a streaming thread has left after an error; stop and run again"};
        if (g.ended_past_queues.load(std::memory_order_acquire) || g.render_inputs_ended.load(std::memory_order_acquire) > 0)
            return {engine::GraphErrc::bad_state, "seek: the stream has ended; stop and run again"};
        return {};
    };
    if (Status st = can_go_on(); !st) return st;
    return g.flush_parked("seek", [&]() -> Status {
        for (Node* n : g.order) {
            if (n->kind() != Node::Kind::source || !n->seekable()) continue;
            Status st = guarded(*n, "seek()", [&] { return n->seek(media_ns); });
            if (!st) return {st.code(), st.message().starts_with(n->name() + ": ") ? st.message() : n->name() + ": " + st.message()};
        }
        for (Node* n : g.order) n->forget_end_of_stream();
        g.clock.set(media_ns);  // renders present the new position now
        if (!g.preroll_feeders.empty()) {
            // ... once they have it: the clock stands at the new position until they do.
            g.clock.pause();
            g.clock.set(media_ns);
            g.begin_preroll();
        }
        // release: resting threads wake to the nodes' new state (the gate opens after).
        g.resumes.fetch_add(1, std::memory_order_release);
        g.resumes.notify_all();
        return Status{};
    }, can_go_on);
}

Status Graph::set_property(std::string_view node, std::string_view key, std::string_view value) {
    // Before the lock: stop() holds it while it joins the streaming threads.
    if (impl_->is_streaming_thread())
        return {engine::GraphErrc::bad_state, "set_property from a streaming thread (it could wait on itself)"};
    std::lock_guard lock(impl_->control);
    Node* n = find(node);
    if (n == nullptr) return {engine::GraphErrc::invalid_argument, "set_property: no node named '" + std::string(node) + "'"};
    return guarded(*n, "set_property()", [&] { return n->set_property(key, value); });
}

Status Graph::property(std::string_view node, std::string_view key, std::string& value) const {
    if (impl_->is_streaming_thread())
        return {engine::GraphErrc::bad_state, "property from a streaming thread (it could wait on itself)"};
    std::lock_guard lock(impl_->control);
    const Node* n = find(node);
    if (n == nullptr) return {engine::GraphErrc::invalid_argument, "property: no node named '" + std::string(node) + "'"};
    return guarded(*n, "get_property()", [&] { return n->get_property(key, value); });
}

State Graph::state() const noexcept {
    // acquire: pairs with the release stores of the state changes.
    return impl_->state.load(std::memory_order_acquire);
}

Status Graph::follow_ptp(const PtpOptions& options) {
    const Status stopped_only{GraphErrc::bad_state, "the graph's clock can change only while it is stopped"};
    if (state() != State::stopped) return stopped_only;
    // Opened without the control lock: it may wait seconds for a grandmaster, and stop() or
    // stats() must not wait with it.
    std::unique_ptr<PtpClock> ptp;
    if (Status st = PtpClock::open(options, ptp); !st) return st;
    std::lock_guard lock(impl_->control);
    if (impl_->state.load(std::memory_order_relaxed) != State::stopped) return stopped_only;  // relaxed: guarded by `control`
    // The clock lets go of the old one before it goes (pause() points it at the new one).
    impl_->clock.follow(nullptr);
    impl_->clock.share(nullptr);
    impl_->ptp = std::move(ptp);
    return {};
}

void Graph::set_media_duration(std::int64_t ns) noexcept {
    // relaxed: read by sources after the thread start that publishes it.
    impl_->media_limit.store(ns, std::memory_order_relaxed);
}
std::int64_t Graph::media_duration() const noexcept {
    return impl_->media_limit.load(std::memory_order_relaxed);  // relaxed: as above
}

void Graph::stop_after(std::chrono::nanoseconds d) {
    std::lock_guard lock(impl_->control);
    impl_->stop_after = d;
}

void Graph::set_ticker(std::chrono::milliseconds interval, std::function<void()> tick) {
    asio::post(impl_->io, [this, interval, tick = std::move(tick)]() mutable {
        impl_->tick_timer.cancel();
        impl_->tick_interval = interval;
        impl_->tick = std::move(tick);
        impl_->arm_ticker();
    });
}

void Graph::set_stop_thresholds(std::chrono::milliseconds report, std::chrono::milliseconds give_up) noexcept {
    std::lock_guard lock(impl_->control);
    impl_->stop_report = report;
    impl_->stop_give_up = give_up;
}

void Graph::set_format_advisor(FormatAdvisor advisor) {
    std::lock_guard lock(impl_->control);
    impl_->format_advisor = std::move(advisor);
}

void Graph::set_event_callback(std::function<void(const Event&)> callback) {
    std::lock_guard lock(impl_->events_mutex);
    impl_->event_callback = std::move(callback);
}

int Graph::event_fd() {
    std::lock_guard lock(impl_->events_mutex);
    if (impl_->event_fd < 0) {
        impl_->event_fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        // Events already queued count too, so the descriptor is readable at once.
        if (impl_->event_fd >= 0 && !impl_->events.empty()) {
            const std::uint64_t n = impl_->events.size();
            (void)!::write(impl_->event_fd, &n, sizeof n);
        }
    }
    return impl_->event_fd;
}

std::optional<Event> Graph::poll_event() {
    std::lock_guard lock(impl_->events_mutex);
    if (impl_->events.empty()) return std::nullopt;
    Event e = std::move(impl_->events.front());
    impl_->events.pop_front();
    return e;
}

std::optional<Event> Graph::wait_event(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->events_mutex);
    if (!impl_->events_cv.wait_for(lock, timeout, [&] { return !impl_->events.empty(); })) return std::nullopt;
    Event e = std::move(impl_->events.front());
    impl_->events.pop_front();
    return e;
}

bool Graph::wait_until_ended(std::chrono::milliseconds timeout) {
    std::unique_lock lock(impl_->events_mutex);
    // acquire: pairs with the release stores in input_ended() and post().
    impl_->events_cv.wait_for(lock, timeout, [&] {
        return impl_->ended.load(std::memory_order_acquire) || impl_->failed.load(std::memory_order_acquire);
    });
    return impl_->ended.load(std::memory_order_acquire);
}

bool Graph::ended() const noexcept {
    return impl_->ended.load(std::memory_order_acquire);  // acquire: as above
}

GraphStats Graph::stats() const {
    GraphStats s;
    s.state = state();
    s.running_time_ns = impl_->clock.now();
    s.last_stop = std::chrono::nanoseconds(impl_->last_stop_ns.load(std::memory_order_relaxed));  // relaxed: statistic
    std::lock_guard lock(impl_->control);
    if (impl_->ptp) {
        s.clock = "ptp";
        s.clock_drift_ppm = impl_->ptp->device_time().drift_ppm();
        s.ptp = impl_->ptp->state();
    } else if (impl_->clock_master != nullptr) {
        s.clock = impl_->clock_master->name();
        if (const DeviceTime* d = impl_->clock_master->device_time()) s.clock_drift_ppm = d->drift_ppm();
    }
    for (const auto& n : impl_->nodes) {
        NodeReport& r = s.nodes.emplace_back();
        r.name = n->name();
        r.type = n->type_name();
        r.kind = n->kind();
        r.stats = n->stats();
        r.extras = n->extra_stats();
        for (std::size_t o = 0; o < n->output_count(); ++o)
            if (const InputPin* peer = n->output(o).peer())
                r.links.push_back({n->output(o).full_name(), peer->full_name(), n->output(o).format()});
        for (std::size_t o = 0; o < n->output_count(); ++o) {
            const OutputPin& out = n->output(o);
            const auto it = impl_->needed.find(&out);
            s.pools.push_back({out.full_name(), out.allocator().properties(), out.allocator().stats(),
                               it != impl_->needed.end() ? it->second : 0});
        }
    }
    return s;
}

Clock& Graph::clock() noexcept { return impl_->clock; }

const NodeReport* GraphStats::node(std::string_view name) const noexcept {
    for (const NodeReport& n : nodes)
        if (n.name == name) return &n;
    return nullptr;
}

}  // namespace sluice::engine

// SPDX-License-Identifier: MIT
// jacksink and jacksrc: audio through a JACK server (libjack: jackd2, or PipeWire's JACK
// library), as a JACK client with one port per channel, connected at start to the ports that
// `connect=` names (by default the physical playback or capture ports).
//
// Real-time rules. JACK calls the process callback on its own real-time thread once per period.
// That callback never blocks, locks, allocates, logs or makes a system call (no futex wake, no
// eventfd write): it only moves f32 samples between the ports' buffers and a ring,
// de-interleaving (jacksink) or interleaving (jacksrc) them, and counts with relaxed atomics.
// Everything else (opening, connecting, converting s16/s32, waiting, errors) happens on the
// control and streaming threads, as in JACK's own capture_client and jack_simple_client.
//
// The ring is libjack's own jack_ringbuffer_t (jack/ringbuffer.h), not one written here: it is
// the lock-free single-producer single-consumer ring every JACK client uses, it ships with the
// library we link anyway, and jack_ringbuffer_mlock keeps its pages resident so the callback
// never takes a page fault. Its non-copying vectors (get_read_vector, get_write_vector, then the
// advance calls) let the callback (de)interleave straight between the ring and the ports. Its two
// indices are plain volatile words that libjack reads and writes with no fence: each side here
// puts an acquire fence after taking a vector and a release fence before advancing, which makes
// the hand-off correct on weakly ordered CPUs too (on x86 they only stop the compiler). libjack
// is not built with ThreadSanitizer, which cannot see those accesses: under TSan the fences are
// __tsan_acquire/__tsan_release annotations on the ring saying the same.
//
// Waiting. When the ring is full (jacksink) or short (jacksrc) the streaming thread sleeps on an
// EventCount, the project's one wait primitive, for a bounded slice: until just after the
// callback that makes the room (or delivers the samples missing) is due, counted in periods
// from when the last callback ended (see callback_timetable.hpp). The callback cannot wake it
// (that would be a system call), so it wakes on time; a stop (unblock() and the stop token), a flush, or the
// server going away (jack_on_info_shutdown) wake it at once. A server that runs no process cycle
// while the thread waits (frozen, not gone) is an error event after `stall-timeout=` seconds of
// waiting (stall_watch.hpp), and its client is closed without hanging the stop (close_bounded).
//
// Formats: f32 interleaved, at the server's sample rate, `channels=` ports. jacksink also takes
// s16 and s32 and converts them on the streaming thread. A graph at another rate gets the
// pipeline's advice ("put 'audioresample rate=N' between them").
//
// Xruns. `xruns` counts ours: jacksink's callback found the ring short of a period (after the
// ring first filled and before the end of the stream: neither a start nor an end is an
// underrun); jacksrc's callback found it full and dropped frames (the next sample is flagged as
// a discontinuity). `jack_xruns` counts the server's xrun notifications (any client's lateness in
// the JACK graph). The server going away mid-stream is an error event naming the client; files
// downstream are finished by the graph's stop as after any error.
#include "core/common.hpp"
#include "devices/bounded_close.hpp"
#include "devices/callback_timetable.hpp"
#include "devices/stall_watch.hpp"
#include <sluice/allocators/event_count.hpp>
#include <sluice/engine/log.hpp>
#include <sluice/nodes/registry.hpp>

#include <jack/jack.h>
#include <jack/thread.h>
#include <jack/ringbuffer.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>  // std::hardware_destructive_interference_size
#include <string>
#include <thread>
#include <vector>

#include <regex.h>  // POSIX extended regular expressions, as jack_get_ports reads `connect=`

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>  // __tsan_acquire, __tsan_release
#endif

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::MediaFormat;
using engine::SampleFormat;

constexpr std::size_t kCacheLine = 64;
constexpr int kMaxChannels = 64;

using ClientPtr = detail::CPtr<jack_client_t, jack_client_close>;

class JackNode;

// What JACK's callbacks are registered with, instead of the node: a client may outlive its node.
// A client whose server froze cannot be deactivated (jack_deactivate waits for the server's
// answer for ever), so it is closed on a thread of its own and left to it (see close_bounded);
// should the server thaw, its process callback runs again, and must not run into a node that
// is gone. So the callbacks reach the node through this host, and stop_client() detaches the
// node from it first: from then on they touch nothing of the node's (a playback callback
// writes silence to its ports). The host lives as long as the client.
struct CallbackHost {
    std::atomic<JackNode*> node{nullptr};  // null: detached
    std::atomic<int> calls{0};             // callbacks under way in our code, any thread
    std::atomic<bool> gone{false};         // the server went away (set even when detached)
    std::vector<jack_port_t*> silent_ports;  // output ports a detached callback silences (fixed)
};

// Waits for `done`, spinning a little and then sleeping: what it waits for is a callback's few
// microseconds, but on a CPU it shares with a SCHED_FIFO caller a yield alone would never let a
// normal-priority libjack thread finish.
template <class Done>
void wait_briefly(Done done) noexcept {
    for (int spins = 0; !done(); ++spins) {
        if (spins < 100)
            std::this_thread::yield();
        else
            std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
}

// One callback's visit to the host's node (null when detached). The node stays until the visit
// ends: detach_host() waits for it.
class HostVisit {
public:
    explicit HostVisit(CallbackHost* host) noexcept : host_(host) {
        // seq_cst, with detach_host()'s store and load: the store-then-load on each side needs
        // the single total order (acquire/release allows both loads to miss the other's
        // write), so either this visit sees the node detached, or detach_host() sees this
        // visit counted and waits for it. A locked add: no system call.
        host_->calls.fetch_add(1, std::memory_order_seq_cst);
        node_ = host_->node.load(std::memory_order_seq_cst);
    }
    // release: what the visit did to the node happens before detach_host() sees it leave.
    ~HostVisit() { host_->calls.fetch_sub(1, std::memory_order_release); }
    HostVisit(const HostVisit&) = delete;
    HostVisit& operator=(const HostVisit&) = delete;
    JackNode* node() const noexcept { return node_; }

private:
    CallbackHost* host_;
    JackNode* node_;
};

// A client whose server went away is not closed: libjack2's jack_client_close can then block
// forever on a lock of its own (jackaudio/jack2#395, open; seen here under load in 1 of ~40 runs
// with the server killed mid-stream: the player hung in jack_client_close after reporting the
// error). Its few kilobytes and its host stay, reachable from here (not a leak to
// LeakSanitizer), for the rest of the process; libjack calls nothing of ours once the server is
// gone, and the host is detached anyway.
void abandon_client(jack_client_t* c, CallbackHost* host) {
    static std::mutex mutex;
    static auto* abandoned = new std::vector<std::pair<jack_client_t*, CallbackHost*>>();  // immortal, as the clients
    std::lock_guard lock(mutex);
    abandoned->emplace_back(c, host);
}

// Deactivates and closes a client (its host detached) on a thread of its own, waited for two
// seconds (bounded_close.hpp); if it has not returned by then (a frozen server never answers),
// it is left to that thread, which closes it and frees the host should the server come back.
// Two seconds, not one: a healthy server answers within a few periods, but a sanitizer build on
// a loaded machine has taken most of a second.
void close_bounded(jack_client_t* c, CallbackHost* host, const std::string& label) noexcept {
    const auto close = [c, host]() noexcept {
        // A server that went away meanwhile (killed while frozen, or during the stop): its client
        // is abandoned, not closed (see abandon_client; a close stuck there would also hold
        // libjack's lock that every later jack_client_open in the process takes).
        // acquire: pairs with on_shutdown's release.
        if (jack_deactivate(c) != 0 || host->gone.load(std::memory_order_acquire)) {
            try {
                abandon_client(c, host);
            } catch (...) {  // no memory for the list: the client and host stay unreferenced
            }
            return;
        }
        jack_client_close(c);
        // acquire: the last callback's visit (its release) happens before the host goes. None
        // is under way once the client is closed; this orders it for ThreadSanitizer too, which
        // does not see libjack join its threads.
        wait_briefly([host] { return host->calls.load(std::memory_order_acquire) == 0; });
        delete host;
    };
    if (detail::close_within(close, std::chrono::seconds(2))) return;
    try {
        engine::log_message(engine::LogLevel::warning, label + " did not close within two seconds (a frozen JACK server?); left behind");
    } catch (...) {  // no memory for the line
    }
}
using RingPtr = detail::CPtr<jack_ringbuffer_t, jack_ringbuffer_free>;

// ---- The ring's hand-off (see the header comment). Both sides: take a vector, acquire(),
// touch the samples, release(), advance.
inline void ring_acquire([[maybe_unused]] jack_ringbuffer_t* ring) noexcept {
#if defined(__SANITIZE_THREAD__)
    __tsan_acquire(ring);
#else
    // acquire: the samples (or the room) the other side's advance published are seen after the
    // index that says so; pairs with the release fence in ring_release() on the other side.
    std::atomic_thread_fence(std::memory_order_acquire);
#endif
}
inline void ring_release([[maybe_unused]] jack_ringbuffer_t* ring) noexcept {
#if defined(__SANITIZE_THREAD__)
    __tsan_release(ring);
#else
    // release: our reads or writes of the samples come before the index move that hands them
    // over; pairs with the acquire fence in ring_acquire() on the other side.
    std::atomic_thread_fence(std::memory_order_release);
#endif
}

// The two segments of a ring vector, counted in floats. A float never straddles them: the ring's
// size is a power of two and every advance is whole frames of 4-byte floats.
struct Floats {
    float* a = nullptr;
    std::size_t a_len = 0;
    float* b = nullptr;
    std::size_t b_len = 0;
    float& operator[](std::size_t i) const noexcept { return i < a_len ? a[i] : b[i - a_len]; }
};
inline Floats floats_of(const jack_ringbuffer_data_t (&v)[2]) noexcept {
    return {reinterpret_cast<float*>(v[0].buf), v[0].len / sizeof(float), reinterpret_cast<float*>(v[1].buf),
            v[1].len / sizeof(float)};
}

// libjack prints its diagnostics to stderr; a library of ours never does: they go to the
// engine's log handler at debug level (sluice-play -v shows them). Never called from the
// process callback (we never call libjack's printing functions there). Called from C: nothing
// may unwind out of it.
void forward_jack_log(const char* text) noexcept {
    try {
        engine::log_message(engine::LogLevel::debug, std::string("jack: ") + (text ? text : ""));
    } catch (...) {  // no memory for the line, or the app's handler threw: the line is lost
    }
}

void route_jack_log() {
    static std::once_flag once;
    std::call_once(once, [] {
        jack_set_error_function(&forward_jack_log);
        jack_set_info_function(&forward_jack_log);
    });
}

// "0x11 JackFailure|JackServerFailed"
std::string status_bits(unsigned status) {
    static constexpr std::pair<unsigned, const char*> kBits[] = {
        {JackFailure, "JackFailure"},           {JackInvalidOption, "JackInvalidOption"},
        {JackNameNotUnique, "JackNameNotUnique"}, {JackServerStarted, "JackServerStarted"},
        {JackServerFailed, "JackServerFailed"}, {JackServerError, "JackServerError"},
        {JackNoSuchClient, "JackNoSuchClient"}, {JackLoadFailure, "JackLoadFailure"},
        {JackInitFailure, "JackInitFailure"},   {JackShmFailure, "JackShmFailure"},
        {JackVersionError, "JackVersionError"}, {JackBackendError, "JackBackendError"},
        {JackClientZombie, "JackClientZombie"}};
    char hex[16];
    std::snprintf(hex, sizeof hex, "0x%x", status);
    std::string names;
    for (const auto& [bit, name] : kBits)
        if (status & bit) names += (names.empty() ? "" : "|") + std::string(name);
    return std::string(hex) + (names.empty() ? "" : " " + names);
}

// Properties both nodes share.
std::vector<PropertySpec> client_properties(const char* ports) {
    return {{"client", "sluice", "JACK client name (JACK adds a suffix if it is taken)"},
            {"connect", "physical",
             std::string("JACK ports to connect to at start: 'physical' (the physical ") + ports +
                 " ports), 'none', or a POSIX extended regular expression (e.g. 'system:.*')"},
            {"channels", "2", "channels, one JACK port each"},
            {"latency", "2048", "frames the ring between JACK's thread and the graph holds (at least two periods; two of "
                                "JACK's periods if jack_bufsize makes them longer)"},
            detail::stall_timeout_property("run no process cycle and move")};
}

// JackNode: what jacksink and jacksrc share: the client, its ports and callbacks, the ring, the
// counters and the wait. The derived node supplies the process callback.
class JackNode : public Node {
public:
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        // relaxed: statistics.
        return {{"xruns", xruns_.value.load(std::memory_order_relaxed)},
                {"jack_xruns", jack_xruns_.value.load(std::memory_order_relaxed)}};
    }

    // JACK runs our process callback on a SCHED_FIFO thread at the server's priority less five
    // (5 under jackd -R's default 10). A streaming thread above it (sluice-play --rt-priority 80)
    // could preempt it, and the server's own thread, only to fill or drain a ring that has
    // latency= frames of room: the callback has the deadline, not the ring. So the threads that
    // reach this node stay below the callback (Node::priority_ceiling), as a JACK application's
    // helper threads should:
    // - a ring of kNormalPriorityRingMs or more (the default 2048 frames is 42.7 ms at 48 kHz):
    //   at normal priority, as GStreamer's jackaudiosink and mpv's JACK output feed theirs. The
    //   thread wakes when a quarter has played, so it has three quarters (32 ms) to be scheduled,
    //   which the normal scheduler gives even beside a loaded CPU. A second SCHED_FIFO thread
    //   in the process cost the callback wake-ups on an idle VM (bench/README.md, JACK: 847
    //   missed cycles against 449 at normal priority and the plain client's 526, 8 rounds each).
    // - a shorter ring (latency=128 for a round trip of two periods): SCHED_FIFO one below the
    //   callback, since a normal thread could not be counted on within a few milliseconds.
    static constexpr std::size_t kNormalPriorityRingMs = 20;
    int priority_ceiling() const noexcept override {
        if (!client_ || !jack_is_realtime(client_.get())) return 0;
        if (latency_frames_ * 1000 >= std::size_t(std::max(rate_, 1)) * kNormalPriorityRingMs) return kNormalPriority;
        return std::max(1, jack_client_real_time_priority(client_.get()) - 1);
    }

protected:
    enum class Direction { playback, capture };

    JackNode(std::string name, Kind kind, Direction direction, PropertyReader& r)
        : Node(std::move(name), kind),
          direction_(direction),
          timetable_(direction == Direction::playback ? detail::CallbackTimetable::Side::playback : detail::CallbackTimetable::Side::capture) {
        client_name_ = r.text("client");
        connect_ = r.text("connect");
        channels_ = int(r.integer("channels", 1, kMaxChannels));
        latency_frames_ = std::size_t(r.integer("latency", 16, 1 << 22));
        ring_frames_ = std::max(latency_frames_, 2 * kLongestPeriod);
        stall_ns_ = detail::read_stall_timeout(r);
        if (client_name_.empty() || client_name_.size() > std::size_t(jack_client_name_size() - 1))
            r.fail(engine::GraphErrc::invalid_argument, "client='" + detail::printable(client_name_) + "' is empty or too long for JACK");
        if (r.ok() && connect_ != "none" && connect_ != "physical") {
            regex_t re;
            if (::regcomp(&re, connect_.c_str(), REG_EXTENDED | REG_NOSUB) != 0)
                r.fail(engine::GraphErrc::invalid_argument,
                       "connect='" + detail::printable(connect_) + "' is not a POSIX extended regular expression");
            else
                ::regfree(&re);
        }
        // The client opens now, so that negotiation knows the server's rate and a missing server
        // is bad input; start() uses it.
        if (r.ok())
            if (Status st = open_client(); !st) r.fail(st.code(), st.message());
    }
    ~JackNode() override { end_client(); }

    // The derived node's process callback, made for JACK's real-time thread (see the header).
    virtual int on_process(jack_nframes_t frames) noexcept = 0;

    MediaFormat jack_format() const { return MediaFormat::audio(rate_, channels_, SampleFormat::f32); }
    std::size_t frame_bytes() const noexcept { return std::size_t(channels_) * sizeof(float); }
    int rate() const noexcept { return rate_; }
    // The most frames the ring holds now: latency=, or two of JACK's periods once jack_bufsize
    // made a period longer than half of it (a whole period must fit, or every cycle would be
    // an xrun: a jacksrc grown to 8192-frame periods kept a quarter of what it captured), but
    // never more than the ring was made for. Any thread (the callback reads it each cycle).
    std::size_t latency_frames() const noexcept {
        return std::min(std::max(latency_frames_, 2 * std::size_t(period_frames())), ring_frames_);
    }
    // Frames of JACK's current period. Any thread.
    std::uint32_t period_frames() const noexcept {
        // relaxed: a stale value only changes how long one wait slice lasts, and for a cycle
        // how much the ring may hold (within what it was made for).
        return period_frames_.load(std::memory_order_relaxed);
    }
    // Opens the client (if a stop closed it), makes the ring, activates and connects, for a
    // graph negotiated at `graph_rate`. Control thread.
    Status start_client(int graph_rate) {
        if (!client_)
            if (Status st = open_client(); !st) return st;
        if (server_gone()) return server_gone_status();
        if (rate_ != graph_rate)  // a server restarted at another rate since negotiation
            return {engine::GraphErrc::unsupported_format, client_label() + ": the JACK server runs at " + std::to_string(rate_) +
                                                               " Hz, the graph at " + std::to_string(graph_rate) + " Hz"};
        if (latency_frames_ < 2 * std::size_t(period_frames()))
            return {engine::GraphErrc::invalid_argument, "latency=" + std::to_string(latency_frames_) +
                                                             " is less than two JACK periods (2 x " +
                                                             std::to_string(period_frames()) + " frames)"};
        // One byte more than the frames: the ring keeps one byte free, and latency_frames(), not
        // its power-of-two size, is the most it ever holds. Made for two of the longest periods
        // too (memory only: what it holds is latency=), so that a server whose period grows
        // mid-stream needs no new ring, which could not be swapped under the callback.
        ring_.reset(jack_ringbuffer_create(ring_frames_ * frame_bytes() + 1));
        if (!ring_) return {Errc::out_of_memory, "out of memory for the ring"};
        if (jack_ringbuffer_mlock(ring_.get()) != 0)
            report_warning(client_label() + ": cannot lock the ring in memory (mlock; see ulimit -l): it may page");
        // relaxed: the callback thread does not run yet; jack_activate() starts it (a new thread:
        // everything written here happens before it).
        xruns_.value.store(0, std::memory_order_relaxed);
        jack_xruns_.value.store(0, std::memory_order_relaxed);
        last_callback_ns_.value.store(0, std::memory_order_relaxed);  // relaxed: no callback runs yet
        timetable_.reset();  // the streaming thread's, which does not run yet, as the stall watch
        stall_ = detail::StallWatch(stall_ns_, engine::frames_to_ns(period_frames(), std::max(rate_, 1)));
        stall_mark_ = kNoMark;
        stalled_ = false;
        // JACK stamps its cycles with its own monotonic microseconds (jack_get_time); the offset
        // to the steady clock, read here once, carries them over. (If JACK's time base is the raw
        // monotonic clock, NTP's slewing of the steady one shows in the drift: a few ppm at most.)
        jack_to_steady_ns_ = detail::steady_now_ns() - std::int64_t(jack_get_time()) * 1000;
        reset_for_start();
        if (int e = jack_activate(client_.get()); e != 0) {
            ring_.reset();
            return {engine::GraphErrc::io_error, client_label() + ": cannot activate (JACK error " + std::to_string(e) + ")"};
        }
        if (Status st = connect_ports(); !st) {
            stop_client();
            return st;
        }
        return {};
    }

    // Ends the client: its callbacks no longer reach this node when it returns (see
    // CallbackHost), and it is deactivated and closed without hanging the graph on a frozen
    // server (close_bounded), or left as it is if the server went away (abandon_client). Control
    // thread.
    void stop_client() noexcept {
        end_client();
        ring_.reset();  // no callback reaches it any more
    }
    // The derived node's state for a fresh start. Control thread, callback not running.
    virtual void reset_for_start() noexcept {}

    // Sleeps on the wait primitive until JACK's callbacks will have moved `slice_frames` (see
    // slice_end_ns), or until a stop, a flush or the server's shutdown wakes it. `mark`, the
    // callback_mark() taken before the caller looked at the ring: a callback that ended since
    // then may have moved what the caller waits for, and the wait ends at once. Streaming
    // thread. Returns ok to look again, or why to leave.
    static constexpr std::int64_t kNoMark = detail::CallbackTimetable::kNoMark;
    // When the last callback ended (0: none yet), for wait_slice. Any thread.
    std::int64_t callback_mark() const noexcept {
        return last_callback_ns_.value.load(std::memory_order_relaxed);  // relaxed: a timing hint (see process_trampoline)
    }
    // Flow::error: the server went away or stalled (no process cycle for stall-timeout= of
    // waiting); report_wait_error() says which.
    Flow wait_slice(std::size_t slice_frames, std::int64_t mark = kNoMark) noexcept {
        const std::uint32_t ticket = wake_.prepare_wait();
        if (stop_token().stop_requested()) return Flow::stopped;
        if (flushing()) return Flow::flushing;
        if (shutdown_.load(std::memory_order_acquire)) return Flow::error;  // acquire: pairs with on_shutdown
        if (const std::int64_t last = callback_mark(); last != stall_mark_) {
            stall_mark_ = last;
            stall_.moved();
        }
        const std::int64_t period_ns = engine::frames_to_ns(std::max<std::uint32_t>(period_frames(), 1), std::max(rate_, 1));
        stall_.period(period_ns);  // jack_bufsize may have changed it
        if (stall_.stalled()) {
            stalled_ = true;
            return Flow::error;
        }
        const std::int64_t since = detail::steady_now_ns();
        const std::int64_t until = slice_end_ns(slice_frames, mark);
        wake_.wait(ticket, until, &stop_token());
        // Counted: the time waited, but no more than the slice asked for and a period: a thread
        // that was not run meanwhile (the process stopped with Ctrl-Z, a starved CPU) did not
        // wait on the server all that time, and callbacks may be just resuming.
        stall_.waited(std::min(detail::steady_now_ns() - since, std::max<std::int64_t>(until - since, 0) + period_ns));
        return Flow::ok;
    }
    // The error event for a wait_slice() that returned Flow::error. Streaming thread.
    Flow report_wait_error() {
        if (!stalled_) return report_server_gone();
        return report_error(make_error_code(engine::GraphErrc::io_error),
                            client_label() + ": the JACK server ran no process cycle " + stall_.for_how_long());
    }

    // When a wait for `slice_frames` to move should end (see callback_timetable.hpp).
    // Streaming thread.
    std::int64_t slice_end_ns(std::size_t slice_frames, std::int64_t mark) noexcept {
        const std::int64_t last = callback_mark();  // before now (see CallbackTimetable::slice_end_ns)
        return timetable_.slice_end_ns(last, detail::steady_now_ns(), mark, slice_frames, period_frames(), rate_);
    }

    // Whether the server went away. Any thread.
    bool server_gone() const noexcept {
        // acquire: pairs with on_shutdown's release, so the reason it wrote is seen.
        return shutdown_.load(std::memory_order_acquire);
    }
    Status server_gone_status() const {
        return {engine::GraphErrc::io_error, client_label() + ": the JACK server went away" +
                                                 (shutdown_reason_[0] ? std::string(" (") + shutdown_reason_ + ")" : std::string())};
    }
    Flow report_server_gone() { return report_error(server_gone_status().code(), server_gone_status().message()); }

    // Wakes a wait_slice() in progress (a stop, a flush). Control thread; never blocks.
    void wake() noexcept { wake_.notify_all(); }

    std::string client_label() const { return "JACK client '" + detail::printable(actual_name_.empty() ? client_name_ : actual_name_) + "'"; }

    jack_ringbuffer_t* ring() const noexcept { return ring_.get(); }
    // The client, for the process callback: set before activation, unchanged while it runs (the
    // owning pointer is released when a gone server's client is abandoned).
    jack_client_t* callback_client() const noexcept { return callback_client_; }
    jack_port_t* port(int c) const noexcept { return ports_[std::size_t(c)]; }
    // A time of JACK's (microseconds of jack_get_time) on the steady clock. Any thread, once the
    // client is active.
    std::int64_t jack_to_steady_ns(jack_time_t usecs) const noexcept { return std::int64_t(usecs) * 1000 + jack_to_steady_ns_; }
    int channels() const noexcept { return channels_; }
    // Our own counter: the callback's misses. relaxed everywhere: statistics.
    void count_xrun() noexcept { xruns_.value.fetch_add(1, std::memory_order_relaxed); }  // relaxed: statistics
    std::uint64_t xruns_count() const noexcept { return xruns_.value.load(std::memory_order_relaxed); }  // relaxed: statistics

private:
    Status open_client() {
        route_jack_log();
        auto host = std::make_unique<CallbackHost>();  // before the client: never a client without one
        detail::after_finished_closers();
        jack_status_t status{};
        jack_client_t* raw = jack_client_open(client_name_.c_str(), JackNoStartServer, &status);
        if (!raw) {
            const std::string bits = status_bits(unsigned(status));
            const char* server = std::getenv("JACK_DEFAULT_SERVER");
            const std::string named = server && *server ? std::string(" '") + detail::printable(server) + "'" : "";
            const std::string option = named.empty() ? "" : std::string(" -n ") + detail::printable(server);
            if (status & JackServerFailed)
                return {engine::GraphErrc::io_error,
                        "no JACK server" + named + " running (client '" + detail::printable(client_name_) + "', JACK status " + bits +
                            "); start one with `jackd" + option + " -d alsa` or `jackd" + option + " -d dummy`"};
            return {engine::GraphErrc::io_error,
                    "cannot open JACK client '" + detail::printable(client_name_) + "' (JACK status " + bits + ")"};
        }
        host_ = std::move(host);
        client_.reset(raw);
        callback_client_ = raw;
        // relaxed: no callback is registered yet; jack_set_*_callback() hands the host over.
        host_->node.store(this, std::memory_order_relaxed);
        actual_name_ = jack_get_client_name(raw);
        if (actual_name_ != client_name_)
            engine::log_message(engine::LogLevel::info, "jack: client name '" + client_name_ + "' was taken; JACK named it '" + actual_name_ + "'");
        rate_ = int(jack_get_sample_rate(raw));
        // relaxed: no callback runs yet (the client is not active).
        period_frames_.store(jack_get_buffer_size(raw), std::memory_order_relaxed);
        shutdown_.store(false, std::memory_order_relaxed);  // relaxed: no callback registered yet
        shutdown_reason_[0] = '\0';
        ports_.assign(std::size_t(channels_), nullptr);
        for (int c = 0; c < channels_; ++c) {
            const std::string port_name = (direction_ == Direction::playback ? "out_" : "in_") + std::to_string(c + 1);
            ports_[std::size_t(c)] = jack_port_register(raw, port_name.c_str(), JACK_DEFAULT_AUDIO_TYPE,
                                                        direction_ == Direction::playback ? JackPortIsOutput : JackPortIsInput, 0);
            if (!ports_[std::size_t(c)]) {
                end_client();
                return {engine::GraphErrc::io_error, "JACK client '" + detail::printable(actual_name_) + "': cannot register port " + port_name};
            }
        }
        if (direction_ == Direction::playback) host_->silent_ports = ports_;
        jack_set_process_callback(raw, &JackNode::process_trampoline, host_.get());
        jack_set_xrun_callback(raw, &JackNode::on_xrun, host_.get());
        jack_set_buffer_size_callback(raw, &JackNode::on_buffer_size, host_.get());
        jack_on_info_shutdown(raw, &JackNode::on_shutdown, host_.get());
        return {};
    }

    // See stop_client().
    void end_client() noexcept {
        if (!client_) return;
        detach_host();
        // acquire: pairs with on_shutdown's release (a shutdown after the detach sets only this).
        if (server_gone() || host_->gone.load(std::memory_order_acquire)) {
            try {
                abandon_client(client_.get(), host_.get());
                (void)client_.release();
                (void)host_.release();
            } catch (...) {  // out of memory for the list: close it after all
            }
        }
        if (client_) {
            std::string label;
            try {
                label = client_label();
            } catch (...) {  // no memory for it: the warning, if any, names no client
            }
            close_bounded(client_.release(), host_.release(), label);
        }
        ports_.clear();
    }

    // From now on no callback reaches this node: waits for those under way to leave. They never
    // block (the process callback only moves samples; the others store a value or wake a
    // thread), so this ends within a callback's run; no deadline: a callback preempted for
    // longer would otherwise run into a node being freed.
    void detach_host() noexcept {
        if (!host_) return;
        // seq_cst: see HostVisit.
        host_->node.store(nullptr, std::memory_order_seq_cst);
        wait_briefly([this] { return host_->calls.load(std::memory_order_seq_cst) == 0; });
    }

    // Connects our ports to those `connect=` names: port i of ours to match i, round robin over
    // the shorter list (two channels to one mono port, or one channel to both speakers).
    Status connect_ports() {
        if (connect_ == "none") return {};
        const bool physical = connect_ == "physical";
        const bool playback = direction_ == Direction::playback;
        const unsigned long flags = (playback ? JackPortIsInput : JackPortIsOutput) | (physical ? JackPortIsPhysical : 0);
        const char** names = jack_get_ports(client_.get(), physical ? nullptr : connect_.c_str(), JACK_DEFAULT_AUDIO_TYPE, flags);
        std::size_t count = 0;
        while (names && names[count]) ++count;
        if (count == 0) {
            if (names) jack_free(names);
            const char* what = playback ? "input" : "output";
            if (physical)
                return {engine::GraphErrc::invalid_argument,
                        client_label() + ": the JACK server has no physical " + (playback ? "playback" : "capture") +
                            " ports (connect=REGEX names others, connect=none connects none)"};
            return {engine::GraphErrc::invalid_argument, client_label() + ": connect='" + detail::printable(connect_) +
                                                             "' matches no JACK audio " + what + " port (jack_lsp lists them)"};
        }
        Status result;
        const std::size_t n = std::max(count, std::size_t(channels_));
        for (std::size_t j = 0; j < n && result.ok(); ++j) {
            const char* ours = jack_port_name(ports_[j % std::size_t(channels_)]);
            const char* theirs = names[j % count];
            const int e = playback ? jack_connect(client_.get(), ours, theirs) : jack_connect(client_.get(), theirs, ours);
            if (e != 0 && e != EEXIST)
                result = {engine::GraphErrc::io_error, client_label() + ": cannot connect " + std::string(playback ? ours : theirs) +
                                                           " to " + (playback ? theirs : ours) + " (JACK error " + std::to_string(e) + ")"};
        }
        jack_free(names);
        return result;
    }

    // ---- JACK's callbacks.
    static int process_trampoline(jack_nframes_t frames, void* arg) noexcept {
        auto* host = static_cast<CallbackHost*>(arg);
        const HostVisit visit(host);
        JackNode* node = visit.node();
        if (!node) {  // detached: a client left to close_bounded's thread, its server thawed
            for (jack_port_t* p : host->silent_ports)
                std::fill_n(static_cast<float*>(jack_port_get_buffer(p, frames)), frames, 0.0f);
            return 0;
        }
        const int r = node->on_process(frames);
        // When the samples moved, for wait_slice's timetable. jack_get_time reads the monotonic
        // clock through the vDSO: no kernel entry on the clock sources that have a vDSO path
        // (tsc, kvm-clock: this machine's), a system call on those that have none (hpet,
        // acpi_pm), as for every JACK client that reads the time in its callback. (The cycle
        // times of jack_get_cycle_times are the driver's timetable, not when this client's
        // callback ran, which comes a few hundred microseconds later and varies.) relaxed: a
        // timing hint only; what is in the ring, the ring's own indices (with their fences) say.
        node->last_callback_ns_.value.store(node->jack_to_steady_ns(jack_get_time()), std::memory_order_relaxed);
        return r;
    }
    // The server reports an xrun somewhere in its graph. libjack's notification thread.
    static int on_xrun(void* arg) noexcept {
        const HostVisit visit(static_cast<CallbackHost*>(arg));
        // relaxed: statistics.
        if (JackNode* node = visit.node()) node->jack_xruns_.value.fetch_add(1, std::memory_order_relaxed);
        return 0;
    }
    // The period changed (jack_bufsize). libjack's thread, before the next process callback.
    static int on_buffer_size(jack_nframes_t frames, void* arg) noexcept {
        const HostVisit visit(static_cast<CallbackHost*>(arg));
        // relaxed: read only to size wait slices (see period_frames()).
        if (JackNode* node = visit.node()) node->period_frames_.store(frames, std::memory_order_relaxed);
        return 0;
    }
    // The server went away (or threw us out). libjack's thread, possibly the real-time one, but
    // the stream is over by then: a wake-up's system call is fine. Async-signal-safe work only,
    // as JACK asks: copy the reason, set the flag, wake the streaming thread.
    static void on_shutdown(jack_status_t, const char* reason, void* arg) noexcept {
        auto* host = static_cast<CallbackHost*>(arg);
        const HostVisit visit(host);
        // release: pairs with the acquire loads in end_client() and close_bounded().
        host->gone.store(true, std::memory_order_release);
        JackNode* node = visit.node();
        if (!node) return;
        std::size_t i = 0;
        for (; reason && reason[i] && i + 1 < sizeof node->shutdown_reason_; ++i)
            node->shutdown_reason_[i] = reason[i] >= 0x20 && reason[i] < 0x7f ? reason[i] : '?';
        node->shutdown_reason_[i] = '\0';
        // release: publishes the reason; pairs with the acquire loads in server_gone().
        node->shutdown_.store(true, std::memory_order_release);
        node->wake_.notify_all();
    }

    // A counter on its own cache line: the callback, libjack's notification thread and the
    // statistics readers touch them independently.
    struct alignas(kCacheLine) Counter {
        std::atomic<std::uint64_t> value{0};
    };
    static_assert(sizeof(Counter) == kCacheLine && alignof(Counter) == kCacheLine,
                  "each counter must own its cache line to prevent false sharing");

    Direction direction_;
    std::string client_name_, actual_name_, connect_;
    int channels_ = 2;
    std::size_t latency_frames_ = 2048;   // latency=
    // jackd2's longest period (its BUFFER_SIZE_MAX; jack_bufsize refuses more): the ring has
    // room for two, whatever latency= says (256 KiB for stereo; a server with longer periods,
    // such as PipeWire's JACK with a raised quantum limit, gets xruns counted past it). After
    // the period shrinks again, frames held above the new limit play out (jacksink) or make
    // the callback drop whole cycles, counted as xruns, until they drain (jacksrc).
    static constexpr std::size_t kLongestPeriod = 8192;
    std::size_t ring_frames_ = 2 * kLongestPeriod;  // what the ring is made for
    int rate_ = 0;                             // the server's; fixed while the client is open
    std::unique_ptr<CallbackHost> host_;       // what the client's callbacks reach this node through (outlives client_)
    ClientPtr client_;
    jack_client_t* callback_client_ = nullptr;  // see callback_client()
    std::vector<jack_port_t*> ports_;          // one per channel; fixed while the client is open
    RingPtr ring_;                             // made at start, freed at stop (callback not running)
    std::atomic<std::uint32_t> period_frames_{0};
    std::atomic<bool> shutdown_{false};        // set once by on_shutdown, cleared at open
    char shutdown_reason_[256] = {};           // written before shutdown_ is set, read after
    EventCount wake_;                          // notified by unblock(), flush and on_shutdown
    std::int64_t jack_to_steady_ns_ = 0;       // set before the callback runs (see start_client)
    // When the latest callback ended (0: none yet): written by the callback every cycle, read by
    // the streaming thread, on a line of its own (the EventCount's waiter count beside it is
    // written on every wait).
    struct alignas(kCacheLine) {
        std::atomic<std::int64_t> value{0};
    } last_callback_ns_;
    // The streaming thread's (reset by start_client before it runs).
    detail::CallbackTimetable timetable_;
    std::int64_t stall_ns_ = 0;           // stall-timeout= (0: for ever)
    detail::StallWatch stall_;            // waiting on callbacks that do not come
    std::int64_t stall_mark_ = kNoMark;   // the callback mark the watch last saw
    bool stalled_ = false;                // wait_slice gave up on a stalled server
    Counter xruns_;                            // ours: written by the process callback
    Counter jack_xruns_;                       // JACK's: written by libjack's notification thread
};

// ---- jacksink: the graph writes the ring, JACK's callback reads it into the ports.
class JackSink final : public JackNode {
public:
    JackSink(std::string name, PropertyReader& r) : JackNode(std::move(name), Kind::render, Direction::playback, r) {
        provide_clock_ = r.flag("provide-clock");
        const int rate = r.ok() ? this->rate() : 0;
        add_input("sink", {MediaFormat::audio(rate, channels(), SampleFormat::f32), MediaFormat::audio(rate, channels(), SampleFormat::s16),
                           MediaFormat::audio(rate, channels(), SampleFormat::s32)});
    }
    // Detached here, before this part of the node is gone: the callback calls into it.
    ~JackSink() override { stop_client(); }

    // The server's cycle is the graph's clock (provide-clock=true): media time is what JACK has
    // taken from us, played or not, at the server's pace.
    const engine::DeviceTime* device_time() const noexcept override { return provide_clock_ ? &device_time_ : nullptr; }

private:
    Status start() override { return start_client(input(0).format().rate); }
    void stop() override { stop_client(); }
    void unblock() override { wake(); }

    void reset_for_start() noexcept override {
        first_since_flush_ = true;
        // relaxed: the callback does not run yet (see start_client()).
        primed_.store(false, std::memory_order_relaxed);
        ended_.store(false, std::memory_order_relaxed);
        flush_request_.store(false, std::memory_order_relaxed);
        device_time_.start(rate());
        frames_taken_ = 0;
    }

    // What was written and not yet played is dropped: the callback empties the ring (the reader
    // must) and says so; waited for at most a few periods (a server that stopped calling us
    // leaves it for the next callback).
    void flush() override {
        first_since_flush_ = true;
        if (!ring()) return;
        // release: nothing to publish but the request; acquire loads in the callback see it.
        flush_request_.store(true, std::memory_order_release);
        const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
        // acquire: pairs with the callback's release clear, after which the ring is empty.
        while (flush_request_.load(std::memory_order_acquire) && std::chrono::steady_clock::now() < until)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }

    Flow process(std::size_t, SampleRef&& s) override {
        if (server_gone()) return report_server_gone();
        // JACK's cycle paces the samples, but while the clock does not run a file's graph
        // prerolls: the first sample after a start or a flush waits with the other renders' for
        // the clock to start (audio in the ring now would play ahead of the pictures held for
        // it). Only the first: one held at a pause runs ahead of the clock by the ring, and
        // would wait that out after the pause while the ring runs dry.
        if (first_since_flush_ && !clock().running())
            if (Flow f = present(s); f != Flow::ok) return f;
        first_since_flush_ = false;
        const MediaFormat& f = input(0).format();
        const std::size_t in_frame = f.frame_bytes();
        const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
        std::size_t left = s.size() / in_frame;
        jack_ringbuffer_t* rb = ring();
        const std::size_t fb = frame_bytes();
        for (;;) {
            const std::int64_t mark = callback_mark();
            jack_ringbuffer_data_t v[2];
            jack_ringbuffer_get_write_vector(rb, v);
            ring_acquire(rb);
            // Never more than latency= frames in the ring, whatever its power-of-two size.
            const std::size_t limit = latency_frames();  // read once: the period may change between two reads
            const std::size_t room = std::min((v[0].len + v[1].len) / fb, limit - std::min(limit, held_frames(rb)));
            const std::size_t n = std::min(room, left);
            if (n > 0) {
                write_converted(floats_of(v), p, n, f.sample_format);
                ring_release(rb);
                jack_ringbuffer_write_advance(rb, n * fb);
                p += n * in_frame;
                left -= n;
            }
            // relaxed: only this thread sets it (the callback clears it in a flush, while this
            // thread is parked).
            if (room - n == 0 && !primed_.load(std::memory_order_relaxed))
                // release: the frames written above are in the ring before the callback starts
                // reading it; pairs with the callback's acquire load.
                primed_.store(true, std::memory_order_release);
            // Done once the whole sample is in the ring and there is room for what comes next.
            // A sample whose last frame filled the ring stays here (its frames are in the ring
            // already) until JACK has played as much as it holds, as if its end had not fit:
            // returning at once would take the source's next sample while there is no room for
            // it, and everything upstream (an app's queue of max-buffers=) would run a sample
            // further ahead of what plays, a period more latency with 64-frame samples
            // (bench/README.md, "Session 17"). (An empty sample on a full ring waits too.)
            if (left == 0 && room > n) break;
            // Full: sleep until JACK has played what is left of the sample (all of it, when it
            // is held), at most a quarter of the ring (see slice_end_ns). No longer: the
            // source upstream runs on this thread, and a live one (jacksrc, alsasrc) has only
            // its own buffer meanwhile.
            const std::size_t want = std::min(left == 0 ? std::max<std::size_t>(1, s.size() / in_frame) : left, latency_frames() / 4);
            if (Flow fl = wait_slice(want, mark); fl != Flow::ok) return fl == Flow::error ? report_wait_error() : fl;
        }
        return Flow::ok;
    }

    // What was written plays out before the render reports its end: wait (in slices, woken by
    // a stop) until the callback has taken the last frame, and give up after the ring's length
    // plus a second (a server that stopped calling us).
    void end_of_stream(std::size_t input) override {
        // release: the last frames are in the ring before the callback sees the end; pairs with
        // its acquire loads.
        primed_.store(true, std::memory_order_release);
        ended_.store(true, std::memory_order_release);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1) +
                              std::chrono::nanoseconds(engine::frames_to_ns(latency_frames(), std::max(rate(), 1)));
        while (held_frames(ring()) > 0) {
            if (server_gone()) {
                (void)report_server_gone();
                return;
            }
            if (std::chrono::steady_clock::now() > deadline) {
                (void)report_error(make_error_code(engine::GraphErrc::io_error),
                                   client_label() + ": the JACK server stopped taking samples while draining");
                return;
            }
            const Flow fl = wait_slice(held_frames(ring()));
            if (fl == Flow::error) {
                (void)report_wait_error();
                return;
            }
            if (fl == Flow::stopped) return;  // stopping: the rest is dropped
            if (fl == Flow::flushing) break;
        }
        Node::end_of_stream(input);
    }

    // Frames in the ring. Either side (an index the reader may move at once: a lower bound).
    std::size_t held_frames(jack_ringbuffer_t* rb) const noexcept { return jack_ringbuffer_read_space(rb) / frame_bytes(); }

    // `n` frames of `src` (in `format`) into the ring's free floats, as f32. Streaming thread.
    void write_converted(const Floats& dst, const std::uint8_t* src, std::size_t n, SampleFormat format) const noexcept {
        const std::size_t count = n * std::size_t(channels());
        switch (format) {
            case SampleFormat::f32: {
                float v;
                for (std::size_t i = 0; i < count; ++i) {
                    std::memcpy(&v, src + i * 4, 4);
                    dst[i] = v;
                }
                break;
            }
            case SampleFormat::s16: {
                std::int16_t v;
                for (std::size_t i = 0; i < count; ++i) {
                    std::memcpy(&v, src + i * 2, 2);
                    dst[i] = float(v) * (1.0f / 32768.0f);
                }
                break;
            }
            case SampleFormat::s32: {
                std::int32_t v;
                for (std::size_t i = 0; i < count; ++i) {
                    std::memcpy(&v, src + i * 4, 4);
                    dst[i] = float(double(v) * (1.0 / 2147483648.0));
                }
                break;
            }
            default: break;  // refused at negotiation
        }
    }

    // JACK's real-time thread: never blocks, locks, allocates or makes a system call.
    int on_process(jack_nframes_t frames) noexcept override {
        const int ch = channels();
        float* out[kMaxChannels];
        for (int c = 0; c < ch; ++c) out[c] = static_cast<float*>(jack_port_get_buffer(port(c), frames));
        jack_ringbuffer_t* rb = ring();
        const std::size_t fb = frame_bytes();
        // acquire: pairs with flush()'s release store.
        if (flush_request_.load(std::memory_order_acquire)) {
            jack_ringbuffer_data_t v[2];
            jack_ringbuffer_get_read_vector(rb, v);
            ring_acquire(rb);
            ring_release(rb);
            jack_ringbuffer_read_advance(rb, (v[0].len + v[1].len) / fb * fb);
            primed_.store(false, std::memory_order_relaxed);  // relaxed: published by the release below
            // release: the ring is empty (and unprimed) before flush() sees the request done.
            flush_request_.store(false, std::memory_order_release);
        }
        std::size_t n = 0;
        // acquire: pairs with the streaming thread's release stores; the frames written before
        // them are seen in the ring.
        if (primed_.load(std::memory_order_acquire)) {
            jack_ringbuffer_data_t v[2];
            jack_ringbuffer_get_read_vector(rb, v);
            ring_acquire(rb);
            n = std::min<std::size_t>(frames, (v[0].len + v[1].len) / fb);
            const Floats src = floats_of(v);
            std::size_t i = 0;
            for (std::size_t f = 0; f < n; ++f)
                for (int c = 0; c < ch; ++c) out[c][f] = src[i++];
            ring_release(rb);
            jack_ringbuffer_read_advance(rb, n * fb);
            // acquire: as for primed_, the end is seen with the frames written before it.
            if (n < frames && !ended_.load(std::memory_order_acquire)) count_xrun();
        }
        for (int c = 0; c < ch; ++c) std::fill(out[c] + n, out[c] + frames, 0.0f);
        // The device's time: by the start of this cycle it had taken every frame before it.
        // jack_get_cycle_times reads the server's shared memory (no system call); in freewheel
        // mode it has no cycle times, and jack_get_time (the monotonic clock, through the vDSO)
        // stamps the count instead.
        jack_nframes_t cycle_frames = 0;
        jack_time_t cycle_usecs = 0, next_usecs = 0;
        float period_usecs = 0;
        if (jack_get_cycle_times(callback_client(), &cycle_frames, &cycle_usecs, &next_usecs, &period_usecs) != 0)
            cycle_usecs = jack_get_time();
        device_time_.publish(frames_taken_, jack_to_steady_ns(cycle_usecs));
        frames_taken_ += frames;
        return 0;
    }

    bool provide_clock_ = true;
    bool first_since_flush_ = true;           // streaming thread; start and flush while it is parked
    engine::DeviceTime device_time_;          // published by the callback; see device_time()
    std::uint64_t frames_taken_ = 0;          // the callback's own count (reset before it runs)
    std::atomic<bool> primed_{false};         // the ring filled once (or the stream ended): play
    std::atomic<bool> ended_{false};          // end of stream: an empty ring is no underrun
    std::atomic<bool> flush_request_{false};  // set by flush(), cleared by the callback
};

// ---- jacksrc: JACK's callback writes the ring from the ports, the graph reads it.
class JackSrc final : public JackNode {
public:
    JackSrc(std::string name, PropertyReader& r) : JackNode(std::move(name), Kind::source, Direction::capture, r) {
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        // frames=0: samples of whole periods, at least 256 frames (a period of 64 frames would
        // make 750 samples a second), at most half the ring. A sample waits in the ring until
        // it is whole, so an app that wants each period as soon as JACK captured it asks for
        // frames=64 (GStreamer's latency-time is the same choice). Never more than half the
        // ring: a sample as long as the ring could only be taken from a full one, and the next
        // callback would find no room.
        const std::size_t frames = std::size_t(r.integer("frames", 0, 1 << 21));  // half the longest ring
        if (r.ok() && frames > latency_frames() / 2)
            r.fail(engine::GraphErrc::invalid_argument,
                   "frames=" + std::to_string(frames) + " is more than half of latency=" + std::to_string(latency_frames()) +
                       " (a sample must fit in half the ring)");
        if (r.ok()) {
            const std::size_t period = std::max<std::size_t>(period_frames(), 1);
            sample_frames_ = frames > 0 ? frames : std::max<std::size_t>(1, std::min((256 + period - 1) / period * period, latency_frames() / 2));
        }
        add_output("src", {r.ok() ? jack_format() : MediaFormat::audio(48000, channels(), SampleFormat::f32)});
    }
    // Detached here, before this part of the node is gone: the callback calls into it.
    ~JackSrc() override { stop_client(); }

private:
    engine::BufferNeeds output_buffers(std::size_t) const override { return {sample_frames_ * frame_bytes(), 1}; }
    Status start() override {
        frames_ = 0;
        limit_.produced = 0;
        return start_client(output(0).format().rate);
    }
    void stop() override { stop_client(); }
    void unblock() override { wake(); }

    void reset_for_start() noexcept override {
        seen_xruns_ = 0;
        discontinuity_ = true;
    }

    // What was captured and not yet pushed is dropped. The streaming thread, the ring's reader,
    // is parked: this thread reads for it (the park orders the two).
    void flush() override {
        jack_ringbuffer_t* rb = ring();
        if (!rb) return;
        jack_ringbuffer_data_t v[2];
        jack_ringbuffer_get_read_vector(rb, v);
        ring_acquire(rb);
        ring_release(rb);
        jack_ringbuffer_read_advance(rb, (v[0].len + v[1].len) / frame_bytes() * frame_bytes());
        discontinuity_ = true;
    }

    Flow produce() override {
        const std::int64_t start = engine::frames_to_ns(frames_, rate());
        if (limit_reached(limit_, start)) return Flow::end_of_stream;
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        jack_ringbuffer_t* rb = ring();
        const std::size_t fb = frame_bytes();
        const std::size_t want = std::min(sample_frames_, s->capacity() / fb);
        jack_ringbuffer_data_t v[2];
        for (;;) {
            if (server_gone()) return report_server_gone();
            const std::int64_t mark = callback_mark();
            jack_ringbuffer_get_read_vector(rb, v);
            const std::size_t held = (v[0].len + v[1].len) / fb;
            if (held >= want) break;
            if (Flow fl = wait_slice(want - held, mark); fl != Flow::ok) return fl == Flow::error ? report_wait_error() : fl;
        }
        ring_acquire(rb);
        const Floats src = floats_of(v);
        auto* dst = reinterpret_cast<float*>(s->data());
        for (std::size_t i = 0, n = want * std::size_t(channels()); i < n; ++i) dst[i] = src[i];
        ring_release(rb);
        jack_ringbuffer_read_advance(rb, want * fb);
        // A drop seen late (the counter is relaxed) only flags the next sample instead.
        const std::uint64_t xruns = xruns_count();
        if (xruns != seen_xruns_) {
            seen_xruns_ = xruns;
            discontinuity_ = true;
        }
        (void)s->set_size(want * fb);
        frames_ += want;
        s->set_times(start, engine::frames_to_ns(frames_, rate()));
        if (discontinuity_) s->add_flags(SampleFlags::discontinuity);
        discontinuity_ = false;
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    // JACK's real-time thread: never blocks, locks, allocates or makes a system call.
    int on_process(jack_nframes_t frames) noexcept override {
        const int ch = channels();
        const float* in[kMaxChannels];
        for (int c = 0; c < ch; ++c) in[c] = static_cast<const float*>(jack_port_get_buffer(port(c), frames));
        jack_ringbuffer_t* rb = ring();
        const std::size_t fb = frame_bytes();
        jack_ringbuffer_data_t v[2];
        jack_ringbuffer_get_write_vector(rb, v);
        ring_acquire(rb);
        const std::size_t held = jack_ringbuffer_read_space(rb) / fb;
        const std::size_t limit = latency_frames();  // read once: the period may change between two reads
        const std::size_t room = std::min((v[0].len + v[1].len) / fb, limit - std::min(limit, held));
        const std::size_t n = std::min<std::size_t>(frames, room);
        const Floats dst = floats_of(v);
        std::size_t i = 0;
        for (std::size_t f = 0; f < n; ++f)
            for (int c = 0; c < ch; ++c) dst[i++] = in[c][f];
        ring_release(rb);
        jack_ringbuffer_write_advance(rb, n * fb);
        if (n < frames) count_xrun();  // the graph fell behind: frames dropped
        return 0;
    }

    engine::StreamLimit limit_;
    std::size_t sample_frames_ = 256;
    std::uint64_t frames_ = 0;
    std::uint64_t seen_xruns_ = 0;  // streaming thread's: xruns already flagged as a discontinuity
    bool discontinuity_ = true;     // streaming thread's (and flush()'s, while it is parked)
};

}  // namespace

NodeSpec jacksink_spec() {
    return {"jacksink", Node::Kind::render,
            "plays audio through a JACK server as a client with one port per channel (f32 at the server's rate; xruns counted)",
            [] {
                auto properties = client_properties("playback");
                properties.push_back({"provide-clock", "true",
                                      "the JACK server's cycle is the graph's clock (other clocked renders follow it)"});
                return properties;
            }(),
            factory<JackSink>()};
}

NodeSpec jacksrc_spec() {
    std::vector<PropertySpec> properties = client_properties("capture");
    properties.push_back({"frames", "0",
                          "frames per sample: 0 takes whole periods, at least 256 frames, at most half the ring; "
                          "fewer frames, sooner samples (at most half of latency=)"});
    properties.push_back(detail::num_buffers_property());
    return {"jacksrc", Node::Kind::source,
            "captures audio from a JACK server as a client with one port per channel (f32 at the server's rate; xruns counted)",
            std::move(properties), factory<JackSrc>()};
}

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
// Issue #14's round trip through JACK as an app sees it, in periods: an app's click pushed into
// `appsrc ! jacksink`, out through the JACK server, in through `jacksrc ! appsink`, detected in
// what the app pulls; beside it the same app code on GStreamer's `appsrc ! jackaudiosink` and
// `jackaudiosrc ! appsink` with the same buffering. (bench/realtime_soak.sh's jack_iodelay rows
// measure the JACK side alone, with Sluice as a relay; this adds both rings and both app
// queues, what a user waits for.)
//
//   sluice-bench-jack-roundtrip [PATH] [latency-frames] [seconds] [jacksrc-frames]
//
// PATH: sluice, gstreamer, or PLAYER-RECORDER (sluice-gstreamer: Sluice plays, GStreamer
// records; gstreamer-sluice) to tell which side's part of the trip is which. On the server
// JACK_DEFAULT_SERVER names (the caller starts it; nothing here starts one).
// - Sluice plays with `appsrc format=f32 channels=1 frames=64 max-buffers=2 ! jacksink
//   client=rt-out latency=L` and records with `jacksrc client=rt-in latency=L frames=F ! appsink
//   max-buffers=4`, a graph each. F is 64 unless given (0: jacksrc's own choice, whole periods
//   of at least 256 frames): a sample a period, as GStreamer's latency-time below.
// - GStreamer plays with `appsrc max-buffers=2 block=true ! jackaudiosink client-name=gst-out`
//   and records with `jackaudiosrc client-name=gst-in ! appsink max-buffers=4 sync=false`,
//   buffer-time = L frames and latency-time = one period on both, as L frames of ring each way
//   and a period moved per cycle are in Sluice.
// This program's own JACK client links the player's port to the recorder's. A producer thread
// hands over 64-frame f32 buffers of silence as fast as back pressure lets it (so the buffers
// stay full, as for any source that is not live), with a click every 96 buffers: sample 0 is
// 1 + n / 8192 for click n (1-based). The main thread pulls, finds each click and its number,
// and takes the time from the start of its hand-over (any wait for room included, in both) to
// its pull. Prints one line: clicks sent and found, numbers never sent, the round trip's median,
// min and max in periods and ms, where Sluice plays or records the ring xruns of jacksink /
// jacksrc and the server's xrun notifications from the link on ("-" for a GStreamer side, which
// keeps no such count), and numbers out of order (back twice, or after a later one). Exit 1 if
// any number was never sent or came out of order.
#include <sluice/sluice.hpp>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <jack/jack.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sluice;
using Clock = std::chrono::steady_clock;
constexpr int kRate = 48000;
constexpr int kFrames = 64;           // frames per pushed buffer: one period of the bench's server
constexpr int kBuffersPerClick = 96;  // a click every 128 ms at 48 kHz
constexpr int kMaxClicks = 4096;
constexpr std::int64_t kBufferNs = std::int64_t(kFrames) * 1'000'000'000 / kRate;

[[noreturn]] void fail(int code, const std::string& why) {
    std::fprintf(stderr, "sluice-bench-jack-roundtrip: %s\n", why.c_str());
    std::exit(code);
}

// Links the first port of `from` (a client name) to the first of `to`, through a JACK client of
// this program's own, once both have registered their ports.
struct Linker {
    jack_client_t* client = nullptr;
    void link(const char* from, const char* to) {
        jack_status_t status;
        if (!client) client = jack_client_open("rt-link", JackNoStartServer, &status);
        if (!client) fail(2, "no JACK server (start one: jackd -d dummy -r 48000 -p 64)");
        const std::string a = std::string(from) + ":.*", b = std::string(to) + ":.*";
        const char** outs = nullptr;
        const char** ins = nullptr;
        for (int i = 0; i < 300 && !(outs && ins); ++i) {  // up to 3 s for both clients' ports
            if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
            if (!outs) outs = jack_get_ports(client, a.c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsOutput);
            if (!ins) ins = jack_get_ports(client, b.c_str(), JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput);
        }
        const bool ok = outs && ins && jack_connect(client, outs[0], ins[0]) == 0;
        jack_free(outs);
        jack_free(ins);
        if (!ok) fail(1, std::string("cannot link ") + from + " to " + to);
    }
    ~Linker() {
        if (client) jack_client_close(client);
    }
};

struct Trips {
    std::vector<double> ns;  // one round trip per click found, sorted
    int sent = 0, wrong = 0, out_of_order = 0;
};

// The measurement both paths share. `hand_over(block)` gives the app's 64 frames to the path,
// waiting for room as the path makes it (false: the path ended); `pull(out)` returns the next
// frames that came back, waiting up to a second (false: none); `stop()` stops the path, which
// must make a waiting hand-over return false.
Trips measure(double seconds, const std::function<bool(const float*)>& hand_over,
              const std::function<bool(std::vector<float>&)>& pull, const std::function<void()>& stop) {
    // Hand-over times, written by the producer before the click's hand-over and read by the main
    // thread after the click came back: the sample's trip through the path orders them, but not
    // in the C++ model's eyes, so each is an atomic (relaxed: `sent` publishes them).
    static std::array<std::atomic<Clock::rep>, kMaxClicks> handed{};
    std::atomic<int> sent{0};
    std::atomic<bool> done{false};  // relaxed: only tells the producer to end its loop
    std::thread producer([&] {
        std::array<float, kFrames> block{};
        for (long b = 0; !done.load(std::memory_order_relaxed); ++b) {
            block.fill(0.0f);
            const int n = sent.load(std::memory_order_relaxed);  // relaxed: this thread is its only writer
            const bool click = b % kBuffersPerClick == kBuffersPerClick / 2 && n < kMaxClicks;
            if (click) {
                // One sample carries the click and its number (exact in f32 up to 8192 clicks):
                // an underrun or a drop cannot part them.
                block[0] = 1.0f + float(n + 1) / 8192.0f;
                handed[std::size_t(n)].store(Clock::now().time_since_epoch().count(), std::memory_order_relaxed);
                // release: the time above is visible to whoever reads this count (acquire).
                sent.store(n + 1, std::memory_order_release);
            }
            if (!hand_over(block.data())) return;
        }
    });

    Trips t;
    std::vector<float> got;
    int previous = -1;  // the number of the click found before
    const auto until = Clock::now() + std::chrono::duration<double>(seconds);
    while (Clock::now() < until && pull(got)) {
        const auto now = Clock::now();
        for (float v : got) {
            if (v <= 0.75f) continue;  // silence (0), not a click (1 + n / 8192)
            const int k = int((v - 1.0f) * 8192.0f + 0.5f) - 1;
            // acquire: pairs with the producer's release, so handed[k] is its time.
            if (k < 0 || k >= sent.load(std::memory_order_acquire)) {
                ++t.wrong;
                continue;
            }
            if (k <= previous) ++t.out_of_order;  // back twice, or after a later one
            previous = k;
            // relaxed: the acquire above ordered it (see `handed`).
            const auto t0 = Clock::time_point(Clock::duration(handed[std::size_t(k)].load(std::memory_order_relaxed)));
            t.ns.push_back(std::chrono::duration<double, std::nano>(now - t0).count());
        }
    }
    done.store(true, std::memory_order_relaxed);
    stop();  // wakes the producer if it waits for room
    producer.join();
    t.sent = sent.load(std::memory_order_relaxed);  // relaxed: the producer has been joined
    std::sort(t.ns.begin(), t.ns.end());
    return t;
}

std::uint64_t extra(engine::Graph& g, const char* node, const char* key) {
    for (const auto& [k, v] : g.find(node)->extra_stats())
        if (k == key) return v;
    return 0;
}

// One side of the trip: a player (hand_over) or a recorder (pull), on Sluice or GStreamer.
struct Side {
    virtual ~Side() = default;
    virtual const char* client() const = 0;  // its JACK client's name
    virtual bool hand_over(const float*) { return false; }
    virtual bool pull(std::vector<float>&) { return false; }
    virtual void stop() = 0;         // wakes a hand-over or pull waiting
    // Before stop(): the ring xruns and the server's xrun notifications it counted ("-": none kept).
    virtual std::string ring_xruns() { return "-"; }
    virtual std::string jack_xruns() { return "-"; }
};

// The streaming threads as `sluice-play --rt-priority 80` makes them: SCHED_FIFO, which the
// JACK nodes keep one below JACK's callback for rings this short (Node::priority_ceiling). A
// normal thread cannot be counted on within a 128-frame ring's 2.7 ms.
void realtime(engine::Graph& g) {
    for (const char* n : {"in", "rec"})
        if (engine::Node* node = g.find(n)) node->set_thread_options({.priority = 80, .cpu = -1});
}

struct SluicePlayer final : Side {
    engine::Graph g;
    nodes::AppSrc* in = nullptr;
    explicit SluicePlayer(long latency) {
        if (Status st = nodes::build_pipeline(g, "appsrc name=in format=f32 rate=48000 channels=1 frames=64 max-buffers=2 ! "
                                                 "jacksink name=play client=rt-out channels=1 connect=none latency=" +
                                                     std::to_string(latency));
            !st)
            fail(2, st.message());
        in = nodes::appsrc(g, "in");
        realtime(g);
        if (Status st = g.run(); !st) fail(2, st.message());
    }
    const char* client() const override { return "rt-out"; }
    bool hand_over(const float* block) override { return bool(in->push(std::as_bytes(std::span(block, kFrames)))); }
    std::string ring_xruns() override { return std::to_string(extra(g, "play", "xruns")); }
    std::string jack_xruns() override { return std::to_string(extra(g, "play", "jack_xruns")); }
    void stop() override { (void)g.stop(); }  // decommit: a hand-over waiting for a buffer returns
};

struct SluiceRecorder final : Side {
    engine::Graph g;
    nodes::AppSink* out = nullptr;
    SluiceRecorder(long latency, long frames) {
        if (Status st = nodes::build_pipeline(g, "jacksrc name=rec client=rt-in channels=1 connect=none latency=" + std::to_string(latency) +
                                                     " frames=" + std::to_string(frames) + " ! appsink name=out max-buffers=4");
            !st)
            fail(2, st.message());
        out = nodes::appsink(g, "out");
        realtime(g);
        if (Status st = g.run(); !st) fail(2, st.message());
    }
    const char* client() const override { return "rt-in"; }
    bool pull(std::vector<float>& got) override {
        auto s = out->pull(std::chrono::milliseconds(1000));
        if (!s) return false;
        const float* f = reinterpret_cast<const float*>(s->data());
        got.assign(f, f + s->size() / sizeof(float));
        return true;
    }
    std::string ring_xruns() override { return std::to_string(extra(g, "rec", "xruns")); }
    std::string jack_xruns() override { return std::to_string(extra(g, "rec", "jack_xruns")); }
    void stop() override { (void)g.stop(); }
};

// Any error is fatal, an unknown property too (gst_parse_launch would build the pipeline
// without it, and the row would measure other buffering than it says).
GstElement* launch(const std::string& description) {
    GError* error = nullptr;
    GstElement* p = gst_parse_launch_full(description.c_str(), nullptr, GST_PARSE_FLAG_FATAL_ERRORS, &error);
    if (!p || error) fail(2, std::string("GStreamer: ") + (error ? error->message : "?") + " in: " + description);
    return p;
}

const std::string kGstCaps = "audio/x-raw,format=F32LE,rate=48000,channels=1,layout=interleaved";
// buffer-time = the ring's frames, latency-time = one period, as in Sluice's jack nodes.
std::string gst_times(long latency) {
    return " buffer-time=" + std::to_string(latency * 1'000'000 / kRate) + " latency-time=" + std::to_string(kFrames * 1'000'000 / kRate);
}

struct GstPlayer final : Side {
    GstElement* pipeline;
    GstAppSrc* in;
    long pushed = 0;
    explicit GstPlayer(long latency) {
        pipeline = launch("appsrc name=in format=time max-buffers=2 block=true caps=" + kGstCaps +
                          " ! jackaudiosink client-name=gst-out connect=none" + gst_times(latency));
        in = GST_APP_SRC(gst_bin_get_by_name(GST_BIN(pipeline), "in"));
        if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            fail(2, "GStreamer: the player would not play (is a JACK server running?)");
    }
    ~GstPlayer() override {
        gst_object_unref(in);
        gst_object_unref(pipeline);
    }
    const char* client() const override { return "gst-out"; }
    bool hand_over(const float* block) override {
        GstBuffer* b = gst_buffer_new_allocate(nullptr, kFrames * sizeof(float), nullptr);
        gst_buffer_fill(b, 0, block, kFrames * sizeof(float));
        GST_BUFFER_PTS(b) = GstClockTime(pushed * kBufferNs);
        GST_BUFFER_DURATION(b) = GstClockTime(kBufferNs);
        ++pushed;
        return gst_app_src_push_buffer(in, b) == GST_FLOW_OK;  // blocks while 2 wait (block=true)
    }
    void stop() override { gst_element_set_state(pipeline, GST_STATE_NULL); }  // flushes: a blocked push returns
};

struct GstRecorder final : Side {
    GstElement* pipeline;
    GstAppSink* out;
    explicit GstRecorder(long latency) {
        pipeline = launch("jackaudiosrc client-name=gst-in connect=none" + gst_times(latency) + " ! " + kGstCaps +
                          " ! appsink name=out max-buffers=4 sync=false");
        out = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "out"));
        if (gst_element_set_state(pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            fail(2, "GStreamer: the recorder would not play (is a JACK server running?)");
    }
    ~GstRecorder() override {
        gst_object_unref(out);
        gst_object_unref(pipeline);
    }
    const char* client() const override { return "gst-in"; }
    bool pull(std::vector<float>& got) override {
        GstSample* s = gst_app_sink_try_pull_sample(out, GST_SECOND);
        if (!s) return false;
        GstMapInfo map;
        GstBuffer* b = gst_sample_get_buffer(s);
        gst_buffer_map(b, &map, GST_MAP_READ);
        const float* f = reinterpret_cast<const float*>(map.data);
        got.assign(f, f + map.size / sizeof(float));
        gst_buffer_unmap(b, &map);
        gst_sample_unref(s);
        return true;
    }
    void stop() override { gst_element_set_state(pipeline, GST_STATE_NULL); }
};

std::unique_ptr<Side> make_side(const std::string& who, bool player, long latency, long jacksrc_frames) {
    if (who == "sluice")
        return player ? std::unique_ptr<Side>(new SluicePlayer(latency)) : std::unique_ptr<Side>(new SluiceRecorder(latency, jacksrc_frames));
    return player ? std::unique_ptr<Side>(new GstPlayer(latency)) : std::unique_ptr<Side>(new GstRecorder(latency));
}

}  // namespace

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "sluice";
    const long latency = argc > 2 ? std::atol(argv[2]) : 128;
    const double seconds = argc > 3 ? std::atof(argv[3]) : 5;
    const long jacksrc_frames = argc > 4 ? std::atol(argv[4]) : kFrames;
    // PLAYER[-RECORDER]: sluice, gstreamer, or a mix (sluice-gstreamer: Sluice plays, GStreamer
    // records), to see which side's part of the trip is which.
    const std::size_t dash = path.find('-');
    const std::string player = path.substr(0, dash), recorder = dash == std::string::npos ? player : path.substr(dash + 1);
    auto known = [](const std::string& w) { return w == "sluice" || w == "gstreamer"; };
    if (!known(player) || !known(recorder) || latency < 2 * kFrames || latency > 1 << 20 || !(seconds > 0 && seconds <= 3600) ||
        jacksrc_frames < 0 || jacksrc_frames > latency / 2)
        fail(2, "usage: sluice-bench-jack-roundtrip [sluice|gstreamer|PLAYER-RECORDER] [latency-frames >= 128] [seconds] "
                "[jacksrc-frames, 0..latency/2]");
    if (player == "gstreamer" || recorder == "gstreamer") gst_init(&argc, &argv);
    const std::unique_ptr<Side> rec = make_side(recorder, false, latency, jacksrc_frames);
    const std::unique_ptr<Side> play = make_side(player, true, latency, jacksrc_frames);
    Linker linker;
    bool linked = false;
    std::string counts;
    // The counts when the ports were linked: before it the recorder may fill its queue and ring
    // with nobody pulling yet, which is start-up, not the trip.
    std::string play_xruns0, rec_xruns0, jack_xruns0;
    auto since = [](const std::string& now, const std::string& then) {
        return now == "-" ? now : std::to_string(std::stoull(now) - std::stoull(then));
    };
    auto jack_of = [&] { return play->jack_xruns() != "-" ? play->jack_xruns() : rec->jack_xruns(); };
    const Trips t = measure(
        seconds, [&](const float* block) { return play->hand_over(block); },
        [&](std::vector<float>& got) {
            if (!linked) {  // here, once frames flow: GStreamer's player registers its port on its first buffer
                linker.link(play->client(), rec->client());
                linked = true;
                play_xruns0 = play->ring_xruns();
                rec_xruns0 = rec->ring_xruns();
                jack_xruns0 = jack_of();
            }
            return rec->pull(got);
        },
        [&] {
            if (linked)
                counts = " ring-xruns " + since(play->ring_xruns(), play_xruns0) + "/" + since(rec->ring_xruns(), rec_xruns0) +
                         " jack-xruns " + since(jack_of(), jack_xruns0);
            play->stop();
            rec->stop();
        });
    if (t.ns.empty()) fail(1, path + ": none of " + std::to_string(t.sent) + " clicks came back");
    const double period_ns = kBufferNs;
    const double med = t.ns[t.ns.size() / 2];
    std::printf("%s latency=%ld clicks %d found %zu wrong %d median %.2f periods (%.2f ms) min %.2f max %.2f%s out-of-order %d\n",
                path.c_str(), latency, t.sent, t.ns.size(), t.wrong, med / period_ns, med / 1e6, t.ns.front() / period_ns,
                t.ns.back() / period_ns, counts.c_str(), t.out_of_order);
    return t.wrong == 0 && t.out_of_order == 0 ? 0 : 1;
}

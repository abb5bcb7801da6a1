// SPDX-License-Identifier: MIT
// Issue #18's figures: an app's round trip through appsrc -> appsink, Sluice against GStreamer's
// appsrc ! appsink driven from C doing the same work, and the live property changes a streaming
// thread absorbs without a late sample.
//
//   sluice-bench-app roundtrip [buffers] [reps]   per-buffer time of each, alternating, ratio
//   sluice-bench-app live [seconds]               set_property calls/s against a clocked graph
//
// Round trip, both sides the same work: a producer thread takes a 64-frame s16 stereo buffer
// (256 bytes) from a pool (Sluice: AppSrc::get_buffer; GStreamer: a GstBufferPool, as an app that
// cares about allocations would), writes its index into it, stamps it and pushes it; the main
// thread pulls each rendered sample (AppSink::pull; gst_app_sink_pull_sample), reads the index
// and drops it. Queues of 4 on both sides (max-buffers=4; GStreamer's appsrc max-buffers=4
// block=true). Wall time from the first get to end of stream, per buffer.
#include <sluice/sluice.hpp>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sluice;
using Clock = std::chrono::steady_clock;
constexpr std::size_t kBytes = 64 * 2 * 2;  // 64 frames of s16 stereo
constexpr std::int64_t kBufferNs = 64 * 1'000'000'000LL / 48000;

double sluice_roundtrip(long buffers) {
    engine::Graph g;
    if (Status st = nodes::build_pipeline(g, "appsrc name=in format=s16 channels=2 frames=64 max-buffers=4 ! "
                                             "appsink name=out max-buffers=4");
        !st) {
        std::fprintf(stderr, "sluice-bench-app: %s\n", st.message().c_str());
        std::exit(2);
    }
    nodes::AppSrc& in = *nodes::appsrc(g, "in");
    nodes::AppSink& out = *nodes::appsink(g, "out");
    if (!g.run()) std::exit(2);
    const auto t0 = Clock::now();
    std::thread producer([&] {
        for (long i = 0; i < buffers; ++i) {
            auto s = in.get_buffer();
            if (!s) return;
            std::memcpy(s->data(), &i, sizeof i);
            (void)s->set_size(kBytes);
            if (!in.push(std::move(*s))) return;
        }
        (void)in.end_of_stream();
    });
    long got = 0, sum = 0;
    while (auto s = out.pull()) {
        long i;
        std::memcpy(&i, s->data(), sizeof i);
        sum += i;
        ++got;
    }
    const auto t1 = Clock::now();
    producer.join();
    (void)g.stop();
    if (got != buffers || sum != buffers * (buffers - 1) / 2) {
        std::fprintf(stderr, "sluice-bench-app: sluice lost samples (%ld of %ld)\n", got, buffers);
        std::exit(1);
    }
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(buffers);
}

double gst_roundtrip(long buffers) {
    GError* error = nullptr;
    GstElement* pipeline = gst_parse_launch(
        "appsrc name=in format=time max-buffers=4 block=true "
        "caps=audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved ! "
        "appsink name=out sync=false max-buffers=4",
        &error);
    if (!pipeline) {
        std::fprintf(stderr, "sluice-bench-app: GStreamer: %s\n", error ? error->message : "?");
        std::exit(2);
    }
    GstAppSrc* in = GST_APP_SRC(gst_bin_get_by_name(GST_BIN(pipeline), "in"));
    GstAppSink* out = GST_APP_SINK(gst_bin_get_by_name(GST_BIN(pipeline), "out"));
    GstBufferPool* pool = gst_buffer_pool_new();
    GstStructure* config = gst_buffer_pool_get_config(pool);
    GstCaps* caps = gst_caps_from_string("audio/x-raw,format=S16LE,rate=48000,channels=2,layout=interleaved");
    gst_buffer_pool_config_set_params(config, caps, kBytes, 8, 0);
    gst_caps_unref(caps);
    gst_buffer_pool_set_config(pool, config);
    gst_buffer_pool_set_active(pool, TRUE);
    gst_element_set_state(pipeline, GST_STATE_PLAYING);
    const auto t0 = Clock::now();
    std::thread producer([&] {
        for (long i = 0; i < buffers; ++i) {
            GstBuffer* b = nullptr;
            if (gst_buffer_pool_acquire_buffer(pool, &b, nullptr) != GST_FLOW_OK) return;
            GstMapInfo map;
            gst_buffer_map(b, &map, GST_MAP_WRITE);
            std::memcpy(map.data, &i, sizeof i);
            gst_buffer_unmap(b, &map);
            GST_BUFFER_PTS(b) = GstClockTime(i * kBufferNs);
            GST_BUFFER_DURATION(b) = GstClockTime(kBufferNs);
            if (gst_app_src_push_buffer(in, b) != GST_FLOW_OK) return;
        }
        gst_app_src_end_of_stream(in);
    });
    long got = 0, sum = 0;
    while (GstSample* sample = gst_app_sink_pull_sample(out)) {
        GstBuffer* b = gst_sample_get_buffer(sample);
        GstMapInfo map;
        gst_buffer_map(b, &map, GST_MAP_READ);
        long i;
        std::memcpy(&i, map.data, sizeof i);
        gst_buffer_unmap(b, &map);
        gst_sample_unref(sample);
        sum += i;
        ++got;
    }
    const auto t1 = Clock::now();
    producer.join();
    gst_element_set_state(pipeline, GST_STATE_NULL);
    gst_buffer_pool_set_active(pool, FALSE);
    gst_object_unref(pool);
    gst_object_unref(in);
    gst_object_unref(out);
    gst_object_unref(pipeline);
    if (got != buffers || sum != buffers * (buffers - 1) / 2) {
        std::fprintf(stderr, "sluice-bench-app: GStreamer lost samples (%ld of %ld)\n", got, buffers);
        std::exit(1);
    }
    return std::chrono::duration<double, std::nano>(t1 - t0).count() / double(buffers);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

int roundtrip(long buffers, int reps) {
    std::vector<double> ours, theirs, ratios;
    (void)sluice_roundtrip(buffers / 10);  // warm both up (pages, thread stacks, plugin loading)
    (void)gst_roundtrip(buffers / 10);
    for (int r = 0; r < reps; ++r) {
        // Alternate which goes first, so neither always runs on a warmer machine.
        double a, b;
        if (r % 2 == 0) {
            a = sluice_roundtrip(buffers);
            b = gst_roundtrip(buffers);
        } else {
            b = gst_roundtrip(buffers);
            a = sluice_roundtrip(buffers);
        }
        ours.push_back(a);
        theirs.push_back(b);
        ratios.push_back(a / b);
        std::fprintf(stderr, "rep %d/%d: sluice %.0f ns, gstreamer %.0f ns per buffer\n", r + 1, reps, a, b);
    }
    std::printf("| appsrc -> appsink, %ld buffers of 64 frames | sluice ns/buffer | gstreamer ns/buffer | ratio (sluice/gst) |\n",
                buffers);
    std::printf("|---|---|---|---|\n");
    std::printf("| median of %d | %.0f | %.0f | %.2f |\n", reps, median(ours), median(theirs), median(ratios));
    std::printf("| best | %.0f | %.0f | |\n", *std::min_element(ours.begin(), ours.end()),
                *std::min_element(theirs.begin(), theirs.end()));
    return 0;
}

// A clocked graph at 64 frames (1.33 ms buffers) while the main thread changes the gain and the
// tone's frequency at a given rate (0: none, the baseline; -1: as fast as set_property returns):
// the changes per second made, and whether the render fell late against the baseline.
void live_phase(double seconds, double rate) {
    engine::Graph g;
    if (Status st = nodes::build_pipeline(g, "tone name=t frames=64 ! gain name=g ! nullsink name=out"); !st) {
        std::fprintf(stderr, "sluice-bench-app: %s\n", st.message().c_str());
        std::exit(2);
    }
    g.find("out")->set_clocked(true);
    if (!g.run()) std::exit(2);
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::duration<double>(seconds);
    long changes = 0;
    const char* levels[] = {"-6", "-12", "-3", "0"};
    for (auto now = t0; now < until; now = Clock::now()) {
        if (rate == 0) {
            std::this_thread::sleep_until(until);
            continue;
        }
        if (rate > 0) {  // paced: the next pair of changes at its time
            const auto due = t0 + std::chrono::duration<double>(double(changes) / rate);
            if (due > now) std::this_thread::sleep_until(due);
        }
        (void)g.set_property("g", "db", levels[(changes / 2) % 4]);
        (void)g.set_property("t", "freq", (changes / 2) % 2 ? "440" : "660");
        changes += 2;
    }
    const double took = std::chrono::duration<double>(Clock::now() - t0).count();
    const engine::GraphStats stats = g.stats();
    (void)g.stop();
    const engine::NodeReport* out = stats.node("out");
    std::printf("| %s | %.0f | %llu | %llu | %llu | %.3f ms | %.3f ms |\n",
                rate == 0 ? "none (baseline)" : rate < 0 ? "flat out" : (std::to_string(long(rate)) + "/s").c_str(),
                double(changes) / took, static_cast<unsigned long long>(out->stats.samples_in),
                static_cast<unsigned long long>(out->stats.late), static_cast<unsigned long long>(out->stats.deadline_misses),
                double(out->stats.lateness_p999_ns) / 1e6, double(out->stats.max_lateness_ns) / 1e6);
    std::fflush(stdout);
}

int live(double seconds) {
    std::printf("| live changes asked (%.0f s each, tone frames=64 ! gain ! nullsink, clocked) | changes/s made | buffers | late (> 1 ms) "
                "| deadline misses | lateness p99.9 | worst |\n",
                seconds);
    std::printf("|---|---|---|---|---|---|---|\n");
    for (double rate : {0.0, 1000.0, 100000.0, -1.0}) live_phase(seconds, rate);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    gst_init(&argc, &argv);
    const std::string mode = argc > 1 ? argv[1] : "roundtrip";
    if (mode == "roundtrip") return roundtrip(argc > 2 ? std::atol(argv[2]) : 200'000, argc > 3 ? std::atoi(argv[3]) : 5);
    if (mode == "live") return live(argc > 2 ? std::atof(argv[2]) : 5.0);
    std::fprintf(stderr, "usage: sluice-bench-app roundtrip [buffers] [reps] | live [seconds]\n");
    return 2;
}

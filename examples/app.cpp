// SPDX-License-Identifier: MIT
// An app on both ends of a graph: its own thread makes a sine wave and pushes it into an appsrc,
// the graph turns it down (a gain whose level the app changes while it plays), and the app pulls
// what comes out of an appsink and measures it. No copies on the way out: each pulled SampleRef
// is the pool buffer the gain wrote.
//
//   appsrc (app thread: sine) -> gain (live db) -> appsink (app: peak per second)
//
// Usage: sluice-app-example [seconds]   (default 4; the level drops by 20 dB halfway)
#include <sluice/sluice.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <numbers>
#include <thread>

using namespace sluice;
using namespace std::chrono_literals;

int main(int argc, char** argv) {
    const int seconds = argc > 1 ? std::atoi(argv[1]) : 4;
    if (seconds < 2 || seconds > 3600) {
        std::fprintf(stderr, "usage: sluice-app-example [seconds from 2 to 3600]\n");
        return 2;
    }
    constexpr int kRate = 48000, kFrames = 480;  // 10 ms buffers
    engine::Graph graph;
    if (Status st = nodes::build_pipeline(graph, "appsrc name=in format=f32 channels=1 rate=48000 frames=480 "
                                                 "! gain name=level db=-6 ! appsink name=out max-buffers=8");
        !st) {
        std::fprintf(stderr, "sluice-app-example: %s\n", st.message().c_str());
        return 2;
    }
    nodes::AppSrc& in = *nodes::appsrc(graph, "in");
    nodes::AppSink& out = *nodes::appsink(graph, "out");
    if (Status st = graph.run(); !st) {
        std::fprintf(stderr, "sluice-app-example: %s\n", st.message().c_str());
        return 2;
    }

    // The producer: fills pool buffers straight (no copy in) and pushes them; a stop wakes it.
    std::thread producer([&] {
        const long buffers = long(seconds) * kRate / kFrames;
        double phase = 0;
        for (long b = 0; b < buffers; ++b) {
            auto s = in.get_buffer();
            if (!s) return;  // not_committed: the graph stopped
            auto* p = reinterpret_cast<float*>(s->data());
            for (int i = 0; i < kFrames; ++i, phase += 2 * std::numbers::pi * 440 / kRate) p[i] = float(std::sin(phase));
            (void)s->set_size(kFrames * sizeof(float));
            if (!in.push(std::move(*s))) return;
        }
        (void)in.end_of_stream();
    });

    // The consumer: the level at the end of each second; halfway, the level goes down 20 dB, live.
    int exit_code = 0;
    float peak = 0;
    long pulled = 0;
    for (;;) {
        auto s = out.pull(5s);
        if (!s) {
            if (s.error() != engine::GraphErrc::end_of_stream) {
                std::fprintf(stderr, "sluice-app-example: pull: %s\n", s.error().message().c_str());
                exit_code = 1;
            }
            break;
        }
        // The peak of each second's last 100 ms (buffers queued before a change still carry the
        // old level for a few tens of ms).
        const auto* p = reinterpret_cast<const float*>(s->data());
        if (++pulled % (kRate / kFrames) >= kRate / kFrames - 10 || pulled % (kRate / kFrames) == 0)
            for (std::size_t i = 0; i < s->size() / sizeof(float); ++i) peak = std::max(peak, std::abs(p[i]));
        if (pulled % (kRate / kFrames) == 0) {
            std::printf("second %ld: peak %.1f dBFS\n", pulled / (kRate / kFrames), 20 * std::log10(peak));
            peak = 0;
            if (pulled / (kRate / kFrames) == seconds / 2)
                if (Status st = graph.set_property("level", "db", "-26"); !st)
                    std::fprintf(stderr, "sluice-app-example: %s\n", st.message().c_str());
        }
    }
    producer.join();
    if (Status st = graph.stop(); !st) {
        std::fprintf(stderr, "sluice-app-example: %s\n", st.message().c_str());
        return 1;
    }
    return exit_code;
}

// SPDX-License-Identifier: MIT
// Embedding Sluice: build a graph in C++, with a node of your own, run it to the end, read stats.
//
//   tone (440 Hz, 1 s) -> Peak (our node: measures the loudest sample) -> wavsink
#include <sluice/sluice.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>

using namespace sluice;
using namespace sluice::engine;

// A custom transform: passes s16 audio through unchanged and remembers the peak level.
// Declare pins in the constructor; override process(). Everything else has sensible defaults.
class Peak final : public Node {
public:
    explicit Peak(std::string name) : Node(std::move(name), Kind::transform) {
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16)});
        add_output("src", {MediaFormat::audio(0, 0, SampleFormat::s16)});
    }
    // The sample leaves as it came (same buffer), which the graph needs to size its pools.
    bool passes_through(std::size_t, std::size_t) const override { return true; }
    int peak() const { return peak_.load(std::memory_order_relaxed); }  // relaxed: a statistic

private:
    // Streaming thread: no allocation, no lock.
    Flow process(std::size_t, SampleRef&& s) override {
        const auto* p = reinterpret_cast<const std::int16_t*>(s.data());
        int peak = peak_.load(std::memory_order_relaxed);  // relaxed: only this thread writes it
        for (std::size_t i = 0; i < s.size() / 2; ++i) peak = std::max(peak, std::abs(int(p[i])));
        peak_.store(peak, std::memory_order_relaxed);     // relaxed: read as a statistic
        return push(0, std::move(s));
    }
    std::atomic<int> peak_{0};
};

int main(int argc, char** argv) {
    const std::string path = argc > 1 ? argv[1] : "embed.wav";
    Graph graph;

    std::unique_ptr<Node> tone, sink;
    Status st = nodes::create_node("tone", "tone", {{"freq", "440"}, {"amplitude", "0.25"}}, tone);
    if (st) st = nodes::create_node("wavsink", "out", {{"path", path}}, sink);
    if (!st) {
        std::fprintf(stderr, "embed: %s\n", st.message().c_str());
        return 2;
    }
    Node& src = graph.add(std::move(tone));
    Peak& peak = graph.add<Peak>("peak");
    Node& out = graph.add(std::move(sink));
    graph.set_media_duration(1'000'000'000);  // one second of audio

    if (!(st = graph.connect(src, peak)) || !(st = graph.connect(peak, out)) || !(st = graph.run())) {
        std::fprintf(stderr, "embed: %s\n", st.message().c_str());
        return 2;
    }
    const bool ended = graph.wait_until_ended(std::chrono::seconds(10));
    (void)graph.stop();
    while (auto e = graph.poll_event())
        if (e->type == Event::Type::error) std::fprintf(stderr, "embed: %s: %s\n", e->node.c_str(), e->message.c_str());

    const GraphStats stats = graph.stats();
    std::printf("wrote %s: %s, peak %d of 32767, stop took %.3f ms\n", path.c_str(), ended ? "complete" : "INCOMPLETE",
                peak.peak(), std::chrono::duration<double, std::milli>(stats.last_stop).count());
    for (const auto& pool : stats.pools)
        std::printf("  pool %-10s %zu x %zu bytes, %llu gets, %llu waits\n", pool.pin.c_str(), pool.properties.buffers,
                    pool.properties.buffer_bytes, static_cast<unsigned long long>(pool.stats.gets),
                    static_cast<unsigned long long>(pool.stats.waits));
    return ended ? 0 : 1;
}

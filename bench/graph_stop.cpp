// SPDX-License-Identifier: MIT
// Stop time of a fully blocked graph: 4 sources whose renders never release a sample, so every
// source ends up blocked in get_buffer on an empty pool; then stop(). Reports the distribution of
// stop() durations (which include joining every streaming thread) over N cycles.
//
//   sluice-graph-stop [cycles=1000] [sources=4]
#include <sluice/sluice.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace sluice;
using namespace sluice::engine;

namespace {

class Source final : public Node {
public:
    explicit Source(std::string name) : Node(std::move(name), Kind::source) {
        add_output("src", {MediaFormat::audio(48000, 2, SampleFormat::s16)});
    }

private:
    BufferNeeds output_buffers(std::size_t) const override { return {4096, 1}; }
    Flow produce() override {
        auto s = get_buffer(0);
        if (!s) return Flow::stopped;
        return push(0, std::move(*s));
    }
};

// Keeps everything until stop: the pool upstream runs dry.
class Hoard final : public Node {
public:
    explicit Hoard(std::string name) : Node(std::move(name), Kind::render) {
        add_input("sink", {});
        held_.reserve(64);
    }

private:
    Flow process(std::size_t, SampleRef&& s) override {
        if (held_.size() < held_.capacity()) held_.push_back(std::move(s));
        return Flow::ok;
    }
    void stop() override { held_.clear(); }
    std::vector<SampleRef> held_;
};

}  // namespace

int main(int argc, char** argv) {
    const int cycles = argc > 1 ? std::atoi(argv[1]) : 1000;
    const int sources = argc > 2 ? std::atoi(argv[2]) : 4;
    Graph g;
    for (int i = 0; i < sources; ++i) {
        auto& s = g.add<Source>("src" + std::to_string(i));
        auto& h = g.add<Hoard>("hoard" + std::to_string(i));
        if (!g.connect(s, h)) return 2;
    }
    std::vector<double> us;
    us.reserve(std::size_t(cycles));
    for (int c = 0; c < cycles; ++c) {
        if (!g.run()) return 2;
        // Wait until every source is blocked in get_buffer on its empty pool.
        for (bool all = false; !all;) {
            all = true;
            for (const auto& p : g.stats().pools) all = all && p.stats.waiters == 1;
            if (!all) std::this_thread::yield();
        }
        const auto t0 = std::chrono::steady_clock::now();
        if (!g.stop()) return 2;
        us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
        if (c % 100 == 99 && ::isatty(STDERR_FILENO)) std::fprintf(stderr, "\r%d/%d stops", c + 1, cycles);
    }
    if (::isatty(STDERR_FILENO)) std::fprintf(stderr, "\r\033[K");
    std::sort(us.begin(), us.end());
    auto q = [&](double f) { return us[std::min(us.size() - 1, std::size_t(f * double(us.size())))]; };
    std::printf("fully blocked graph, %d sources, %d stops: stop() median %.1f us, p90 %.1f us, p99 %.1f us, max %.1f us\n",
                sources, cycles, q(0.5), q(0.9), q(0.99), us.back());
    return 0;
}

// SPDX-License-Identifier: MIT
// avsrc decoding straight into pool buffers: the decoder's get_buffer2 is served by the video
// pin's SampleAllocator, and the allocator's contract reaches the decoder's threads.
#include "../support.hpp"

#include <sluice/engine/graph.hpp>
#include <sluice/nodes/registry.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;

namespace {

// Reads pictures in any layout (so the decoder's own padded ones come) and keeps every one
// until stop: the pool runs dry and the decoder waits in get_buffer2.
class HoardPictures final : public Node {
public:
    explicit HoardPictures(std::string name) : Node(std::move(name), Kind::render) {
        add_input("sink", {MediaFormat::video().with_any_layout()});
        hoard_.reserve(4096);
    }
    std::atomic<std::size_t> held{0};
    MediaFormat format() const { return input(0).format(); }

private:
    Flow process(std::size_t, SampleRef&& s) override {
        if (hoard_.size() < hoard_.capacity()) hoard_.push_back(std::move(s));
        held.store(hoard_.size());
        return Flow::ok;
    }
    void stop() override { hoard_.clear(); }
    std::vector<SampleRef> hoard_;
};

std::uint64_t extra(const Graph& g, const std::string& node, const std::string& key) {
    for (const auto& n : g.stats().nodes)
        if (n.name == node)
            for (const auto& [k, v] : n.extras)
                if (k == key) return v;
    FAIL("no stat " << key << " of " << node);
    return 0;
}

}  // namespace

// The case: the graph stops while a decoder thread is blocked in get_buffer2 on an empty
// pool. Decommit wakes it, the decoder is told the picture failed, and stop() returns within the
// usual bound, with nothing counted as a decode error. Frame threads (threads=0: FFmpeg's count)
// and the streaming thread itself (threads=1) both.
TEST_CASE("AvSrc.Pool.DecoderWaitingInGetBuffer2WakesOnStop" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/v.mp4";
    auto made = test::run("ffmpeg -v error -y -f lavfi -i testsrc=size=320x240:rate=25:duration=20 -c:v libx264 -pix_fmt yuv420p "
                          "-preset veryfast " + test::quote(movie) + " 2>&1");
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    for (const char* threads : {"1", "0"}) {
        CAPTURE(threads);
        Graph g;
        std::unique_ptr<Node> src;
        REQUIRE(nodes::create_node("avsrc", "d", {{"path", movie}, {"threads", threads}}, src));
        Node& d = g.add(std::move(src));
        auto& hoard = g.add<HoardPictures>("hoard");
        REQUIRE(g.connect(d, hoard));
        REQUIRE(g.run());
        // The decoder's padded layout was agreed, so get_buffer2 is ours.
        CHECK(hoard.format().stride > 0);
        CHECK(hoard.format().plane_rows >= 240);
        const SampleAllocator& pool = d.output(0).allocator();
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        while (pool.stats().waiters == 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(5ms);
        REQUIRE(pool.stats().waiters > 0);
        std::this_thread::sleep_for(100ms);
        REQUIRE(pool.stats().waiters > 0);  // still waiting: the pool stays dry, nothing falls back
        const std::size_t pictures = hoard.held.load();
        CHECK(pictures > 0);
        CHECK(pictures < 500);  // 20 s at 25 fps: it stopped early, for want of buffers
        const auto t0 = std::chrono::steady_clock::now();
        const Status stopped = g.stop();
        const auto took = std::chrono::steady_clock::now() - t0;
        CHECK_MESSAGE(stopped, stopped.message());
        CHECK(took < 2s);
        CHECK(extra(g, "d", "copies") == 0);
        CHECK(extra(g, "d", "decode_errors") == 0);
        CHECK(pool.stats().outstanding == 0);
    }
}

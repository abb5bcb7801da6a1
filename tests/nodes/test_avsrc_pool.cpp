// SPDX-License-Identifier: MIT
// avsrc decoding straight into pool buffers: the decoder's get_buffer2 is served by the video
// pin's SampleAllocator, and the allocator's contract reaches the decoder's threads.
#include "../support.hpp"
#include "node_stats.hpp"

#include <sluice/engine/graph.hpp>
#include <sluice/nodes/registry.hpp>

#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <mutex>
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

using test::extra;

}  // namespace

// The case: the graph stops while a decoder thread is blocked in get_buffer2 on an empty
// pool. Decommit wakes it, the decoder is told the picture failed, and stop() returns within the
// usual bound, with nothing counted as a decode error. Frame threads (threads=3, more than this
// machine's cores, so some wait for a core as well as for a buffer) and the streaming thread
// itself (threads=1) both.
TEST_CASE("AvSrc.Pool.DecoderWaitingInGetBuffer2WakesOnStop" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/v.mp4";
    auto made = test::make_h264_movie(movie, 20);
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    for (const char* threads : {"1", "3"}) {
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
        // Still waiting 200 ms later: the pool stays dry and the decoder does not fall back to
        // buffers of its own.
        const std::size_t pictures = hoard.held.load();
        std::this_thread::sleep_for(200ms);
        CHECK(hoard.held.load() == pictures);
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

namespace {

// A clocked render that records every sample: its time, its flags and (audio) its s16 samples.
class Recorder final : public Node {
public:
    Recorder(std::string name, MediaFormat accepts) : Node(std::move(name), Kind::render) {
        add_input("sink", {accepts});
        set_clocked(true);
    }
    struct Seen {
        std::int64_t start;
        bool discontinuity;
        std::vector<std::int16_t> samples;
    };
    std::vector<Seen> seen() const {
        std::lock_guard lock(mutex_);
        return seen_;
    }
    std::size_t count() const {
        std::lock_guard lock(mutex_);
        return seen_.size();
    }

private:
    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        Seen one{s.start_time(), s.has(SampleFlags::discontinuity), {}};
        if (input(0).format().kind == MediaKind::audio) {
            const auto* p = reinterpret_cast<const std::int16_t*>(s.data());
            one.samples.assign(p, p + s.size() / 2);
        }
        std::lock_guard lock(mutex_);  // a test's render: a lock is fine here
        seen_.push_back(std::move(one));
        return Flow::ok;
    }
    mutable std::mutex mutex_;
    std::vector<Seen> seen_;
};

}  // namespace

// Graph::seek while playing: both streams of a file go to the position (audio to the exact
// sample, video to the picture there), flagged as discontinuities, and the clock follows, so
// the renders present the new position now rather than waiting or dropping.
TEST_CASE("Graph.Seek.FileSourcesGoThereAndRendersSeeADiscontinuity" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/av.mkv";
    // FLAC (lossless) so the audio can be compared sample for sample with ffmpeg's decode; at
    // 48 kHz, so Matroska's millisecond timestamps are exact sample positions.
    auto made = test::run("ffmpeg -v error -y -f lavfi -i testsrc=size=160x120:rate=25:duration=20 -f lavfi -i "
                          "sine=frequency=441:sample_rate=48000:duration=20 -c:v libx264 -pix_fmt yuv420p -preset veryfast "
                          "-c:a flac " + test::quote(movie) + " 2>&1");
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    auto reference = test::run("ffmpeg -v error -i " + test::quote(movie) + " -map 0:a -f s16le - 2>/dev/null");
    REQUIRE(reference.exit_code == 0);
    const auto* ref = reinterpret_cast<const std::int16_t*>(reference.output.data());
    const std::size_t ref_samples = reference.output.size() / 2;
    REQUIRE(ref_samples == 20 * 48000);

    Graph g;
    std::unique_ptr<Node> src;
    REQUIRE(nodes::create_node("avsrc", "d", {{"path", movie}}, src));
    Node& d = g.add(std::move(src));
    auto& audio = g.add<Recorder>("a", MediaFormat::audio(0, 0, SampleFormat::s16));
    auto& video = g.add<Recorder>("v", MediaFormat::video().with_any_layout());
    REQUIRE(g.connect(d, "audio", audio, ""));
    REQUIRE(g.connect(d, "video", video, ""));

    // Not stopped, no seekable source: refused with a reason.
    const Status early = g.seek(1'000'000'000);
    CHECK_FALSE(early);
    CHECK(early.message().find("stopped") != std::string::npos);

    REQUIRE(g.run());
    while (audio.count() < 5 || video.count() < 5) std::this_thread::sleep_for(10ms);
    const std::int64_t target = 12'000'000'000;  // 12 s: past the file's first key frames
    const Status sought = g.seek(target);
    REQUIRE_MESSAGE(sought, sought.message());
    const auto t0 = std::chrono::steady_clock::now();
    const std::size_t audio_before = audio.count();
    while (audio.count() < audio_before + 10 && std::chrono::steady_clock::now() < t0 + 10s) std::this_thread::sleep_for(10ms);
    // The clock jumped with the sources: presenting 12 s took no 11 s of waiting.
    CHECK(std::chrono::steady_clock::now() - t0 < 5s);
    CHECK(g.clock().now() >= target);
    REQUIRE(g.stop());

    // Audio: the first sample after the seek is flagged and starts exactly at 12 s, and from
    // there the samples are ffmpeg's own decode of the file at 12 s.
    const auto a = audio.seen();
    std::size_t first = 0;
    while (first < a.size() && !(a[first].discontinuity && a[first].start >= target)) ++first;
    REQUIRE(first < a.size());
    CHECK(a[first].start == target);
    std::vector<std::int16_t> after;
    for (std::size_t i = first; i < a.size(); ++i) after.insert(after.end(), a[i].samples.begin(), a[i].samples.end());
    const std::size_t at = 12 * 48000;
    REQUIRE(after.size() > 4800);
    REQUIRE(at + after.size() <= ref_samples);
    const auto mismatch = std::mismatch(after.begin(), after.end(), ref + at);
    const auto first_difference = mismatch.first - after.begin();
    CAPTURE(first_difference);
    CAPTURE(after.size());
    CHECK(mismatch.first == after.end());
    for (std::size_t i = first + 1; i < a.size(); ++i) CHECK(a[i].start > a[i - 1].start);  // no stale sample after it

    // Video: the first picture after the seek is flagged and is the one at 12 s (picture 300).
    const auto v = video.seen();
    std::size_t vfirst = 0;
    while (vfirst < v.size() && !(v[vfirst].discontinuity && v[vfirst].start >= target)) ++vfirst;
    REQUIRE(vfirst < v.size());
    CHECK(v[vfirst].start == target);
}

// A graph whose sources cannot seek (generated tones) refuses with one line.
TEST_CASE("Graph.Seek.NoSeekableSourceIsRefused" * doctest::timeout(30)) {
    Graph g;
    std::unique_ptr<Node> tone, sink;
    REQUIRE(nodes::create_node("tone", "t", {}, tone));
    REQUIRE(nodes::create_node("nullsink", "n", {}, sink));
    Node& t = g.add(std::move(tone));
    Node& n = g.add(std::move(sink));
    REQUIRE(g.connect(t, n));
    REQUIRE(g.pause());
    const Status st = g.seek(0);
    CHECK_FALSE(st);
    CHECK(st.message() == "seek: no source of this graph can seek");
    REQUIRE(g.stop());
}

// wavsrc seeks too: to the sample at the position, flagged.
TEST_CASE("Graph.Seek.WavsrcGoesToTheSample" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string wav = dir.path() + "/a.wav";
    auto made = test::run("ffmpeg -v error -y -f lavfi -i sine=frequency=441:sample_rate=48000:duration=20 -c:a pcm_s16le " +
                          test::quote(wav) + " 2>&1");
    REQUIRE(made.exit_code == 0);
    auto reference = test::run("ffmpeg -v error -i " + test::quote(wav) + " -f s16le - 2>/dev/null");
    const auto* ref = reinterpret_cast<const std::int16_t*>(reference.output.data());
    Graph g;
    std::unique_ptr<Node> src;
    REQUIRE(nodes::create_node("wavsrc", "w", {{"path", wav}}, src));
    Node& w = g.add(std::move(src));
    auto& audio = g.add<Recorder>("a", MediaFormat::audio(0, 0, SampleFormat::s16));
    REQUIRE(g.connect(w, audio));
    // Paused, a render may hold a sample of the old position inside present(): refused for now.
    REQUIRE(g.pause());
    const Status paused = g.seek(1'000'000'000);
    CHECK_FALSE(paused);
    CHECK(paused.message().find("paused") != std::string::npos);
    REQUIRE(g.run());
    while (audio.count() < 3) std::this_thread::sleep_for(5ms);
    const std::int64_t target = 7'500'000'000;
    REQUIRE(g.seek(target));
    const std::size_t before = audio.count();
    while (audio.count() < before + 5) std::this_thread::sleep_for(5ms);
    REQUIRE(g.stop());
    const auto a = audio.seen();
    std::size_t first = 1;
    while (first < a.size() && !a[first].discontinuity) ++first;
    REQUIRE(first < a.size());
    CHECK(a[first].start == target);
    const std::size_t at = 7 * 48000 + 24000;
    CHECK(std::equal(a[first].samples.begin(), a[first].samples.end(), ref + at));
}

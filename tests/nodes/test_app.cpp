// SPDX-License-Identifier: MIT
// appsrc and appsink (an app's threads on either end of a graph) and live properties
// (Graph::set_property / property), issue #18.
#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <numbers>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sluice::Errc;
using sluice::SampleRef;
using sluice::Status;
using sluice::engine::Graph;
using sluice::engine::GraphErrc;
using sluice::nodes::AppSink;
using sluice::nodes::AppSrc;

// Builds `pipeline` into `g`; fails the test with the parser's message if it cannot.
Graph& built(Graph& g, const std::string& pipeline) {
    const Status st = sluice::nodes::build_pipeline(g, pipeline);
    REQUIRE_MESSAGE(st.ok(), st.message());
    return g;
}

struct AppGraph {
    Graph g;
    AppSrc* in = nullptr;
    AppSink* out = nullptr;
    explicit AppGraph(const std::string& pipeline)
        : in(sluice::nodes::appsrc(built(g, pipeline), "in")), out(sluice::nodes::appsink(g, "out")) {}
};

// Two appsrcs, "a" and "b", mixed into appsink "out" by `pipeline`. Tests take them apart:
// `auto& [g, a, b, out] = mix;`.
struct MixGraph {
    explicit MixGraph(const std::string& pipeline)
        : a(*sluice::nodes::appsrc(built(g, pipeline), "a")), b(*sluice::nodes::appsrc(g, "b")),
          out(*sluice::nodes::appsink(g, "out")) {}
    Graph g;
    AppSrc& a;
    AppSrc& b;
    AppSink& out;
};

// Pushes one buffer of `frames` mono f32 frames, each `value`, through the pool.
Status push_constant(AppSrc& in, std::size_t frames, float value, std::int64_t pts = sluice::kNoTime) {
    auto s = in.get_buffer(5s);
    if (!s) return {s.error(), "get_buffer: " + s.error().message()};
    auto* p = reinterpret_cast<float*>(s->data());
    for (std::size_t i = 0; i < frames; ++i) p[i] = value;
    (void)s->set_size(frames * sizeof(float));
    return in.push(std::move(*s), pts);
}

std::vector<float> floats_of(const SampleRef& s) {
    std::vector<float> v(s.size() / sizeof(float));
    std::memcpy(v.data(), s.data(), v.size() * sizeof(float));
    return v;
}

// Pulls the two buffers of 100 frames that follow a level change from `out`: the first ramps,
// starting between `first_above` and `first_below` (just under the old level), falling frame by
// frame and ending at `level`; the second is all at `level`. Returns the ramp.
std::vector<float> check_ramp_then_level(AppSink& out, float first_below, float first_above, float level) {
    auto ramped = out.pull(5s);
    auto settled = out.pull(5s);
    REQUIRE(ramped);
    REQUIRE(settled);
    const auto r = floats_of(*ramped);
    REQUIRE(r.size() == 100);
    CHECK(r.front() < first_below);
    CHECK(r.front() > first_above);
    CHECK(r.back() == doctest::Approx(level).epsilon(1e-5));
    for (std::size_t i = 1; i < r.size(); ++i) CHECK(r[i] < r[i - 1]);
    for (float v : floats_of(*settled)) CHECK(v == doctest::Approx(level).epsilon(1e-5));
    return r;
}

}  // namespace

TEST_CASE("App.RoundTrip.KnownSamplesThroughGain" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 rate=48000 channels=1 frames=256 ! gain db=-6.020599913 ! appsink name=out");
    REQUIRE(a.in != nullptr);
    REQUIRE(a.out != nullptr);
    REQUIRE(a.g.run());
    // A ramp the app writes; the gain halves it; times follow from the sizes.
    for (int b = 0; b < 8; ++b) {
        std::vector<float> ramp(256);
        for (std::size_t i = 0; i < ramp.size(); ++i) ramp[i] = float(b * 256 + int(i)) / 4096.0f;
        REQUIRE(a.in->push(std::as_bytes(std::span(ramp))).ok());
    }
    REQUIRE(a.in->end_of_stream().ok());
    for (int b = 0; b < 8; ++b) {
        auto s = a.out->pull(5s);
        REQUIRE_MESSAGE(s, s.error().message());
        CHECK(s->start_time() == std::int64_t(b) * 256 * 1'000'000'000 / 48000);
        CHECK(s->stop_time() == std::int64_t(b + 1) * 256 * 1'000'000'000 / 48000);
        CHECK(s->has(sluice::SampleFlags::discontinuity) == (b == 0));
        const auto v = floats_of(*s);
        REQUIRE(v.size() == 256);
        for (std::size_t i = 0; i < v.size(); ++i) CHECK(v[i] == doctest::Approx(float(b * 256 + int(i)) / 8192.0f).epsilon(1e-6));
    }
    auto end = a.out->pull(5s);
    REQUIRE(!end);
    CHECK(end.error() == GraphErrc::end_of_stream);
    CHECK(a.g.wait_until_ended(5000ms));
    REQUIRE(a.g.stop());
    CHECK(a.g.stats().node("out")->stats.samples_in == 8);
}

TEST_CASE("App.RoundTrip.VideoPicturesAndExplicitTimes" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=rgba width=16 height=8 fps=25 ! appsink name=out");
    REQUIRE(a.g.run());
    std::vector<std::byte> picture(16 * 8 * 4);
    for (std::size_t i = 0; i < picture.size(); ++i) picture[i] = std::byte(i * 7);
    REQUIRE(a.in->push(picture, 1'000'000'000).ok());
    auto s = a.out->pull(5s);
    REQUIRE(s);
    CHECK(s->start_time() == 1'000'000'000);
    CHECK(s->stop_time() == 1'040'000'000);
    REQUIRE(s->size() == picture.size());
    CHECK(std::memcmp(s->data(), picture.data(), picture.size()) == 0);
    CHECK(a.out->format().width == 16);
    s->reset();
    REQUIRE(a.g.stop());
}

TEST_CASE("App.BadInput.ClearErrorsNoCrash" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=s16 channels=2 frames=64 ! appsink name=out");
    // Stopped: nothing to fill, nothing to push.
    CHECK(a.in->get_buffer(10ms).error() == Errc::not_committed);
    CHECK(a.in->push(std::vector<std::byte>(8), sluice::kNoTime, 10ms).code() == Errc::not_committed);
    CHECK(a.in->end_of_stream().code() == Errc::not_committed);
    CHECK(a.out->pull(10ms).error() == Errc::not_committed);
    REQUIRE(a.g.run());
    // More than a buffer holds: refused before any wait.
    const Status big = a.in->push(std::vector<std::byte>(64 * 4 + 4));
    CHECK(big.code() == GraphErrc::invalid_argument);
    CHECK(big.message().find("do not fit") != std::string::npos);
    // Not whole frames (s16 stereo: 4-byte frames).
    const Status odd = a.in->push(std::vector<std::byte>(6));
    CHECK(odd.code() == GraphErrc::invalid_argument);
    CHECK(odd.message().find("whole number") != std::string::npos);
    // An empty sample.
    CHECK(a.in->push(SampleRef{}).code() == GraphErrc::invalid_argument);
    CHECK(a.in->push(std::vector<std::byte>(8), -5).code() == GraphErrc::invalid_argument);
    REQUIRE(a.in->push(std::vector<std::byte>(8)).ok());
    REQUIRE(a.in->end_of_stream().ok());
    const Status after = a.in->push(std::vector<std::byte>(8));
    CHECK(after.code() == GraphErrc::bad_state);
    CHECK(after.message().find("after end_of_stream") != std::string::npos);
    CHECK(a.in->end_of_stream().code() == GraphErrc::bad_state);
    auto s = a.out->pull(5s);
    REQUIRE(s);
    CHECK(s->size() == 8);
    s->reset();
    CHECK(a.out->pull(5s).error() == GraphErrc::end_of_stream);
    REQUIRE(a.g.stop());
    // Impossible properties.
    Graph g;
    CHECK(!sluice::nodes::build_pipeline(g, "appsrc format=yuv ! appsink"));
    CHECK(!sluice::nodes::build_pipeline(g, "appsrc max-buffers=0 ! appsink"));
    CHECK(!sluice::nodes::build_pipeline(g, "appsrc format=i420 width=0 ! appsink"));
    CHECK(!sluice::nodes::build_pipeline(g, "tone ! appsink drop=maybe"));
}

TEST_CASE("App.Stop.ReleasesAnAppThreadBlockedInGetBuffer" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 channels=1 frames=64 max-buffers=2 ! appsink name=out max-buffers=1");
    REQUIRE(a.g.pause());  // pools committed, nothing flows: the app can hold every buffer
    std::atomic<bool> holding{false};
    std::error_code third;
    std::thread app([&] {
        std::vector<SampleRef> held;
        // Every buffer the pool has (the pool may hold more than max-buffers, sized for the graph).
        while (auto s = a.in->get_buffer(200ms)) held.push_back(std::move(*s));
        holding.store(true);
        auto blocked = a.in->get_buffer();  // no timeout: only the stop can end this wait
        third = blocked ? std::error_code{} : blocked.error();
        held.clear();
    });
    while (!holding.load()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(50ms);  // into the wait
    const auto t0 = std::chrono::steady_clock::now();
    REQUIRE(a.g.stop());
    app.join();
    const auto took = std::chrono::steady_clock::now() - t0;
    CHECK(third == Errc::not_committed);
    MESSAGE("stop with an app thread blocked in get_buffer took "
            << std::chrono::duration<double, std::milli>(took).count() << " ms");
}

// appsrc's pool is exact (BufferNeeds::exact): its max-buffers, the one its streaming thread
// pushes, and what downstream keeps; the two spares other pools get would be two more samples
// queued ahead of the app's next.
TEST_CASE("App.Src.PoolIsMaxBuffersAndWhatTheGraphHoldsNoSpares" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 channels=1 frames=64 max-buffers=2 ! appsink name=out max-buffers=1");
    REQUIRE(a.g.pause());  // pools committed, nothing flows: the app can take every buffer
    std::vector<SampleRef> held;
    while (auto s = a.in->get_buffer(100ms)) held.push_back(std::move(*s));
    // 2 (max-buffers) + 1 (the streaming thread's) + 2 (appsink keeps max-buffers + 1) = 5;
    // with spares it would be 7.
    CHECK(held.size() == 5);
    held.clear();
    REQUIRE(a.g.stop());
}

TEST_CASE("App.Stop.WakesPull" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=s16 ! appsink name=out");
    REQUIRE(a.g.run());
    std::error_code pulled;
    std::atomic<bool> waiting{false};
    std::thread app([&] {
        waiting.store(true);
        auto s = a.out->pull();  // no timeout: nothing comes; only the stop ends it
        pulled = s ? std::error_code{} : s.error();
    });
    while (!waiting.load()) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(50ms);
    REQUIRE(a.g.stop());
    app.join();
    CHECK(pulled == Errc::not_committed);
    // A timed pull that runs out says so.
    REQUIRE(a.g.run());
    CHECK(a.out->pull(20ms).error() == Errc::timeout);
    REQUIRE(a.g.stop());
}

TEST_CASE("App.Sink.DropOldestUnderASlowApp" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 channels=1 frames=16 ! appsink name=out max-buffers=2 drop=true");
    REQUIRE(a.g.run());
    for (int i = 0; i < 20; ++i) REQUIRE(push_constant(*a.in, 16, float(i)).ok());  // nobody pulls yet
    REQUIRE(a.in->end_of_stream().ok());
    REQUIRE(a.g.wait_until_ended(5000ms));
    std::vector<float> got;
    for (;;) {
        auto s = a.out->pull(5s);
        if (!s) {
            CHECK(s.error() == GraphErrc::end_of_stream);
            break;
        }
        got.push_back(floats_of(*s).at(0));
    }
    // The newest two are kept, the 18 before them dropped and counted.
    REQUIRE(got.size() == 2);
    CHECK(got[0] == 18.0f);
    CHECK(got[1] == 19.0f);
    CHECK(a.out->dropped() == 18);
    REQUIRE(a.g.stop());
    CHECK(a.g.stats().node("out")->stats.drops == 18);
}

TEST_CASE("App.Sink.BlocksTheStreamWhenFullWithoutDrop" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 channels=1 frames=16 max-buffers=2 ! appsink name=out max-buffers=2");
    REQUIRE(a.g.run());
    // The sink queues two and holds the stream; the app soon has no buffer left to fill.
    int pushed = 0;
    while (pushed < 50 && push_constant(*a.in, 16, float(pushed)).ok()) ++pushed;  // get_buffer times out at 5 s
    CHECK(pushed < 50);
    CHECK(a.out->dropped() == 0);
    // Pulling lets it flow again, in order, none lost.
    for (int i = 0; i < pushed; ++i) {
        auto s = a.out->pull(5s);
        REQUIRE(s);
        CHECK(floats_of(*s).at(0) == float(i));
    }
    REQUIRE(a.g.stop());
}

TEST_CASE("Live.Gain.ChangeSeenAtTheNextBufferRamped" * doctest::timeout(30)) {
    AppGraph a("appsrc name=in format=f32 channels=1 frames=100 ! gain name=g db=0 ! appsink name=out");
    REQUIRE(a.g.run());
    REQUIRE(push_constant(*a.in, 100, 1.0f).ok());
    auto first = a.out->pull(5s);
    REQUIRE(first);
    for (float v : floats_of(*first)) CHECK(v == 1.0f);
    first->reset();
    REQUIRE(a.g.set_property("g", "db", "-20").ok());
    std::string value;
    REQUIRE(a.g.property("g", "db", value).ok());
    CHECK(value == "-20");
    REQUIRE(push_constant(*a.in, 100, 1.0f).ok());
    REQUIRE(push_constant(*a.in, 100, 1.0f).ok());
    // The buffer after the change moves from 1.0 to 0.1 frame by frame (no step: no click),
    // and ends at the new level; the next one is all at it.
    const auto r = check_ramp_then_level(*a.out, 1.0f, 0.98f, 0.1f);
    for (std::size_t i = 1; i < r.size(); ++i) CHECK(r[i - 1] - r[i] < 0.0095f);
    REQUIRE(a.g.stop());
}

// A mix's input levels: given in the pipeline (GStreamer's pad-property form, `sink_1::db=`)
// and changed live, each ramped over the next buffer mixed; the other input is untouched.
TEST_CASE("Live.Mix.InputLevelsGivenAndChangedWhilePlaying" * doctest::timeout(30)) {
    MixGraph mix("appsrc name=a format=f32 channels=1 frames=100 ! mix name=m sink_1::db=-20 ! appsink name=out "
                 "appsrc name=b format=f32 channels=1 frames=100 ! m.");
    auto& [g, a, b, out] = mix;
    std::string v;
    REQUIRE(g.property("m", "sink_1::db", v).ok());
    CHECK(v == "-20");
    REQUIRE(g.property("m", "sink_0::db", v).ok());
    CHECK(v == "0");
    REQUIRE(g.run());
    auto both = [&](float x, float y) {
        REQUIRE(push_constant(a, 100, x).ok());
        REQUIRE(push_constant(b, 100, y).ok());
    };
    both(1.0f, 1.0f);
    auto first = out.pull(5s);
    REQUIRE(first);
    for (float x : floats_of(*first)) CHECK(x == doctest::Approx(1.1f).epsilon(1e-6));  // 1 + 1 at -20 dB
    first->reset();

    REQUIRE(g.set_property("m", "sink_0::db", "-6.020599913").ok());  // a half
    REQUIRE(g.property("m", "sink_0::db", v).ok());
    CHECK(v == "-6.020599913");
    both(1.0f, 1.0f);
    both(1.0f, 1.0f);
    // From 1.1 down to 0.6 frame by frame: no step, the last frame at the new level.
    check_ramp_then_level(out, 1.1f, 1.09f, 0.6f);

    // Bad values and inputs it does not have: refused in one line, nothing changed.
    Status st = g.set_property("m", "sink_2::db", "0");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message() == "m: no input sink_2 (it has 2)");
    st = g.set_property("m", "sink_1::db", "loud");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message().find("not a number") != std::string::npos);
    st = g.set_property("m", "sink_01::db", "0");
    CHECK(st.code() == GraphErrc::invalid_argument);
    REQUIRE(g.property("m", "sink_1::db", v).ok());
    CHECK(v == "-20");
    REQUIRE(g.stop());
}

// Inputs whose buffers differ in size are mixed in parts (here 30 and 100 frames: parts of 30,
// 10, 20...); a level change still ramps over one whole buffer of its input, across the parts.
TEST_CASE("Live.Mix.RampSpansPartsWhenBufferSizesDiffer" * doctest::timeout(30)) {
    MixGraph mix("appsrc name=a format=f32 channels=1 frames=100 max-buffers=16 ! mix name=m sink_1::db=-20 ! appsink name=out max-buffers=64 "
                 "appsrc name=b format=f32 channels=1 frames=30 max-buffers=16 ! m.");
    auto& [g, a, b, out] = mix;
    REQUIRE(g.run());
    // 300 frames each way, then everything the mix made of them.
    auto feed_and_collect = [&] {
        for (int i = 0; i < 3; ++i) REQUIRE(push_constant(a, 100, 1.0f).ok());
        for (int i = 0; i < 10; ++i) REQUIRE(push_constant(b, 30, 1.0f).ok());
        std::vector<float> all;
        while (all.size() < 300) {
            auto s = out.pull(5s);
            REQUIRE(s);
            const auto v = floats_of(*s);
            all.insert(all.end(), v.begin(), v.end());
        }
        CHECK(all.size() == 300);
        return all;
    };
    for (float x : feed_and_collect()) CHECK(x == doctest::Approx(1.1f).epsilon(1e-6));
    REQUIRE(g.set_property("m", "sink_0::db", "-6.020599913").ok());
    const std::vector<float> after = feed_and_collect();
    // Frame k of the ramp: 1 - 0.5 (k + 1) / 100 from input 0, plus 0.1 from input 1.
    for (std::size_t k = 0; k < 100; ++k) {
        CAPTURE(k);
        CHECK(after[k] == doctest::Approx(1.1f - 0.5f * float(k + 1) / 100.0f).epsilon(1e-5));
    }
    for (std::size_t k = 100; k < after.size(); ++k) CHECK(after[k] == doctest::Approx(0.6f).epsilon(1e-5));
    REQUIRE(g.stop());
}

TEST_CASE("Live.Mix.BadLevelsInThePipelineAreOneLine") {
    auto error_of = [](const std::string& pipeline) {
        Graph g;
        Status st = sluice::nodes::build_pipeline(g, pipeline);
        if (st.ok()) st = g.prepare();
        return st;
    };
    // An input the mix will not have once linked.
    Status st = error_of("tone ! mix name=m sink_2::db=-6 ! nullsink tone ! m.");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message() == "m: sink_2::db given, but it has 2 inputs (sink_0 to sink_1)");
    st = error_of("tone ! mix sink_0::db=-200 ! nullsink");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message().find("sink_0::db='-200' is out of range") != std::string::npos);
    for (const char* key : {"sink_::db", "sink_x::db", "sink_01::db", "sink_0::volume", "sink_99::db"}) {
        CAPTURE(key);
        st = error_of(std::string("tone ! mix ") + key + "=0 ! nullsink");
        CHECK(!st.ok());
        CHECK(st.message().find('\n') == std::string::npos);
    }
}

TEST_CASE("Live.Tone.FrequencyChangesWithoutAPhaseJump" * doctest::timeout(30)) {
    Graph g;
    REQUIRE(sluice::nodes::build_pipeline(g, "tone name=t freq=1000 amplitude=0.5 format=f32 channels=1 frames=480 ! appsink name=out"));
    AppSink& out = *sluice::nodes::appsink(g, "out");
    REQUIRE(g.run());
    auto a = out.pull(5s);
    REQUIRE(a);
    const auto first = floats_of(*a);
    a->reset();
    // Whatever the tone made before the change arrives first; find where the new frequency
    // (2000 Hz: 24 samples per period against 48) starts by counting zero crossings per buffer.
    REQUIRE(g.set_property("t", "freq", "2000").ok());
    REQUIRE(g.set_property("t", "amplitude", "0.25").ok());
    std::vector<float> all = first;
    int changed_at = -1;
    for (int b = 0; b < 40 && changed_at < 0; ++b) {
        auto s = out.pull(5s);
        REQUIRE(s);
        const auto v = floats_of(*s);
        int crossings = 0;
        for (std::size_t i = 1; i < v.size(); ++i) crossings += (v[i - 1] < 0) != (v[i] < 0);
        if (crossings >= 39) {  // 2000 Hz: 40 crossings in 480 samples (1000 Hz: 20)
            changed_at = b;
            // No jump where the buffers meet: the step is no larger than the steepest slope.
            const float step = std::abs(v.front() - all.back());
            CHECK(step <= 0.5f * float(2 * std::numbers::pi * 2000 / 48000) * 1.05f);
        }
        all = v;
    }
    CHECK(changed_at >= 0);
    // The amplitude ramps to its new level within a buffer of being picked up.
    float peak = 0;
    for (int b = 0; b < 3; ++b) {
        auto s = out.pull(5s);
        REQUIRE(s);
        peak = 0;
        for (float x : floats_of(*s)) peak = std::max(peak, std::abs(x));
    }
    CHECK(peak == doctest::Approx(0.25f).epsilon(0.01));
    std::string f;
    REQUIRE(g.property("t", "freq", f).ok());
    CHECK(f == "2000");
    REQUIRE(g.stop());
}

TEST_CASE("Live.SetProperty.RefusalsAreOneLine") {
    Graph g;
    REQUIRE(sluice::nodes::build_pipeline(g, "tone name=t ! gain name=g ! nullsink"));
    auto one_line = [](const Status& st) { return st.message().find('\n') == std::string::npos && !st.message().empty(); };
    Status st = g.set_property("nope", "db", "1");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message().find("no node named 'nope'") != std::string::npos);
    st = g.set_property("g", "volume", "1");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message().find("no property 'volume'") != std::string::npos);
    st = g.set_property("g", "db", "loud");
    CHECK(st.code() == GraphErrc::invalid_argument);
    CHECK(st.message().find("not a number") != std::string::npos);
    st = g.set_property("g", "db", "1000");
    CHECK(st.code() == GraphErrc::invalid_argument);
    REQUIRE(g.run());
    st = g.set_property("t", "rate", "44100");  // not live: refused while running
    CHECK(st.code() == GraphErrc::bad_state);
    CHECK(st.message().find("not live") != std::string::npos);
    CHECK(one_line(st));
    std::string v;
    REQUIRE(g.property("t", "rate", v).ok());
    CHECK(v == "48000");
    CHECK(!g.property("t", "nope", v));
    CHECK(!g.property("x", "rate", v));
    // The value refused did not change anything.
    REQUIRE(g.property("g", "db", v).ok());
    CHECK(v == "0");
    REQUIRE(g.stop());
}

// Every type: its live properties take their default at any time and read back; the others are
// refused as fixed. Keeps the registry's `live` marks and the nodes' set_property in step.
TEST_CASE("Live.Registry.EveryLiveMarkIsHonoured") {
    int live = 0;
    for (const auto& spec : sluice::nodes::node_specs()) {
        std::unique_ptr<sluice::engine::Node> node;
        sluice::nodes::Properties props;
        if (spec.type == "wavsrc" || spec.type == "y4msrc" || spec.type == "avsrc" || spec.type.find("sink") != std::string::npos ||
            spec.type.find("alsa") != std::string::npos || spec.type.find("jack") != std::string::npos ||
            spec.type.find("rtp") != std::string::npos || spec.origin != "built-in")
            continue;  // nodes that need a file, a device or a socket to be made
        if (!sluice::nodes::create_node(spec.type, "n", props, node).ok()) continue;  // needs a property (capsfilter)
        Graph g;
        auto& n = g.add(std::move(node));
        for (const auto& p : spec.properties) {
            CAPTURE(spec.type);
            CAPTURE(p.name);
            // A template (`sink_%u::db`) is tried on its first instance, once that input exists.
            std::string key = p.name;
            if (const auto at = key.find("%u"); at != std::string::npos) {
                key.replace(at, 2, "0");
                if (n.input_count() == 0) {
                    std::unique_ptr<sluice::engine::Node> feed;
                    REQUIRE(sluice::nodes::create_node("tone", "feed", {}, feed).ok());
                    REQUIRE(g.connect(g.add(std::move(feed)), n));
                }
            }
            const Status st = g.set_property("n", key, p.default_value);
            if (p.live) {
                ++live;
                CHECK_MESSAGE(st.ok(), st.message());
            } else {
                CHECK(st.code() == GraphErrc::bad_state);
            }
            std::string v;
            REQUIRE(g.property("n", key, v).ok());
            CHECK(v == p.default_value);
        }
    }
    CHECK(live >= 6);  // gain db, tone freq and amplitude, noise amplitude, videotest pattern, mix sink_0::db
}

// SPDX-License-Identifier: MIT
// Device nodes against a real jackd (dummy driver) of the test's own that the test freezes
// (SIGSTOP), so that no process callback runs: what jacksink and alsasink take from upstream
// while nothing plays (a count of buffers, no timing), and what every device node does when its
// server stays frozen (stall-timeout=).
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <future>
#include <span>
#include <sstream>
#include <string>
#include <utility>
#include <thread>
#include <vector>

namespace {

using namespace std::chrono_literals;
using namespace sluice;

// Resumes a frozen server when it goes, whatever failed: a client left behind by a graph's stop
// closes then, before the server ends.
struct Thaw {
    const test::JackServer& jack;
    ~Thaw() { jack.resume(); }
};

// An environment variable for this scope (the test process's libjack and alsa-lib read them),
// unset when it ends, whatever failed.
struct ScopedEnv {
    const char* key;
    ScopedEnv(const char* k, const std::string& value) : key(k) { ::setenv(key, value.c_str(), 1); }
    ~ScopedEnv() { ::unsetenv(key); }
    ScopedEnv(const ScopedEnv&) = delete;
    ScopedEnv& operator=(const ScopedEnv&) = delete;
};

// A jackd of the test's own (256-frame periods) and alsa-lib pointed at it, with the devices
// `asound_conf` defines (the tests' `card`: alsa-lib's JACK plugin on that server).
struct AlsaOnJack {
    test::JackServer jack;
    test::TempDir dir;
    ScopedEnv server;
    ScopedEnv config;
    AlsaOnJack(const char* tag, const std::string& asound_conf)
        : jack(tag, 48000, 256),
          server("JACK_DEFAULT_SERVER", jack.name()),
          config("ALSA_CONFIG_PATH", "/usr/share/alsa/alsa.conf:" + std::string(dir / "asound.conf")) {
        std::ofstream(dir / "asound.conf") << asound_conf;
    }
};
constexpr const char* kPlaybackCard = "pcm.card { type jack playback_ports { 0 system:playback_1 1 system:playback_2 } }\n";

// Whether every client but the server's own has left `jack` (jack_lsp lists only system:
// ports): the clients a graph's stop left behind on a frozen server close once it thaws, and
// must be done before the server ends (a client closing against a dead server can hang).
bool only_system_ports(const test::JackServer& jack) {
    const test::CommandResult r = test::run(jack.env() + "jack_lsp");
    if (r.exit_code != 0) return false;
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);)
        if (!line.empty() && line.rfind("system:", 0) != 0) return false;
    return true;
}

// Whether a render of `graph` takes `samples` samples within 20 s.
bool render_takes(engine::Graph& graph, std::uint64_t samples) {
    return test::eventually([&] {
        for (const auto& n : graph.stats().nodes)
            if (n.kind == engine::Node::Kind::render && n.stats.samples_in >= samples) return true;
        return false;
    }, 20s);
}

// Stops `graph` while `jack` is frozen; whether the stop returned within 20 s (if not, the
// server is thawed so that it can finish). With `check_status`, checks that it went well too.
bool stops_while_frozen(engine::Graph& graph, const test::JackServer& jack, bool check_status = true) {
    auto stopped = std::async(std::launch::async, [&] { return graph.stop(); });
    const bool bounded = stopped.wait_for(20s) == std::future_status::ready;
    if (!bounded) jack.resume();
    const Status st = stopped.get();
    if (check_status) CHECK_MESSAGE(st, "the stop: ", st.message());
    return bounded;
}

// With `graph` running `appsrc name=in ! SINK` and `jack` the server behind SINK: freezes the
// server, counts the buffers of `floats` f32 values the app hands over before one waits 3 s for
// room (long enough for the streaming thread to write what it can under a sanitizer; at most 8),
// checks that the last one timed out, thaws the server and checks that the app hands over more
// (the kept sample goes once the server plays again) and that the graph stops cleanly.
int handed_while_frozen(const test::JackServer& jack, engine::Graph& graph, std::size_t floats) {
    nodes::AppSrc* in = nodes::appsrc(graph, "in");
    REQUIRE(in != nullptr);
    REQUIRE(graph.run());
    jack.pause();
    const Thaw thaw{jack};
    std::this_thread::sleep_for(100ms);  // a cycle under way when the server froze ends
    const std::vector<float> silence(floats, 0.0f);
    const auto block = std::as_bytes(std::span(silence));
    int handed = 0;
    Status st;
    while (handed < 8 && (st = in->push(block, sluice::kNoTime, 3000ms)).ok()) ++handed;
    CHECK(st.code() == Errc::timeout);
    jack.resume();
    for (int i = 0; i < 4; ++i) CHECK(in->push(block, sluice::kNoTime, 3000ms).ok());
    CHECK(graph.stop());
    return handed;
}

}  // namespace

// appsrc max-buffers=2 makes a pool of three 64-frame buffers (two queued, one in the streaming
// thread); jacksink's ring holds latency=128 frames, two of them. The sample whose last frame
// fills the ring stays with jacksink until JACK makes room (its buffer is not returned), so the
// app hands over four buffers before it must wait: two in the ring (the second kept), two
// queued. Were it returned at once, jacksink would take a third sample it has no room for, and
// the app would hand over five: a sample more between the app and what plays.
TEST_CASE("Jack.Sink.KeepsTheSampleThatFilledItsRing" * doctest::timeout(90)) {
    test::JackServer jack("hold");
    INFO(jack.log());
    REQUIRE(jack.ready());
    const ScopedEnv server("JACK_DEFAULT_SERVER", jack.name());
    engine::Graph g;
    REQUIRE(nodes::build_pipeline(g, "appsrc name=in format=f32 channels=1 frames=64 max-buffers=2 ! "
                                     "jacksink client=hold connect=none channels=1 latency=128"));
    CHECK(handed_while_frozen(jack, g, 64) == 4);
}

// jacksrc's samples: whole periods of at least 256 frames, at most half the ring, unless
// frames= says how many (an app that wants each period as soon as it is captured).
TEST_CASE("Jack.Src.FramesSetsTheSampleLength" * doctest::timeout(90)) {
    test::JackServer jack("srcframes");
    INFO(jack.log());
    REQUIRE(jack.ready());
    const ScopedEnv server("JACK_DEFAULT_SERVER", jack.name());
    // {properties, frames in each sample}; the server's periods are 64 frames.
    const std::vector<std::pair<std::string, std::size_t>> cases{
        {"latency=2048", 256}, {"latency=256", 128}, {"latency=256 frames=64", 64}, {"latency=2048 frames=100", 100}};
    for (const auto& [properties, frames] : cases) {
        CAPTURE(properties);
        engine::Graph g;
        REQUIRE(nodes::build_pipeline(g, "jacksrc client=frames connect=none channels=1 " + properties + " ! appsink name=out max-buffers=8"));
        nodes::AppSink* out = nodes::appsink(g, "out");
        REQUIRE(out != nullptr);
        REQUIRE(g.run());
        for (int i = 0; i < 3; ++i) {
            auto s = out->pull(5000ms);
            REQUIRE(s);
            CHECK((*s).size() == frames * sizeof(float));
        }
        REQUIRE(g.stop());
    }
}

// The same for alsasink, through alsa-lib's JACK plugin (pcm type jack) on a frozen jackd of
// the test's own: a device buffer of two 256-frame periods takes two 256-frame samples, the
// second stays with alsasink, two wait in appsrc's queue.
TEST_CASE("Alsa.Sink.KeepsTheSampleThatFilledItsBuffer" * doctest::timeout(90)) {
    const AlsaOnJack card("alsahold", kPlaybackCard);
    const test::JackServer& jack = card.jack;
    INFO(jack.log());
    REQUIRE(jack.ready());
    {
        engine::Graph g;
        const Status built = nodes::build_pipeline(g, "appsrc name=in format=f32 channels=2 frames=256 max-buffers=2 ! "
                                                      "alsasink device=card period-frames=256 periods=2 sync=false");
        INFO(built.message());
        REQUIRE(built);
        CHECK(handed_while_frozen(jack, g, 512) == 4);  // 256 stereo frames
    }
}

// A device that stops taking (or giving) samples without an error, here a frozen jackd, behind
// alsa-lib's JACK plugin or as jacksink's and jacksrc's server: after stall-timeout= seconds of
// waiting the node says so, an error event naming the device (sluice-play exits 1), where it
// waited until stopped before; the graph stops while the server is still frozen (closing the
// device, which asks the frozen server to deactivate a client, is given its time on a thread of
// its own and left behind); and once the graph is gone and the server thaws, the clients left
// behind run their callbacks and close without touching the freed nodes (AddressSanitizer would
// see it).
namespace {
std::string stall_error(const char* pipeline, const char* asound_conf, const char* name) {
    const AlsaOnJack card(name, asound_conf);
    const test::JackServer& jack = card.jack;
    INFO(jack.log());
    REQUIRE(jack.ready());
    const Thaw thaw{jack};
    std::string error;
    {
        engine::Graph g;
        const Status built = nodes::build_pipeline(g, pipeline);
        INFO(built.message());
        REQUIRE(built);
        REQUIRE(g.run());
        // The device runs: the render took five samples of 256 frames, more than its device's
        // buffer holds (a sink's device starts once its buffer is full, inside a write).
        CHECK(render_takes(g, 5));
        jack.pause();
        const auto until = std::chrono::steady_clock::now() + 20s;  // 1 s of stall, slack for sanitizers
        while (error.empty() && std::chrono::steady_clock::now() < until)
            if (auto e = g.wait_event(500ms); e && e->type == engine::Event::Type::error) error = e->message;
        CHECK(stops_while_frozen(g, jack));  // and well: the stall was its own error event
    }
    jack.resume();
    CHECK(test::eventually([&] { return only_system_ports(jack); }, 20s));  // cycles for them meanwhile
    return error;
}
}  // namespace

TEST_CASE("Alsa.Sink.StalledDeviceIsAnError" * doctest::timeout(90)) {
    const std::string error = stall_error("tone frames=256 ! audioconvert ! alsasink device=card period-frames=256 periods=2 sync=false stall-timeout=1",
                                          kPlaybackCard, "stallsink");
    CHECK(error == "device 'card' took no samples for 1 s (it stalled; stall-timeout= sets how long to wait)");
}

TEST_CASE("Alsa.Src.StalledDeviceIsAnError" * doctest::timeout(90)) {
    const std::string error = stall_error("alsasrc device=card period-frames=256 periods=2 stall-timeout=1 ! nullsink",
                                          "pcm.card { type jack capture_ports { 0 system:capture_1 1 system:capture_2 } }\n",
                                          "stallsrc");
    CHECK(error == "device 'card' gave no samples for 1 s (it stalled; stall-timeout= sets how long to wait)");
}

// Both ends on one frozen server: whichever node reports the stall, the other one's device
// (also waited on in vain) is closed the bounded way too, and the graph stops.
TEST_CASE("Alsa.Duplex.StalledDeviceStopsBothEnds" * doctest::timeout(90)) {
    const std::string error = stall_error("alsasrc device=card period-frames=256 periods=2 stall-timeout=1 ! "
                                          "alsasink device=card period-frames=256 periods=2 sync=false stall-timeout=1",
                                          "pcm.card { type jack capture_ports { 0 system:capture_1 1 system:capture_2 } "
                                          "playback_ports { 0 system:playback_1 1 system:playback_2 } }\n",
                                          "stallduplex");
    CHECK(error.find("no samples for 1 s (it stalled; stall-timeout= sets how long to wait)") != std::string::npos);
}

TEST_CASE("Jack.Sink.StalledServerIsAnError" * doctest::timeout(90)) {
    const std::string error = stall_error("tone frames=256 ! audioconvert ! jacksink client=stall connect=none stall-timeout=1", "", "jstallsink");
    CHECK(error == "JACK client 'stall': the JACK server ran no process cycle for 1 s (it stalled; stall-timeout= sets how long to wait)");
}

TEST_CASE("Jack.Src.StalledServerIsAnError" * doctest::timeout(90)) {
    const std::string error = stall_error("jacksrc client=stall connect=none stall-timeout=1 ! nullsink", "", "jstallsrc");
    CHECK(error == "JACK client 'stall': the JACK server ran no process cycle for 1 s (it stalled; stall-timeout= sets how long to wait)");
}

// Both ends, two clients of one frozen server: whichever reports, both close the bounded way.
TEST_CASE("Jack.Duplex.StalledServerStopsBothEnds" * doctest::timeout(90)) {
    const std::string error = stall_error("jacksrc client=rec connect=none stall-timeout=1 ! "
                                          "jacksink client=play connect=none stall-timeout=1",
                                          "", "jstalldup");
    CHECK(error.find("the JACK server ran no process cycle for 1 s (it stalled; stall-timeout= sets how long to wait)") != std::string::npos);
}

// A stop while alsasink drains a device whose server froze (before the drain's own deadline)
// returns: the drain no longer polls inside alsa-lib with no timeout (the JACK plugin ignored
// the open's non-blocking mode in its drain), and the device is closed the bounded way; before,
// the stop hung until the server thawed.
TEST_CASE("Alsa.Sink.StopDuringAFrozenDrainIsBounded" * doctest::timeout(90)) {
    const AlsaOnJack card("frozendrain", kPlaybackCard);
    const test::JackServer& jack = card.jack;
    INFO(jack.log());
    REQUIRE(jack.ready());
    const Thaw thaw{jack};
    {
        engine::Graph g;
        // 300 samples of 256 frames (1.6 s) into a device buffer of 65536 frames (1.37 s): the
        // drain begins with most of a buffer to play.
        const Status built = nodes::build_pipeline(g, "tone frames=256 num-buffers=300 ! audioconvert ! "
                                                      "alsasink device=card period-frames=4096 periods=16 sync=false");
        INFO(built.message());
        REQUIRE(built);
        REQUIRE(g.run());
        REQUIRE(render_takes(g, 300));
        jack.pause();
        std::this_thread::sleep_for(400ms);  // the drain waits on the frozen device, short of its deadline (2.4 s)
        CHECK(stops_while_frozen(g, jack, false));
    }
    jack.resume();
    CHECK(test::eventually([&] { return only_system_ports(jack); }, 20s));
}

// A frozen server ended rather than thawed, after the graph left its client behind: that
// client's thread sees the server gone and abandons the client instead of closing it (libjack2
// can hang closing a client of a dead server, holding the lock every jack_client_open takes),
// and a new graph in the same process opens a client of another server as usual.
TEST_CASE("Jack.Sink.FrozenServerKilledLeavesTheNextClientFree" * doctest::timeout(90)) {
    {
        test::JackServer jack("jkilled", 48000, 256);
        INFO(jack.log());
        REQUIRE(jack.ready());
        const ScopedEnv server("JACK_DEFAULT_SERVER", jack.name());
        engine::Graph g;
        REQUIRE(nodes::build_pipeline(g, "tone frames=256 ! jacksink client=killed connect=none stall-timeout=1"));
        REQUIRE(g.run());
        CHECK(render_takes(g, 5));
        jack.pause();
        CHECK(stops_while_frozen(g, jack, false));
        jack.kill(SIGTERM);  // frozen, then gone (SIGTERM: a SIGKILLed jackd2 keeps its slot in JACK's registry)
    }
    test::JackServer next("jnext", 48000, 256);
    INFO(next.log());
    REQUIRE(next.ready());
    const ScopedEnv server("JACK_DEFAULT_SERVER", next.name());
    auto opened = std::async(std::launch::async, [] {
        engine::Graph g;
        if (!nodes::build_pipeline(g, "tone frames=256 num-buffers=20 ! jacksink client=next connect=none")) return false;
        if (!g.run()) return false;
        const bool ended = g.wait_until_ended(20s);
        return g.stop() && ended;
    });
    REQUIRE(opened.wait_for(40s) == std::future_status::ready);
    CHECK(opened.get());
}

// JACK's buffer size changed mid-stream (jack_bufsize): 256 frames at 16 kHz grow to 8192 (512
// ms a cycle), past half of stall-timeout=0.3 and four times latency=2048. The stall limit (at
// least two periods) and the ring (at least two periods) follow the period, and the nodes keep
// running with no error and no run of xruns; before, both were fixed at start: the wait between
// two cycles that came on time read as a stall, and every cycle was an xrun.
namespace {
void keeps_running_after_bufsize(const char* pipeline, const char* tag) {
    test::JackServer jack(tag, 16000, 256);
    INFO(jack.log());
    REQUIRE(jack.ready());
    const ScopedEnv server("JACK_DEFAULT_SERVER", jack.name());
    engine::Graph g;
    const Status built = nodes::build_pipeline(g, pipeline);
    INFO(built.message());
    REQUIRE(built);
    REQUIRE(g.run());
    REQUIRE(render_takes(g, 5));
    const test::CommandResult resized = test::run(jack.env() + "jack_bufsize 8192");
    INFO(resized.output);
    REQUIRE(resized.exit_code == 0);
    const auto rendered = [&] {
        for (const auto& n : g.stats().nodes)
            if (n.kind == engine::Node::Kind::render) return n.stats.samples_in;
        return std::uint64_t{0};
    };
    const auto ring_xruns = [&] {
        for (const auto& n : g.stats().nodes)
            for (const auto& [key, value] : n.extras)
                if (key == "xruns") return value;
        return std::uint64_t{0};
    };
    const std::uint64_t before = rendered();
    const std::uint64_t xruns_before = ring_xruns();
    std::string error;
    const auto until = std::chrono::steady_clock::now() + 4s;  // about eight cycles of 512 ms
    while (error.empty() && std::chrono::steady_clock::now() < until)
        if (auto e = g.wait_event(200ms); e && e->type == engine::Event::Type::error) error = e->message;
    CHECK(error == "");
    CHECK(rendered() >= before + 64);  // 4 s of 256-frame samples at 16 kHz is 250; it kept moving
    // The ring holds two of the longer periods: a cycle or two short while it fills, not every
    // one (with the ring of latency=2048 frames, each cycle of 8192 was an xrun).
    CHECK(ring_xruns() <= xruns_before + 3);
    CHECK(g.stop());
}
}  // namespace

TEST_CASE("Jack.Sink.LongerPeriodMidStreamIsNoStall" * doctest::timeout(90)) {
    keeps_running_after_bufsize("tone rate=16000 frames=256 ! audioconvert ! jacksink client=grow connect=none stall-timeout=0.3", "jgrowsink");
}

TEST_CASE("Jack.Src.LongerPeriodMidStreamIsNoStall" * doctest::timeout(90)) {
    keeps_running_after_bufsize("jacksrc client=grow connect=none frames=256 stall-timeout=0.3 ! nullsink", "jgrowsrc");
}

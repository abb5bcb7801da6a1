// SPDX-License-Identifier: MIT
// The device as the graph's clock (issue #14): a JACK server's cycle, or an ALSA device's, paces every clocked render,
// and the drift between it and the system clock is measured. Against a real jackd (dummy
// driver), twice: running in real time, where its clock is the system's; and in freewheel mode
// (what JACK users export with: the server cycles as fast as its clients let it), a device far
// faster than the system clock, so that following it is plain to see. And what a device's own
// pace does to an app that falls behind it: ALSA underruns and overruns, counted as xruns.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <jack/jack.h>

#include <cmath>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

namespace {

using namespace std::chrono_literals;
using sluice::Status;
using sluice::engine::Graph;

struct Run {
    double pace = 0;  // media time of the pictures pulled per second of wall time
    std::string clock;
    double drift_ppm = 0;
};

// A JACK client of the test's own that puts the server in freewheel mode while it lives.
class Freewheel {
public:
    Freewheel() {
        client_ = jack_client_open("freewheel", JackNoStartServer, nullptr);
        REQUIRE(client_ != nullptr);
        REQUIRE(jack_activate(client_) == 0);
        REQUIRE(jack_set_freewheel(client_, 1) == 0);
    }
    ~Freewheel() {
        jack_set_freewheel(client_, 0);
        jack_client_close(client_);
    }

private:
    jack_client_t* client_ = nullptr;
};

// Plays `tone ! SINK` (jacksink unless given) with a clocked picture branch into an appsink;
// returns how fast the pictures' times advanced between the second and the fourth second of wall
// time, with the server freewheeling from the first second on if `freewheel`.
Run play(const std::string& provide_clock, bool freewheel, const std::string& sink = "jacksink connect=none") {
    Graph g;
    const Status built = sluice::nodes::build_pipeline(
        g, "tone format=f32 ! " + sink + " provide-clock=" + provide_clock +
               " videotest width=32 height=24 fps=100 ! appsink name=v sync=true max-buffers=1024");
    CAPTURE(built.message());
    REQUIRE(built.ok());
    sluice::nodes::AppSink& v = *sluice::nodes::appsink(g, "v");
    REQUIRE(g.run());
    const auto t0 = std::chrono::steady_clock::now();
    std::optional<Freewheel> wheel;
    std::int64_t pts_at_2s = -1, pts_at_4s = -1;
    double wall_at_2s = 0, wall_at_4s = 0;
    while (pts_at_4s < 0) {
        auto s = v.pull(5s);
        REQUIRE(s);
        const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        if (freewheel && !wheel && wall >= 1.0) wheel.emplace();
        if (pts_at_2s < 0 && wall >= 2.0) {
            pts_at_2s = s->start_time();
            wall_at_2s = wall;
        } else if (wall >= 4.0) {
            pts_at_4s = s->start_time();
            wall_at_4s = wall;
        }
    }
    const auto stats = g.stats();
    wheel.reset();
    REQUIRE(g.stop());
    return {double(pts_at_4s - pts_at_2s) / 1e9 / (wall_at_4s - wall_at_2s), stats.clock, stats.clock_drift_ppm};
}

// ALSA devices for the graph's clock: `card` (alsa-lib's JACK plugin on a real jackd of its own,
// 256-frame periods), `nowhere` (null) and `hidden` (null behind a plug), named in
// an ALSA configuration that this process uses while the object lives (and never after, even
// when a check fails).
struct AlsaOnJack {
    test::JackServer jack;
    test::TempDir dir;
    explicit AlsaOnJack(const std::string& tag) : jack(tag, 48000, 256) {
        ::setenv("JACK_DEFAULT_SERVER", jack.name().c_str(), 1);
        std::ofstream(dir / "asound.conf") << "pcm.card { type jack playback_ports { 0 system:playback_1 1 system:playback_2 } }\n"
                                              "pcm.mic { type jack capture_ports { 0 system:capture_1 1 system:capture_2 } }\n"
                                              "pcm.nowhere { type null }\n"
                                              "pcm.hidden { type plug slave.pcm nowhere }\n";
        ::setenv("ALSA_CONFIG_PATH", ("/usr/share/alsa/alsa.conf:" + std::string(dir / "asound.conf")).c_str(), 1);
    }
    ~AlsaOnJack() {
        ::unsetenv("ALSA_CONFIG_PATH");
        ::unsetenv("JACK_DEFAULT_SERVER");
    }
};

}  // namespace

TEST_CASE("Clock.Device.JackServerIsTheGraphsClock" * doctest::timeout(120)) {
    test::JackServer jack("clock");
    INFO(jack.log());
    REQUIRE(jack.ready());
    ::setenv("JACK_DEFAULT_SERVER", jack.name().c_str(), 1);

    // In real time the dummy driver keeps the system clock's time, less the cycles it misses
    // (each a period of frames never taken): jacksink provides the clock (the default), pictures
    // come in about real time and the drift is small.
    const Run real_time = play("true", false);
    CHECK(real_time.clock == "jacksink0");
    CHECK(std::abs(real_time.drift_ppm) < 100000);  // -16 to -32,000 ppm in runs here: missed cycles
    CHECK(real_time.pace == doctest::Approx(1.0).epsilon(0.12));
    MESSAGE("JACK in real time: " << real_time.pace << " s of pictures per s, drift " << real_time.drift_ppm << " ppm");

    // Freewheeling from the first second on, the server's time runs many times faster than the
    // system's: the pictures follow it.
    const Run fast = play("true", true);
    CHECK(fast.clock == "jacksink0");
    CHECK(fast.drift_ppm > 2e5);  // over the whole run, the first second in real time included
    CHECK(fast.pace > 1.5);       // from the second second on (the sanitizers slow the cycle)
    MESSAGE("JACK freewheeling: " << fast.pace << " s of pictures per s, drift " << fast.drift_ppm << " ppm");

    // provide-clock=false: the system clock paces them, whatever JACK does.
    const Run system = play("false", true);
    CHECK(system.clock == "system");
    CHECK(system.drift_ppm == 0);
    CHECK(system.pace == doctest::Approx(1.0).epsilon(0.08));
    MESSAGE("JACK freewheeling, provide-clock=false: " << system.pace << " s of pictures per s");
    ::unsetenv("JACK_DEFAULT_SERVER");
}

// A sound card through alsa-lib is the clock the same way: alsasink publishes what the device
// has played. The device here is alsa-lib's own JACK plugin (libasound2-plugins) on the real
// jackd above, so its crystal is the dummy driver's cycle: real time, then freewheeling. A
// device that keeps no time (alsa-lib's null plugin) provides none.
TEST_CASE("Clock.Device.AlsaDeviceIsTheGraphsClock" * doctest::timeout(120)) {
    AlsaOnJack alsa("alsaclock");
    INFO(alsa.jack.log());
    REQUIRE(alsa.jack.ready());

    const Run real_time = play("true", false, "alsasink device=card");
    CHECK(real_time.clock == "alsasink0");
    CHECK(real_time.pace == doctest::Approx(1.0).epsilon(0.12));
    CHECK(std::abs(real_time.drift_ppm) < 100000);
    MESSAGE("ALSA (jack plugin) in real time: " << real_time.pace << " s of pictures per s, drift " << real_time.drift_ppm << " ppm");

    // The server freewheels, so the device plays as fast as it is fed: the pictures follow it.
    const Run fast = play("true", true, "alsasink device=card");
    CHECK(fast.clock == "alsasink0");
    CHECK(fast.drift_ppm > 2e5);
    CHECK(fast.pace > 1.5);
    MESSAGE("ALSA (jack plugin) freewheeling: " << fast.pace << " s of pictures per s, drift " << fast.drift_ppm << " ppm");

    // provide-clock=false, or a device that keeps no time: the system clock paces the pictures.
    const Run system = play("false", true, "alsasink device=card");
    CHECK(system.clock == "system");
    CHECK(system.pace == doctest::Approx(1.0).epsilon(0.08));
    const Run null_device = play("true", false, "alsasink device=nowhere");
    CHECK(null_device.clock == "system");
    CHECK(null_device.pace == doctest::Approx(1.0).epsilon(0.08));
    // The null device behind a plug says PLUG, not NULL: it is found out by holding nothing once
    // a buffer went in, and its clock released to the system's pace, not run away with.
    const Run hidden = play("true", false, "alsasink device=hidden");
    CHECK(hidden.pace == doctest::Approx(1.0).epsilon(0.08));
    CHECK(hidden.drift_ppm == 0);
}

// A longer video branch beside the device: once the audio ends, the device's clock is released
// and the pictures play on at the system's pace instead of waiting for a device that counts no
// more (a hang before).
TEST_CASE("Clock.Device.VideoOutlastsTheAudioDevice" * doctest::timeout(60)) {
    AlsaOnJack alsa("alsaend");
    INFO(alsa.jack.log());
    REQUIRE(alsa.jack.ready());
    Graph g;
    REQUIRE(sluice::nodes::build_pipeline(g, "tone format=f32 num-buffers=24 ! alsasink device=card "
                                             "videotest width=32 height=24 fps=50 num-buffers=100 ! appsink name=v sync=true max-buffers=1024")
                .ok());
    sluice::nodes::AppSink& v = *sluice::nodes::appsink(g, "v");
    REQUIRE(g.run());
    const auto t0 = std::chrono::steady_clock::now();
    int pictures = 0;
    while (v.pull(5s)) ++pictures;  // 0.5 s of audio, 2 s of pictures
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    CHECK(pictures == 100);
    CHECK(g.wait_until_ended(5s));
    CHECK(wall == doctest::Approx(2.0).epsilon(0.25));
    REQUIRE(g.stop());
}

namespace {

// The xruns a node counted so far (its stats' `xruns`), or REQUIREs it has the count.
std::uint64_t xruns_of(Graph& g, const char* node) {
    const auto stats = g.stats();
    const auto* report = stats.node(node);
    REQUIRE(report != nullptr);
    for (const auto& [key, value] : report->extras)
        if (key == "xruns") return value;
    FAIL("no xruns in " << node << "'s stats");
    return 0;
}

// A run of `appsrc ! alsasink device=card` where the app feeds 1 s of a tone as fast as the
// device takes it, then nothing for `pause`, then 0.5 s more: the xruns alsasink counted up to
// the pause, across it (to 0.1 s after it) and in all.
struct Feed {
    std::uint64_t before_pause = 0, across_pause = 0, xruns = 0;
    std::uint64_t pushed = 0, rendered = 0;
    bool ended = false;
};
Feed feed_with_a_pause(std::chrono::milliseconds pause) {
    Graph g;
    const Status built = sluice::nodes::build_pipeline(
        g, "appsrc name=in format=f32 rate=48000 channels=2 frames=256 ! alsasink name=out device=card");
    CAPTURE(built.message());
    REQUIRE(built.ok());
    sluice::nodes::AppSrc& in = *sluice::nodes::appsrc(g, "in");
    REQUIRE(g.run());
    Feed f;
    std::vector<float> block(256 * 2);
    std::uint64_t frame = 0;
    auto push_seconds = [&](double seconds) {
        for (int i = 0; i < int(seconds * 48000 / 256); ++i) {
            for (std::size_t k = 0; k < 256; ++k) {
                const float v = 0.25f * float(std::sin(2 * M_PI * 440.0 * double(frame + k) / 48000.0));
                block[2 * k] = block[2 * k + 1] = v;
            }
            frame += 256;
            // Blocks while the pool is out: the device, draining at its own pace, paces the app.
            REQUIRE(in.push(std::as_bytes(std::span(block)), sluice::kNoTime, std::chrono::milliseconds(5000)).ok());
            ++f.pushed;
        }
    };
    push_seconds(1.0);
    f.before_pause = xruns_of(g, "out");
    std::this_thread::sleep_for(pause);
    // The first write after the pause meets the underrun; 0.1 s of pushes paced by the device
    // (more than the pool holds) is past it.
    push_seconds(0.1);
    f.across_pause = xruns_of(g, "out") - f.before_pause;
    push_seconds(0.4);
    REQUIRE(in.end_of_stream().ok());
    f.ended = g.wait_until_ended(10s);
    f.xruns = xruns_of(g, "out");
    const auto stats = g.stats();
    REQUIRE(g.stop());
    const auto* out = stats.node("out");
    REQUIRE(out != nullptr);
    f.rendered = out->stats.samples_in;
    return f;
}

}  // namespace

// An app that falls behind a device which keeps time: the device plays out what it had, runs
// dry, and alsa-lib says so (an underrun, -EPIPE, on the next write); alsasink counts it as an
// xrun, recovers the device and renders the rest. The device is alsa-lib's JACK plugin on a real
// jackd, whose cycle drains the device's buffer (4 periods of 1024 frames, 85 ms) whether or not
// the app writes; the pause is 400 ms, far longer than that and the pool together. The count must
// rise across the pause itself (an xrun of a loaded machine elsewhere in the run is not it).
TEST_CASE("Alsa.Xrun.AnUnderrunIsCountedAndPlayGoesOn" * doctest::timeout(120)) {
    AlsaOnJack alsa("alsaxrun");
    INFO(alsa.jack.log());
    REQUIRE(alsa.jack.ready());
    const Feed paused = feed_with_a_pause(400ms);
    CHECK(paused.ended);
    CHECK(paused.rendered == paused.pushed);
    CHECK(paused.across_pause >= 1);
    const Feed steady = feed_with_a_pause(0ms);
    CHECK(steady.ended);
    CHECK(steady.rendered == steady.pushed);
    MESSAGE("xruns with a 400 ms pause: " << paused.xruns << " (" << paused.across_pause << " across it); without: "
                                          << steady.xruns);
}

// And the other way: an app that stops taking what a capture device records. The graph waits
// for it (appsink drop=false), alsasrc cannot read, and the device, still recording at its own
// pace, overruns its buffer: alsasrc counts the xrun, recovers, captures on, and flags the first
// sample after the gap as a discontinuity.
TEST_CASE("Alsa.Xrun.AnOverrunIsCountedAndCaptureGoesOn" * doctest::timeout(120)) {
    AlsaOnJack alsa("alsaoverrun");
    INFO(alsa.jack.log());
    REQUIRE(alsa.jack.ready());
    auto capture_with_a_pause = [](std::chrono::milliseconds pause) {
        Graph g;
        const Status built = sluice::nodes::build_pipeline(g, "alsasrc name=in device=mic ! appsink name=out max-buffers=2");
        CAPTURE(built.message());
        REQUIRE(built.ok());
        sluice::nodes::AppSink& out = *sluice::nodes::appsink(g, "out");
        REQUIRE(g.run());
        std::int64_t captured_ns = 0;
        std::uint64_t samples = 0, flagged = 0;  // discontinuities after the first sample
        auto pull_seconds = [&](double seconds) {
            const std::int64_t until = captured_ns + std::int64_t(seconds * 1e9);
            while (captured_ns < until) {
                auto s = out.pull(5s);
                REQUIRE(s);
                captured_ns = s->stop_time();
                if (samples++ > 0 && s->has(sluice::SampleFlags::discontinuity)) ++flagged;
            }
        };
        pull_seconds(1.0);
        const std::uint64_t before_pause = xruns_of(g, "in");
        std::this_thread::sleep_for(pause);
        // The graph reads again once the app pulls: the first read after the pause meets the
        // overrun. 0.25 s of samples (12 of 1024 frames; at most the appsink's 2 and the pool's
        // were read before the pause) comes after that read.
        pull_seconds(0.25);
        const std::uint64_t across_pause = xruns_of(g, "in") - before_pause;
        pull_seconds(0.25);  // capture goes on after the recovery
        const std::uint64_t xruns = xruns_of(g, "in");
        REQUIRE(g.stop());
        return std::tuple(xruns, across_pause, flagged);
    };
    const auto [paused, across_pause, paused_flagged] = capture_with_a_pause(400ms);
    CHECK(across_pause >= 1);
    CHECK(paused_flagged >= 1);
    CHECK(paused_flagged <= paused);
    const auto [steady, steady_across, steady_flagged] = capture_with_a_pause(0ms);
    CHECK(steady_flagged <= steady);
    MESSAGE("capture xruns with a 400 ms pause: " << paused << " (" << across_pause << " across it, " << paused_flagged
                                                   << " samples flagged); without: " << steady);
}

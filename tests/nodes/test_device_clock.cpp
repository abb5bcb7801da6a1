// SPDX-License-Identifier: MIT
// The device as the graph's clock (issue #14): a JACK server's cycle, or an ALSA device's, paces every clocked render,
// and the drift between it and the system clock is measured. Against a real jackd (dummy
// driver), twice: running in real time, where its clock is the system's; and in freewheel mode
// (what JACK users export with: the server cycles as fast as its clients let it), a device far
// faster than the system clock, so that following it is plain to see.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <jack/jack.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>

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

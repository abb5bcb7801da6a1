// SPDX-License-Identifier: MIT
// Sound devices through alsa-lib, checked with alsa-lib's own plugins and a test configuration
// (ALSA_CONFIG_PATH): the `file` plugin records what alsasink sent, its `infile` feeds alsasrc,
// and `null` takes anything. No sound card needed, and no mock: the real library.
#include "../support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <string>
#include <thread>

#include <sys/wait.h>
#include <unistd.h>

namespace {

const std::string kPlayer = SLUICE_PLAY_PATH;

using test::read_file;

// The bytes of a WAV file's data chunk.
std::string wav_data(const std::string& path) {
    const std::string all = read_file(path);
    const std::size_t at = all.find("data");
    REQUIRE(at != std::string::npos);
    return all.substr(at + 8);
}

// A folder with an ALSA configuration naming three devices: `rec` (records into rec.raw),
// `feed` (captures from feed.raw), `sink` (null: takes anything).
struct AlsaSetup {
    test::TempDir dir;
    std::string env;
    AlsaSetup() {
        std::ofstream conf(dir.path() + "/asound.conf");
        conf << "pcm.rec { type file slave.pcm \"null\" file \"" << dir.path() << "/rec.raw\" format \"raw\" }\n"
             << "pcm.feed { type file slave.pcm \"null\" file \"/dev/null\" infile \"" << dir.path()
             << "/feed.raw\" format \"raw\" }\n"
             << "pcm.sink { type null }\n";
        env = "ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:" + dir.path() + "/asound.conf ";
    }
    test::CommandResult play(const std::string& args) const { return test::run(env + kPlayer + " -q " + args + " 2>&1"); }
};

}  // namespace

// What alsasink sends the device is exactly what the graph made: the `file` plugin's recording
// equals wavsink's data chunk for the same pipeline, in each sample format.
TEST_CASE("Alsa.Sink.DeviceGetsExactlyWhatTheGraphSent" * doctest::timeout(60)) {
    AlsaSetup alsa;
    for (const char* format : {"s16", "s32", "f32"}) {
        CAPTURE(format);
        const std::string tone = std::string("tone freq=440 channels=2 format=") + format;
        auto r = alsa.play("--no-realtime --duration 1 " + test::quote(tone + " ! alsasink device=rec"));
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        const std::string wav = alsa.dir.path() + "/ref.wav";
        auto w = alsa.play("--no-realtime --duration 1 " + test::quote(tone + " ! wavsink path=" + wav));
        REQUIRE(w.exit_code == 0);
        const std::string sent = read_file(alsa.dir.path() + "/rec.raw");
        CHECK(sent.size() == std::size_t(48000) * 2 * (std::string(format) == "s16" ? 2 : 4));
        CHECK((sent == wav_data(wav)));
    }
}

// alsasrc delivers what the device captured: the `file` plugin's infile, byte for byte.
TEST_CASE("Alsa.Src.GraphGetsExactlyWhatTheDeviceCaptured" * doctest::timeout(60)) {
    AlsaSetup alsa;
    const std::string ref = alsa.dir.path() + "/ref.wav";
    REQUIRE(alsa.play("--no-realtime --duration 1 " + test::quote("tone freq=1000 ! wavsink path=" + ref)).exit_code == 0);
    const std::string feed = wav_data(ref);
    std::ofstream(alsa.dir.path() + "/feed.raw", std::ios::binary) << feed;
    const std::string out = alsa.dir.path() + "/cap.wav";
    auto r = alsa.play("--no-realtime --stats-json " + alsa.dir.path() + "/s.json " +
                       test::quote("alsasrc device=feed rate=48000 channels=2 period-frames=1024 num-buffers=40 ! wavsink path=" + out));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::string got = wav_data(out);
    CHECK(got.size() == std::size_t(40) * 1024 * 4);
    CHECK((got == feed.substr(0, got.size())));
    CHECK(read_file(alsa.dir.path() + "/s.json").find("\"xruns\": 0") != std::string::npos);
}

// A device that does not exist, or a rate it refuses: one line naming the device and ALSA's
// message, exit 2, and nothing of alsa-lib's own printing on the terminal.
TEST_CASE("Alsa.BadDevice.OneLineAndExitTwo" * doctest::timeout(60)) {
    AlsaSetup alsa;
    auto r = alsa.play(test::quote("tone ! alsasink device=nosuch"));
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("device 'nosuch': cannot open") != std::string::npos);
    CHECK(r.output.find("ALSA lib") == std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

// A format the device cannot take: alsa-lib's `linear` plugin accepts integer samples only (it
// converts them to its slave's s16), so a graph that must send f32 is refused at negotiation
// with one line naming the converter, exit 2; following the advice plays, and the device gets
// s16 (the file plugin under the linear one records two bytes a sample).
TEST_CASE("Alsa.BadFormat.OneLineAndTheAdviceWorks" * doctest::timeout(60)) {
    AlsaSetup alsa;
    std::ofstream(alsa.dir.path() + "/asound.conf", std::ios::app)
        << "pcm.intonly { type linear slave { pcm { type file slave.pcm \"null\" file \"" << alsa.dir.path()
        << "/int.raw\" format \"raw\" } format S16_LE } }\n";
    auto r = alsa.play("--no-realtime --duration 1 " + test::quote("tone channels=2 format=f32 ! alsasink device=intonly"));
    test::check_refused(r, "put 'audioconvert format=s16' between them");
    auto ok = alsa.play("--no-realtime --duration 1 " +
                        test::quote("tone channels=2 format=f32 ! audioconvert format=s16 ! alsasink device=intonly"));
    INFO(ok.output);
    REQUIRE(ok.exit_code == 0);
    CHECK(read_file(alsa.dir.path() + "/int.raw").size() == std::size_t(48000) * 2 * 2);
}

// A device another program has open: one line naming the device and saying it is busy, exit 2,
// at once rather than a wait for the device; once the other program lets go, it plays. The
// device is alsa-lib's `file` plugin made one program at a time by a hook for alsa-lib's own
// `hooks` plugin (alsa_exclusive_hook.cpp: this machine has no sound card to be busy).
TEST_CASE("Alsa.BusyDevice.OneLineAndExitTwoThenPlaysWhenFree" * doctest::timeout(90)) {
    AlsaSetup alsa;
    const std::string d = alsa.dir.path();
    REQUIRE(alsa.play("--no-realtime --duration 0.5 " + test::quote("tone ! wavsink path=" + d + "/ref.wav")).exit_code == 0);
    std::ofstream(d + "/feed.raw", std::ios::binary) << wav_data(d + "/ref.wav");
    std::ofstream(d + "/asound.conf", std::ios::app)
        << "pcm_hook_type.sluice_exclusive { lib \"" << SLUICE_ALSA_EXCLUSIVE_PATH
        << "\" install \"sluice_exclusive_install\" }\n"
        << "pcm.excl { type hooks slave.pcm { type file slave.pcm \"null\" file \"" << d << "/excl.raw\" infile \"" << d
        << "/feed.raw\" format \"raw\" } hooks.0 { type sluice_exclusive hook_args { lock \"" << d << "/excl.lock\" } } }\n";
    // The first program holds the device for six seconds (--realtime: paced by the graph's clock,
    // where the null device under the file plugin would take 6 s of tone at once).
    test::Background holder(alsa.env + kPlayer + " -q --realtime --duration 6 " + test::quote("tone ! alsasink device=excl") + " 2>&1");
    REQUIRE(test::wait_for_file(d + "/excl.raw"));
    for (const char* pipeline : {"tone ! alsasink device=excl", "alsasrc device=excl ! wavsink path=cap.wav"}) {
        CAPTURE(pipeline);
        const auto t0 = std::chrono::steady_clock::now();
        // --duration: were the device not refused, the test still ends (and fills no disk).
        auto r = test::run("cd " + test::quote(d) + " && " + alsa.env + kPlayer + " --no-realtime --duration 1 " +
                           test::quote(pipeline) + " 2>&1");
        const auto took = std::chrono::steady_clock::now() - t0;
        INFO(r.output);
        CHECK(r.exit_code == 2);
        CHECK(r.output.find("device 'excl': busy (another program has it): Device or resource busy") != std::string::npos);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
        CHECK(r.output.find("ALSA lib") == std::string::npos);
        CHECK(took < std::chrono::seconds(4));  // refused, not queued behind the holder's 6 s
    }
    const auto& held = holder.join();
    INFO(held.output);
    CHECK(held.exit_code == 0);
    // The holder has let go: the same device plays, and records what the graph sent.
    auto free = alsa.play("--no-realtime --duration 0.5 " + test::quote("tone ! alsasink device=excl"));
    INFO(free.output);
    CHECK(free.exit_code == 0);
    CHECK(read_file(d + "/excl.raw").size() == std::size_t(24000) * 4);
}

// A card that takes a list of rates (44.1, 48 and 96 kHz, as a USB interface does; here an
// alsa-lib ioplug device, alsa_rate_list_device.cpp): its rates take part in negotiation. A
// 22.05 kHz tone is refused in one line naming audioresample, and the advice plays at 48 kHz;
// 44.1 kHz plays as it is; `sluice-play SONG` of a 22.05 kHz song puts a resampler in and the
// card gets 48 kHz (before: "does not take 22050 Hz" when the device opened, exit 1). alsasrc
// captures at a rate of the list, and names the list for one not in it.
TEST_CASE("Alsa.RateList.NegotiatedAndTheSongResampled" * doctest::timeout(120)) {
    AlsaSetup alsa;
    const std::string d = alsa.dir.path();
    std::ofstream(d + "/asound.conf", std::ios::app)
        << "pcm_type.sluice_rates { lib \"" << SLUICE_ALSA_RATE_LIST_PATH << "\" }\n"
        << "pcm.card { type sluice_rates file \"" << d << "/card.raw\" }\n";
    auto params = [&] {
        std::string p = read_file(d + "/card.raw.params");
        while (!p.empty() && p.back() == '\n') p.pop_back();
        return p;
    };
    auto refused = alsa.play("--no-realtime --duration 1 " + test::quote("tone rate=22050 ! alsasink device=card"));
    test::check_refused(refused, "audioresample");
    auto advice = alsa.play("--no-realtime --duration 1 " + test::quote("tone rate=22050 ! audioresample ! alsasink device=card"));
    INFO(advice.output);
    REQUIRE(advice.exit_code == 0);
    CHECK(params() == "48000 2 S16_LE");
    CHECK(read_file(d + "/card.raw").size() == std::size_t(48000) * 4);
    auto cd = alsa.play("--no-realtime --duration 1 " + test::quote("tone rate=44100 ! alsasink device=card"));
    INFO(cd.output);
    REQUIRE(cd.exit_code == 0);
    CHECK(params() == "44100 2 S16_LE");
    CHECK(read_file(d + "/card.raw").size() == std::size_t(44100) * 4);

    const std::string song = d + "/song.flac";
    auto made = test::run("ffmpeg -v error -y -f lavfi -i sine=frequency=440:sample_rate=22050:duration=1.5 -ac 2 -c:a flac " +
                          test::quote(song));
    REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    std::ofstream(d + "/asound.conf", std::ios::app) << "pcm.!default card\n";
    auto played = test::run("env -u DISPLAY -u WAYLAND_DISPLAY " + alsa.env + kPlayer + " -v " + test::quote(song) + " 2>&1");
    INFO(played.output);
    REQUIRE(played.exit_code == 0);
    CHECK(played.output.find("audioresample") != std::string::npos);
    CHECK(params() == "48000 2 S16_LE");
    const std::size_t bytes = read_file(d + "/card.raw").size();
    CHECK(bytes > std::size_t(48000 * 1.49) * 4);  // 1.5 s at 48 kHz, give or take the filter's edges
    CHECK(bytes < std::size_t(48000 * 1.51) * 4);

    auto not_listed = alsa.play("--no-realtime " + test::quote("alsasrc device=card rate=22050 num-buffers=4 ! nullsink"));
    test::check_refused(not_listed, "device 'card' captures at 48000, 44100, 96000 Hz, not rate=22050");
    const std::string wav = d + "/cap.wav";
    auto captured = alsa.play("--no-realtime " + test::quote("alsasrc device=card rate=44100 num-buffers=4 ! wavsink path=" + wav));
    INFO(captured.output);
    REQUIRE(captured.exit_code == 0);
    CHECK(test::probe(wav, "a:0", "sample_rate") == "44100");
}

// Ctrl-C with the device open: a clean exit, and the recording (paced by the graph's clock,
// sync=true) holds what was played up to then, whole frames of the tone.
TEST_CASE("Alsa.Interrupt.CleanExit" * doctest::timeout(60)) {
    AlsaSetup alsa;
    const auto child = test::interrupt_when("env " + alsa.env + kPlayer + " -q --realtime 'tone ! alsasink device=rec'",
                                            test::file_exists(alsa.dir.path() + "/rec.raw"), std::chrono::milliseconds(1000));
    REQUIRE(child.started);
    REQUIRE(child.reaped);
    CHECK(WIFEXITED(child.status));
    const std::string sent = read_file(alsa.dir.path() + "/rec.raw");
    CHECK(sent.size() % 4 == 0);
    CHECK(sent.size() > 48000 * 4 / 2);  // more than half a second ...
    CHECK(sent.size() < 48000 * 4 * 3);  // ... and paced, not as fast as the machine goes
}

// sluice-play with no pipeline: its tone goes to the default ALSA device when there is one (here
// alsa-lib's file plugin standing in for it), and it says which.
TEST_CASE("Alsa.DefaultGraph.PlaysOnTheDefaultDeviceWhenThereIsOne" * doctest::timeout(120)) {
    AlsaSetup alsa;
    std::ofstream(alsa.dir.path() + "/asound.conf", std::ios::app)
        << "pcm.!default { type file slave.pcm \"null\" file \"" << alsa.dir.path() << "/speaker.raw\" format \"raw\" }\n";
    auto r = test::run("cd " + test::quote(alsa.dir.path()) + " && " + alsa.env + kPlayer + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("plays on the ALSA device 'default'") != std::string::npos);
    const std::string played = read_file(alsa.dir.path() + "/speaker.raw");
    CHECK(played.size() == std::size_t(5 * 48000 * 4));  // the demo's 5 s of stereo s16
    CHECK((played == wav_data(alsa.dir.path() + "/sluice-demo.wav")));
    // No device: the demo says so and goes to files only.
    auto none = test::run("cd " + test::quote(alsa.dir.path()) + " && ALSA_CONFIG_PATH=" + alsa.dir.path() +
                          "/empty.conf " + kPlayer + " 2>&1");
    INFO(none.output);
    CHECK(none.exit_code == 0);
    CHECK(none.output.find("no sound device") != std::string::npos);
}

// `sluice-play FILE` plays a media file as gst-play-1.0 does: a song's audio on the default
// ALSA device (here the file plugin), at its rate, with no window (no display is needed); the
// device gets what ffmpeg decodes. Without a sound device, or with a word that names no file
// and no node, one line and exit 2.
TEST_CASE("Player.File.PlaysASongOnTheDefaultDevice" * doctest::timeout(120)) {
    AlsaSetup alsa;
    std::ofstream(alsa.dir.path() + "/asound.conf", std::ios::app)
        << "pcm.!default { type file slave.pcm \"null\" file \"" << alsa.dir.path() << "/speaker.raw\" format \"raw\" }\n";
    const std::string song = alsa.dir.path() + "/a song.flac";  // a space: the path is quoted in the pipeline
    auto made = test::run("ffmpeg -v error -y -f lavfi -i sine=frequency=440:sample_rate=44100:duration=1.5 -ac 2 -c:a flac " +
                          test::quote(song));
    REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    auto r = test::run("env -u DISPLAY -u WAYLAND_DISPLAY " + alsa.env + kPlayer + " " + test::quote(song) + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("sluice-play: playing " + song + ": audio on the ALSA device 'default'\n") != std::string::npos);
    auto decoded = test::run("ffmpeg -v error -i " + test::quote(song) + " -f s16le -");
    REQUIRE(decoded.exit_code == 0);
    CHECK(decoded.output.size() == std::size_t(66150 * 4));  // 1.5 s at 44.1 kHz, stereo s16
    CHECK((read_file(alsa.dir.path() + "/speaker.raw") == decoded.output));

    auto none = test::run("ALSA_CONFIG_PATH=" + alsa.dir.path() + "/empty.conf " + kPlayer + " " + test::quote(song) + " 2>&1");
    INFO(none.output);
    CHECK(none.exit_code == 2);
    CHECK(none.output.find(": no sound device for its audio (") != std::string::npos);
    CHECK(std::count(none.output.begin(), none.output.end(), '\n') == 1);

    auto missing = test::run("cd " + test::quote(alsa.dir.path()) + " && " + alsa.env + kPlayer + " nosuch.mp3 2>&1");
    INFO(missing.output);
    CHECK(missing.exit_code == 2);
    CHECK(missing.output.find("sluice-play: no file 'nosuch.mp3' to play, and as a pipeline: ") == 0);
    CHECK(std::count(missing.output.begin(), missing.output.end(), '\n') == 1);

    auto not_media = test::run(alsa.env + kPlayer + " " + test::quote(alsa.dir.path() + "/asound.conf") + " 2>&1");
    INFO(not_media.output);
    CHECK(not_media.exit_code == 2);
    CHECK(std::count(not_media.output.begin(), not_media.output.end(), '\n') == 1);
}

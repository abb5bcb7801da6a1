// SPDX-License-Identifier: MIT
// sluice-play end to end: its outputs opened by independent readers (ffprobe, ffmpeg, sox), its
// exit codes, its errors, and Ctrl-C.
#include "../support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <iterator>
#include <thread>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <unistd.h>

using test::quote;
using test::run;
using test::TempDir;

namespace {
const std::string kPlayer = SLUICE_PLAY_PATH;

test::CommandResult play(const std::string& args, const std::string& dir = "/tmp") {
    return run("cd " + quote(dir) + " && " + kPlayer + " -q " + args);
}
}  // namespace

TEST_CASE("Player.DefaultGraph.WritesValidFilesAndSaysWhere" * doctest::timeout(120)) {
    TempDir dir;
    auto r = run("cd " + quote(dir.path()) + " && " + kPlayer);  // not quiet: it says where the files are
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find(dir.path() + "/sluice-demo.wav") != std::string::npos);
    CHECK(test::probe(dir / "sluice-demo.wav", "a:0", "codec_name") == "pcm_s16le");
    CHECK(std::stod(test::probe(dir / "sluice-demo.wav", "a:0", "duration")) == doctest::Approx(5.0).epsilon(0.03));
    CHECK(test::dominant_frequency(test::decode_mono(dir / "sluice-demo.wav"), 48000) == doctest::Approx(440).epsilon(1.0 / 440));
    CHECK(test::probe(dir / "sluice-demo.y4m", "v:0", "width,height,r_frame_rate,nb_read_frames") == "640\n360\n30/1\n150");
    CHECK(test::probe(dir / "sluice-demo.png", "v:0", "codec_name,width,height") == "png\n640\n360");
}

TEST_CASE("Player.Errors.BadInputExitsTwoWithOneLine" * doctest::timeout(120)) {
    TempDir dir;
    const std::vector<test::BadInput> cases{
        {"'tonee freq=440 ! nullsink'", "unknown node 'tonee'"},
        {"'tone freq=abc ! nullsink'", "property freq='abc' is not a number"},
        {"'tone bogus=1 ! nullsink'", "has no property 'bogus'"},
        {"'tone ! y4msink path=x.y4m'", "cannot link tone0.src to y4msink0.sink"},
        {"'wavsrc path=/nonexistent/a.wav ! nullsink'", "/nonexistent/a.wav: cannot open"},
        {"'tone ! wavsink path=/nonexistent/dir/a.wav'", "/nonexistent/dir/a.wav: cannot open for writing"},
        {"'tone ! !'", "two '!' in a row"},
        {"'tone'", "pin tone0.src is not linked"},
        {"--duration -3 'tone ! nullsink'", "--duration"},
        {"--realtime --no-realtime 'tone ! nullsink'", "contradict"},
        {"'videotest width=0 ! nullsink'", "property width='0'"},
        {"'tone channels=-1 ! nullsink'", "property channels='-1' is out of range"},
        {"'tone frames=99999999999 ! nullsink'", "property frames='99999999999' is out of range"},
        {"'tone rate=0 ! nullsink'", "property rate='0' is out of range"},
        {"'scale width=100000 height=10 ! nullsink'", "width"},
        {"'tone ! tee name=t t. ! nullsink t. ! videoconvert ! nullsink'", "cannot link"},
        {"'y4msrc path=/dev/null ! nullsink'", "/dev/null"},
        {"'wavsrc path=/etc/hostname ! nullsink'", "/etc/hostname: byte"},
        {"'tone ! wavsink'", "property path is required"},
        {"'\"'", "unterminated quote"},
        {"--num-buffers -5 'tone ! nullsink'", "--num-buffers"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.input);
        auto r = play(c.input, dir.path());
        test::check_refused(r, c.needle);  // exit 2, one line
        CHECK(r.output.rfind("sluice-play: ", 0) == 0);
    }
}

TEST_CASE("Player.Interrupt.CtrlCLeavesAValidFile" * doctest::timeout(60)) {
    TempDir dir;
    const std::string wav = dir / "live.wav";
    const auto child = test::interrupt_when(kPlayer + " -q --realtime " + quote("tone freq=440 ! wavsink path=" + wav),
                                            test::file_exists(wav), std::chrono::milliseconds(1500));
    REQUIRE(child.started);
    REQUIRE(child.reaped);
    REQUIRE(WIFEXITED(child.status));
    CHECK(WEXITSTATUS(child.status) == 130);
    // The header was finished by the stop path: ffprobe's duration matches the samples there.
    const double duration = std::stod(test::probe(wav, "a:0", "duration"));
    // The 1.5 s count from the file's appearance (start-up under a sanitizer or load would eat
    // into them otherwise); what matters is a header that matches.
    CHECK(duration > 0.3);
    CHECK(duration < 2.0);
    const auto samples = test::decode_mono(wav);
    CHECK(double(samples.size()) / 48000 == doctest::Approx(duration).epsilon(0.001));
    CHECK(run("sox " + quote(wav) + " -n stat").exit_code == 0);
}

TEST_CASE("Player.StatsJson.PerNodeAndPerPool" * doctest::timeout(60)) {
    TempDir dir;
    auto r = play("--stats-json " + quote(dir / "s.json") + " --num-buffers 100 'tone ! gain db=-6 ! nullsink'");
    REQUIRE(r.exit_code == 0);
    std::ifstream in(dir / "s.json");
    auto j = nlohmann::json::parse(in);
    CHECK(j["ended_by"] == "end-of-stream");
    CHECK(j["pipeline"] == "tone ! gain db=-6 ! nullsink");
    CHECK(j["sluice_version"].get<std::string>().find('.') != std::string::npos);
    CHECK(j["nodes"]["gain0"]["type"] == "gain");
    REQUIRE(j["links"].size() == 2);
    CHECK(j["links"][0]["from"] == "tone0.src");
    CHECK(j["links"][0]["to"] == "gain0.sink");
    CHECK(j["links"][0]["format"] == "audio/s16 48000Hz 2ch");
    CHECK(j["nodes"]["tone0"]["links"][0]["to"] == "gain0.sink");
    CHECK(j["nodes"]["nullsink0"]["samples_in"] == 100);
    CHECK(j["pools"]["tone0.src"]["gets"] == 100);
    CHECK(j["pools"]["tone0.src"]["outstanding"] == 0);
}

TEST_CASE("Player.List.ShowsEveryNodeAndProperty") {
    auto r = run(kPlayer + " --list");
    REQUIRE(r.exit_code == 0);
    for (const char* node : {"tone", "noise", "wavsrc", "videotest", "y4msrc", "gain", "mix", "tee", "audioconvert",
                             "videoconvert", "scale", "wavsink", "y4msink", "nullsink", "pngsink", "alsasink", "alsasrc",
                             "jacksink", "jacksrc"})
        CHECK(("\n" + r.output).find(std::string("\n") + node + " ") != std::string::npos);
    CHECK(r.output.find("num-buffers") != std::string::npos);
    // Live properties are marked: gain's db is, its neighbours' fixed properties are not.
    CHECK(r.output.find("db           default 0            gain in dB (negative attenuates); a live change ramps over one buffer [live]") != std::string::npos);
    CHECK(r.output.find("rate         default 48000        sample rate in Hz [live]") == std::string::npos);
    CHECK(run(kPlayer + " --help").exit_code == 0);
}

TEST_CASE("Player.Duration.RealtimeIsPacedByTheClock" * doctest::timeout(60)) {
    TempDir dir;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = play("--realtime --duration 1 --stats-json " + quote(dir / "s.json") + " 'tone frames=480 ! nullsink'");
    const auto took = std::chrono::steady_clock::now() - t0;
    REQUIRE(r.exit_code == 0);
    CHECK(took >= std::chrono::milliseconds(950));
    std::ifstream in(dir / "s.json");
    auto j = nlohmann::json::parse(in);
    CHECK(j["nodes"]["nullsink0"]["samples_in"] == 100);  // 1 s of 480-frame buffers at 48 kHz
}

// --dot FILE: the prepared graph in Graphviz's language (nodes, pins, negotiated formats, pool
// sizes), which graphviz's own `dot` draws; a FIFO there is refused like one for --stats-json.
TEST_CASE("Player.Dot.GraphvizDrawsThePreparedGraph" * doctest::timeout(60)) {
    TempDir dir;
    const std::string dot = dir / "g.dot", svg = dir / "g.svg";
    auto r = run(kPlayer + " -q --num-buffers 3 --dot " + quote(dot) + " " +
                 quote("tone ! tee name=t t. ! wavsink path=" + dir / "a.wav" + " t. ! gain db=-6 ! nullsink") + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    std::ifstream in(dot);
    const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    INFO(text);
    CHECK(text.starts_with("digraph sluice {"));
    CHECK(text.find("label=\"t\\ntee\"") != std::string::npos);
    CHECK(text.find("audio/s16 48000Hz 2ch\\npool ") != std::string::npos);
    CHECK(text.find("taillabel=\"src_1\"") != std::string::npos);
    auto drawn = run("dot -Tsvg " + quote(dot) + " -o " + quote(svg) + " 2>&1");
    INFO(drawn.output);
    CHECK(drawn.exit_code == 0);
    std::ifstream svg_in(svg);
    const std::string picture((std::istreambuf_iterator<char>(svg_in)), std::istreambuf_iterator<char>());
    CHECK(picture.find("wavsink0") != std::string::npos);
    CHECK(picture.find("gain0") != std::string::npos);
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    auto fifo = run("timeout 10 " + kPlayer + " -q --num-buffers 3 --dot " + quote(dir / "fifo") + " 'tone ! nullsink' 2>&1");
    CHECK(fifo.exit_code == 2);
    CHECK(fifo.output.find("--dot") != std::string::npos);
}

// --control: commands on standard input while playing. Answers on stdout, refusals on stderr as
// one line each, playing goes on after a refusal, and `quit` ends the run with exit 0 (the tone
// never ends by itself, and a closed standard input does not stop it: only the quit can end it
// before the timeout's exit 124).
TEST_CASE("Player.Control.SetGetRefuseAndQuitFromStdin" * doctest::timeout(60)) {
    auto r = run("(sleep 0.3; printf 'set g db=-20\\nget g db\\nset t rate=1\\nset g db=loud\\nbogus words\\nget t freq\\nquit\\n') | "
                 "timeout 20 " + kPlayer + " -q --control 'tone name=t freq=330 ! gain name=g ! nullsink'");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("g db=-20\ng db=-20\n") != std::string::npos);  // the set, then the get
    CHECK(r.output.find("sluice-play: control: t: property 'rate' is not live") != std::string::npos);
    CHECK(r.output.find("sluice-play: control: g: property db='loud' is not a number") != std::string::npos);
    CHECK(r.output.find("sluice-play: control: unknown command 'bogus words'") != std::string::npos);
    CHECK(r.output.find("t freq=330") != std::string::npos);
}

// The command reader sleeps until a command comes: over a second of playing with standard input
// open and silent, its thread (named sluice-control) switches out at most twice. It used to look
// at standard input every 100 ms (10 wake-ups a second beside a device's real-time thread).
TEST_CASE("Player.Control.ReaderSleepsUntilACommand" * doctest::timeout(60)) {
    TempDir dir;
    const std::string fifo = dir / "commands";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    // The shell holds the FIFO open for writing (fd 3) until it sends the quit.
    const std::string script =
        kPlayer + " -q --control --realtime 'tone ! nullsink' < " + quote(fifo) + " & pid=$!; exec 3> " + quote(fifo) + "; "
        "for i in $(seq 400); do t=$(grep -lx sluice-control /proc/$pid/task/*/comm 2>/dev/null | head -1); "
        "[ -n \"$t\" ] && break; sleep 0.05; done; s=${t%comm}status; sleep 0.5; "
        "a=$(awk '/^voluntary_ctxt_switches/ {print $2}' $s); sleep 1; b=$(awk '/^voluntary_ctxt_switches/ {print $2}' $s); "
        "echo quit >&3; wait $pid; echo \"rc=$? switches=$a $b\"";
    auto r = run("timeout 45 sh -c " + quote(script) + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::size_t at = r.output.find("rc=0 switches=");
    REQUIRE(at != std::string::npos);
    long before = -1, after = -1;
    REQUIRE(std::sscanf(r.output.c_str() + at, "rc=0 switches=%ld %ld", &before, &after) == 2);
    CHECK(before >= 0);
    CHECK(after - before <= 2);
}

// A live change is heard at its time: the gain turned down to -120 dB while a clocked graph
// plays leaves the end of the file silent and its start at the tone's level.
TEST_CASE("Player.Control.LiveGainChangeLandsInTheFile" * doctest::timeout(60)) {
    TempDir dir;
    const std::string wav = dir / "g.wav";
    auto r = run("(sleep 0.8; printf 'set g db=-120\\n') | " + kPlayer +
                 " -q --control --realtime --duration 2 " + quote("tone amplitude=0.5 ! gain name=g ! wavsink path=" + wav));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::vector<float> samples = test::decode_mono(wav);
    REQUIRE(samples.size() == 96000);
    auto peak = [&](std::size_t from, std::size_t to) {
        float p = 0;
        for (std::size_t i = from; i < to; ++i) p = std::max(p, std::abs(samples[i]));
        return p;
    };
    CHECK(peak(0, 12000) > 0.45f);        // the first quarter second: the tone at 0.5
    CHECK(peak(84000, 96000) < 1e-4f);    // the last quarter second: silent
}

// Network sinks follow the graph's clock by default (issue #15: 5 s of audio used to leave in
// 0.02 s): two seconds of media take two seconds to send, even though sluice-play's renders run as fast
// as possible without --realtime; sync=false sends at once.
TEST_CASE("Player.Rtp.SinksFollowTheClockByDefault" * doctest::timeout(60)) {
    auto timed = [](const std::string& pipeline) {
        const auto t0 = std::chrono::steady_clock::now();
        auto r = play("--duration 2 " + quote(pipeline));
        INFO(r.output);
        CHECK(r.exit_code == 0);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    const double paced = timed("tone ! rtpsink host=127.0.0.1 port=47291");
    const double video = timed("videotest ! rtpvrawsink host=127.0.0.1 port=47293");
    const double flat = timed("tone ! rtpsink host=127.0.0.1 port=47292 sync=false");
    MESSAGE("2 s of media sent in " << paced << " s (audio), " << video << " s (video); with sync=false in " << flat << " s");
    CHECK(paced >= 1.95);
    CHECK(video >= 1.9);
    // Relative, so that a sanitizer build's slow start (a second under TSan) counts on both sides.
    CHECK(flat < paced - 1.0);
}

// --rt-priority locks the process's memory (mlockall), as JACK and cyclictest do; where that is
// refused (here: no CAP_IPC_LOCK, whether root or not, and a locked-memory limit of 0), one line
// says so and the graph plays all the same.
TEST_CASE("Player.Realtime.MemoryLockedOrOneLineWhy" * doctest::timeout(60)) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // The player of a sanitizer build does not lock (the shadow memory): it says so and plays.
    const auto r = test::run(kPlayer + " -q --realtime --rt-priority 10 --duration 0.2 " + quote("tone frames=64 ! nullsink"));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("sluice-play: warning: not locking memory in a sanitizer build") != std::string::npos);
    return;
#endif
    const std::string graph = quote("tone frames=64 ! nullsink");
    const auto locked = test::run(kPlayer + " -q --realtime --rt-priority 10 --duration 0.2 " + graph);
    INFO(locked.output);
    CHECK(locked.exit_code == 0);
    CHECK(locked.output.find("cannot lock memory") == std::string::npos);
    const auto refused = test::run("setpriv --bounding-set -ipc_lock --inh-caps -ipc_lock sh -c " +
                                   quote("ulimit -l 0 && exec " + kPlayer + " -q --realtime --rt-priority 10 --duration 0.2 " + graph));
    INFO(refused.output);
    CHECK(refused.exit_code == 0);
    CHECK(refused.output.find("sluice-play: warning: cannot lock memory (mlockall: ") != std::string::npos);
}

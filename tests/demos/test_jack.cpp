// SPDX-License-Identifier: MIT
// jacksink and jacksrc against a real JACK server the tests start themselves (jackd2's dummy
// driver, 48 kHz, 64-frame periods: no sound card, no mock), each under its own name
// (test::JackServer). sluice-play finds it through JACK_DEFAULT_SERVER, as every JACK client does.
#include "../support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstring>
#include <fstream>
#include <iterator>
#include <numbers>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>
#include <pthread.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

const std::string kPlayer = SLUICE_PLAY_PATH;

using test::read_file;

std::size_t file_size(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? std::size_t(st.st_size) : 0;
}

// The first channel of a WAV file of interleaved f32 (what jacksrc records), from its data chunk.
std::vector<float> wav_f32_channel0(const std::string& path, int channels) {
    const std::string all = read_file(path);
    const std::size_t at = all.find("data");
    REQUIRE(at != std::string::npos);
    const std::size_t frames = (all.size() - at - 8) / (4 * std::size_t(channels));
    std::vector<float> out(frames);
    for (std::size_t i = 0; i < frames; ++i) std::memcpy(&out[i], all.data() + at + 8 + i * 4 * std::size_t(channels), 4);
    return out;
}

// sluice-play in the background, its output in a file; kill()ed and reaped at the end whatever
// happened.
class Player {
public:
    Player(const std::string& env, const std::string& args, const std::string& output) {
        const std::string command = "exec env " + env + kPlayer + " -q " + args + " > " + test::quote(output) + " 2>&1";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
            ::_exit(127);
        }
    }
    ~Player() {
        if (pid_ > 0) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
    }
    void signal(int sig) const { ::kill(pid_, sig); }
    pid_t pid() const noexcept { return pid_; }
    // The exit code once it exits within `limit`, or -1.
    int wait(std::chrono::milliseconds limit) {
        int status = 0;
        const bool done = test::eventually([&] { return ::waitpid(pid_, &status, WNOHANG) == pid_; }, limit);
        if (!done) return -1;
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }

private:
    pid_t pid_ = -1;
};

// Where a sine of `cycles_per_frame` breaks in x[from, to): the frames at which the recurrence
// x[n+1] = 2 cos(w) x[n] - x[n-1], which every sine of that frequency obeys whatever its phase,
// fails by more than s16 rounding explains (a gap of silence, a skipped or a repeated stretch).
// Failures within 64 frames of the last one are the same break.
std::vector<std::size_t> sine_breaks(const std::vector<float>& x, double cycles_per_frame, std::size_t from, std::size_t to) {
    const double c = 2 * std::cos(2 * std::numbers::pi * cycles_per_frame);
    std::vector<std::size_t> breaks;
    std::size_t last = 0;
    for (std::size_t n = std::max<std::size_t>(from, 1); n + 1 < std::min(to, x.size()); ++n)
        if (std::fabs(double(x[n + 1]) - c * double(x[n]) + double(x[n - 1])) > 1e-3) {
            if (breaks.empty() || n - last > 64) breaks.push_back(n - from);
            last = n;
        }
    return breaks;
}

bool has_port(const test::JackServer& jack, const std::string& port) {
    const auto r = test::run(jack.env() + "jack_lsp");
    return ("\n" + r.output).find("\n" + port + "\n") != std::string::npos;
}

}  // namespace

// The round trip: a recorder (jacksrc, unconnected) runs; a tone is played into it
// through jacksink. Neither client counts an xrun of its own, and the recording holds the
// graph's tone with no gap, no skip and no repeat (sample for sample, all 1.5 s of it) unless the
// JACK server itself reported xruns, and then no more breaks than it reported.
TEST_CASE("Jack.RoundTrip.ContinuousToneNoXruns" * doctest::timeout(120)) {
    test::JackServer jack("roundtrip");
    INFO(jack.log());
    REQUIRE(jack.ready());
    test::TempDir dir;
    // A ring of 8192 frames (170 ms) each way: room for a loaded machine (and the sanitizers).
    Player recorder(jack.env(), "--stats-json " + dir / "rec.json " +
                                    test::quote("jacksrc client=rec connect=none latency=8192 ! wavsink path=" + dir / "rec.wav"),
                    dir / "rec.txt");
    REQUIRE(test::eventually([&] { return has_port(jack, "rec:in_2"); }, std::chrono::seconds(20)));
    const auto play = test::run(jack.env() + kPlayer + " -q --duration 1.5 --stats-json " + dir / "play.json " +
                                test::quote("tone freq=440 ! jacksink connect=rec:.* latency=8192"));
    INFO(play.output);
    REQUIRE(play.exit_code == 0);
    // The sink ended once JACK had taken its last frame; give the recorder a quarter second
    // more on disk, then stop it as Ctrl-C would.
    const std::size_t played = file_size(dir / "rec.wav");
    CHECK(test::eventually([&] { return file_size(dir / "rec.wav") > played + 48000 * 8 / 4; }, std::chrono::seconds(20)));
    recorder.signal(SIGINT);
    const int rec_exit = recorder.wait(std::chrono::seconds(20));
    INFO(read_file(dir / "rec.txt"));
    REQUIRE(rec_exit == 128 + SIGINT);

    const auto rec = nlohmann::json::parse(read_file(dir / "rec.json"));
    const auto out = nlohmann::json::parse(read_file(dir / "play.json"));
    CHECK(rec["nodes"]["jacksrc0"]["xruns"] == 0);  // ours: the rings never overflowed ...
    CHECK(out["nodes"]["jacksink0"]["xruns"] == 0);  // ... nor ran dry
    const auto jack_xruns = rec["nodes"]["jacksrc0"]["jack_xruns"].get<std::size_t>();  // the server's own

    const std::vector<float> left = wav_f32_channel0(dir / "rec.wav", 2);
    const auto first = std::find_if(left.begin(), left.end(), [](float v) { return std::fabs(v) > 1e-3f; });
    REQUIRE(first != left.end());
    const auto last = std::find_if(left.rbegin(), left.rend(), [](float v) { return std::fabs(v) > 1e-3f; });
    // The tone's frame 0 is sin(0) = 0: the first sound is its frame 1.
    const std::size_t origin = std::size_t(first - left.begin()) - 1;
    const std::size_t end = left.size() - std::size_t(last - left.rbegin());  // one past the last sound
    CAPTURE(origin);
    CAPTURE(end);
    CHECK(end - origin > 48000 * 14 / 10);  // the tone spans its 1.5 s
    // Breaks in the tone: a gap, a skip or a repeat. Every break must be one JACK reported itself
    // (its graph missed a cycle: on a loaded machine its dummy driver's timer wakes late, and
    // `jack_xruns` counts it); with none reported, there must be none at all.
    const std::vector<std::size_t> breaks = sine_breaks(left, 440.0 / 48000.0, origin + 1, end - 1);
    std::string at;
    for (std::size_t b : breaks) at += " " + std::to_string(b);
    INFO("JACK reported " << jack_xruns << " xruns of its own; breaks at tone frames" << at);
    CHECK(breaks.size() <= jack_xruns);
    if (breaks.empty()) {
        // Then the recording is the tone itself, sample for sample, all 72000 frames of it.
        constexpr std::size_t kToneFrames = 72000;  // 1.5 s at 48 kHz
        CHECK(end - origin == kToneFrames);
        double worst = 0;
        for (std::size_t k = 0; k < kToneFrames && origin + k < left.size(); ++k)
            worst = std::max(worst, std::fabs(double(left[origin + k]) - 0.5 * std::sin(2 * std::numbers::pi * 440.0 * double(k) / 48000.0)));
        CHECK(worst < 2e-3);  // s16 rounding is 1.5e-5
    }
    CHECK(rec["nodes"]["jacksrc0"]["samples_out"].get<int>() > 0);
}

// The server killed while jacksrc records: an error naming the client, exit 1, and the WAV file
// finished and readable. SIGTERM: a SIGKILLed jackd2 keeps its slot in JACK's shared registry
// (eight in all) until a server of the same name starts again, and our names are unique. (Tried
// by hand, SIGKILL ends jacksink and jacksrc the same way.)
TEST_CASE("Jack.ServerKilled.ExitOneFileValid" * doctest::timeout(120)) {
    test::JackServer jack("killed");
    INFO(jack.log());
    REQUIRE(jack.ready());
    test::TempDir dir;
    Player recorder(jack.env(), test::quote("jacksrc client=rec connect=none ! wavsink path=" + dir / "rec.wav"), dir / "rec.txt");
    // A third of a second on disk (f32 stereo), then the server goes.
    const bool recording = test::eventually([&] { return file_size(dir / "rec.wav") > 48000 * 8 / 3; }, std::chrono::seconds(20));
    jack.kill(SIGTERM);
    const int code = recorder.wait(std::chrono::seconds(20));
    const std::string output = read_file(dir / "rec.txt");
    INFO(output);
    REQUIRE(recording);
    CHECK(code == 1);
    CHECK(output.find("JACK client 'rec': the JACK server went away") != std::string::npos);
    CHECK(test::probe(dir / "rec.wav", "a:0", "codec_name") == "pcm_f32le");
    CHECK(std::stod(test::probe(dir / "rec.wav", "a:0", "duration")) > 0.3);
}

// The same for a render, and for a server that cannot say goodbye (SIGKILL): jacksink beside a
// file, both fed by a tee, paced by JACK's consumption. The player notices the server gone, exits
// 1 naming the client, and the file the other branch wrote is finished.
TEST_CASE("Jack.ServerKilled.SinkExitsOneFileValid" * doctest::timeout(120)) {
    test::JackServer jack("killedsink");
    INFO(jack.log());
    REQUIRE(jack.ready());
    test::TempDir dir;
    Player player(jack.env(), test::quote("tone name=t ! tee name=split  split. ! jacksink client=play connect=none  split. ! wavsink path=" +
                                          dir / "copy.wav"),
                  dir / "play.txt");
    // A third of a second through at least (8 bytes a frame at most): then the server dies
    // without a word.
    const bool playing = test::eventually([&] { return file_size(dir / "copy.wav") > 48000 * 8 / 3; }, std::chrono::seconds(20));
    jack.kill(SIGKILL);
    const int code = player.wait(std::chrono::seconds(20));
    const std::string output = read_file(dir / "play.txt");
    INFO(output);
    REQUIRE(playing);
    CHECK(code == 1);
    CHECK(output.find("JACK client 'play': the JACK server went away") != std::string::npos);
    CHECK(test::probe(dir / "copy.wav", "a:0", "codec_name") != "");
    CHECK(std::stod(test::probe(dir / "copy.wav", "a:0", "duration")) > 0.3);
}

// No server under that name: one line saying how to start one, exit 2, at once (JackNoStartServer:
// no server is started behind the user's back, and nothing waits for one).
TEST_CASE("Jack.NoServer.OneLineSaysHowToStartOne" * doctest::timeout(60)) {
    const std::string env = "JACK_DEFAULT_SERVER=sluice-test-none-" + std::to_string(::getpid()) + " ";
    for (const char* pipeline : {"tone ! jacksink", "jacksrc ! nullsink"}) {
        CAPTURE(pipeline);
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = test::run(env + kPlayer + " -q " + test::quote(pipeline));
        INFO(r.output);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
        CHECK(r.exit_code == 2);
        CHECK(r.output.find("no JACK server 'sluice-test-none-") != std::string::npos);
        CHECK(r.output.find("start one with `jackd -n sluice-test-none-") != std::string::npos);
        CHECK(r.output.find("JackServerFailed") != std::string::npos);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
        CHECK(r.output.rfind("sluice-play: ", 0) == 0);
    }
}

// Bad input with a server running: a port regex that matches nothing, one that is no regex, a
// ring shorter than two periods, samples longer than half the ring, a rate the server does not run at (the pipeline's advice names
// audioresample): one line each, exit 2.
TEST_CASE("Jack.BadInput.OneLineExitTwo" * doctest::timeout(60)) {
    test::JackServer jack("badinput");
    INFO(jack.log());
    REQUIRE(jack.ready());
    const std::vector<test::BadInput> cases{
        {"tone ! jacksink connect=nosuch:.*", "JACK client 'sluice': connect='nosuch:.*' matches no JACK audio input port"},
        {"jacksrc connect=nosuch:.* ! nullsink", "connect='nosuch:.*' matches no JACK audio output port"},
        {"tone ! jacksink connect=(", "connect='(' is not a POSIX extended regular expression"},
        {"tone ! jacksink latency=100", "latency=100 is less than two JACK periods"},
        {"jacksrc latency=256 frames=129 ! nullsink", "frames=129 is more than half of latency=256"},
        {"tone rate=44100 ! jacksink", "put 'audioresample rate=48000' between them"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.input);
        const auto t0 = std::chrono::steady_clock::now();
        const auto r = test::run(jack.env() + kPlayer + " -q " + test::quote(c.input));
        INFO(r.output);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20));
        CHECK(r.exit_code == 2);
        CHECK(r.output.find(c.needle) != std::string::npos);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    }
}

// The default connection is to the physical ports (the dummy driver's system:playback_N), and a
// sink's end of stream waits until JACK has taken every frame.
TEST_CASE("Jack.Sink.DefaultConnectsThePhysicalPorts" * doctest::timeout(60)) {
    test::JackServer jack("physical");
    INFO(jack.log());
    REQUIRE(jack.ready());
    test::TempDir dir;
    const auto t0 = std::chrono::steady_clock::now();
    Player sink(jack.env(), "--duration 2 " + test::quote("tone ! jacksink client=speaker"), dir / "out.txt");
    REQUIRE(test::eventually([&] { return has_port(jack, "speaker:out_2"); }, std::chrono::seconds(20)));
    const auto connections = test::eventually([&] {
        const auto r = test::run(jack.env() + "jack_lsp -c speaker:out_1");
        return r.output.find("system:playback_1") != std::string::npos;
    });
    CHECK(connections);
    CHECK(sink.wait(std::chrono::seconds(30)) == 0);
    // Two seconds of media at JACK's pace (less the ring's 43 ms played ahead), never faster.
    CHECK(std::chrono::steady_clock::now() - t0 > std::chrono::milliseconds(1900));
}

// --rt-priority asks for SCHED_FIFO 80, but the thread that feeds jacksink's ring never
// preempts JACK's process callback (5 under jackd's default priority 10): with a short ring
// (latency=256, 5.3 ms) it stays one below it, at 4; with the default ring (2048 frames, 42.7 ms)
// at normal priority, so the process has one real-time thread, JACK's. The player says which in
// one info line.
TEST_CASE("Jack.Realtime.FeedingThreadStaysBelowTheCallback" * doctest::timeout(60)) {
    if (!test::may_use_sched_fifo(10)) {  // jackd -R's 10: root or RLIMIT_RTPRIO; CI's machine may
        MESSAGE("skipped: no SCHED_FIFO for this user");
        return;
    }
    test::JackServer jack("priority");
    INFO(jack.log());
    REQUIRE(jack.ready());
    for (const bool short_ring : {true, false}) {
        CAPTURE(short_ring);
        test::TempDir dir;
        const std::string client = short_ring ? "prio_short" : "prio_long";
        Player sink(jack.env(),
                    "--realtime --rt-priority 80 --duration 3 " +
                        test::quote("tone ! jacksink client=" + client + " connect=none" + (short_ring ? " latency=256" : "")),
                    dir / "out.txt");
        REQUIRE(test::eventually([&] { return has_port(jack, client + ":out_2"); }, std::chrono::seconds(20)));
        // The process's threads' real-time priorities ("-": normal), once the streaming thread
        // has set its own: with the short ring, once 4 shows; with the long one, once the
        // thread has said where it stays (it says so before it would set a priority, and sets
        // none), and a while after.
        std::string priorities;
        const bool settled = test::eventually([&] {
            priorities = test::run("ps -L -o rtprio= -p " + std::to_string(sink.pid())).output;
            return priorities.find(" 5\n") != std::string::npos &&
                   (short_ring ? priorities.find(" 4\n") != std::string::npos
                               : read_file(dir / "out.txt").find("tone0: streaming thread at") != std::string::npos);
        }, std::chrono::seconds(5));
        INFO(priorities);
        CHECK(settled);
        if (!short_ring) std::this_thread::sleep_for(std::chrono::milliseconds(200));
        priorities = test::run("ps -L -o rtprio= -p " + std::to_string(sink.pid())).output;
        CHECK(priorities.find(" 5\n") != std::string::npos);   // JACK's process callback
        CHECK(priorities.find(" 80\n") == std::string::npos);  // nothing above it
        CHECK((priorities.find(" 4\n") != std::string::npos) == short_ring);
        CHECK(sink.wait(std::chrono::seconds(30)) == 0);
        const std::string said = short_ring ? "tone0: streaming thread at SCHED_FIFO 4, not 80: below the real-time thread of a device it feeds or drains"
                                            : "tone0: streaming thread at normal priority, not SCHED_FIFO 80: a device it feeds or drains has a real-time thread of its own and a ring long enough";
        CHECK(read_file(dir / "out.txt").find(said) != std::string::npos);
    }
}

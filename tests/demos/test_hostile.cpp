// SPDX-License-Identifier: MIT
// sluice-play against hostile input and faults (issue #17): each case once crashed, hung, or
// exited 0 with a broken file. Outputs are checked by independent readers (ffprobe, sox).
#include "../support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>

#include <nlohmann/json.hpp>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using test::quote;
using test::run;
using test::TempDir;
using namespace std::chrono_literals;

namespace {
const std::string kPlayer = SLUICE_PLAY_PATH;

test::CommandResult play(const std::string& args) { return run(kPlayer + " -q " + args); }

std::uintmax_t size_of(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 ? std::uintmax_t(st.st_size) : 0;
}

// A small filesystem (tmpfs) with `free_bytes` left, mounted for the test's life. Needs root.
class SmallDisk {
public:
    explicit SmallDisk(std::size_t free_bytes) {
        mounted_ = ::mount("tmpfs", dir_.path().c_str(), "tmpfs", 0, "size=1m") == 0;
        if (!mounted_) return;
        std::ofstream filler(dir_ / "filler", std::ios::binary);
        const std::string chunk(4096, '\0');
        for (std::size_t n = 0; n + free_bytes < (1u << 20); n += chunk.size()) filler << chunk;
    }
    ~SmallDisk() {
        if (mounted_) ::umount(dir_.path().c_str());
    }
    bool mounted() const { return mounted_; }
    std::string operator/(const std::string& f) const { return dir_ / f; }

private:
    TempDir dir_;
    bool mounted_ = false;
};

// Runs `command` in the background; returns its pid.
pid_t spawn(const std::string& command) {
    const pid_t child = ::fork();
    if (child == 0) {
        ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    return child;
}
int wait_exit(pid_t child) {
    int status = 0;
    ::waitpid(child, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// A WAV whose header matches its data: ffprobe's duration agrees with the decoded samples.
// Readers follow the header, so the header is also compared with the bytes on disk: the data
// chunk's size field must count exactly the bytes after it (a process killed mid-stream leaves
// the field up to a second behind what it wrote).
void check_wav_consistent(const std::string& path, double at_least_seconds = 0.1) {
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    const std::size_t data = bytes.find("data");
    REQUIRE(data != std::string::npos);
    std::uint32_t claimed = 0;
    REQUIRE(data + 8 <= bytes.size());
    std::memcpy(&claimed, bytes.data() + data + 4, 4);
    CHECK(std::size_t(claimed) == bytes.size() - (data + 8));
    const double duration = std::stod(test::probe(path, "a:0", "duration"));
    CHECK(duration > at_least_seconds);
    CHECK(double(test::decode_mono(path).size()) / 48000 == doctest::Approx(duration).epsilon(0.001));
    CHECK(run("sox " + quote(path) + " -n stat").exit_code == 0);
}

}  // namespace

// 1. A frame bigger than the mtu was sent whole (a heap overflow of the packet buffer).
TEST_CASE("Hostile.RtpSink.FrameBiggerThanMtuRefused") {
    auto r = play("--num-buffers 1 'tone channels=64 ! rtpsink host=127.0.0.1 port=47001 mtu=64'");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("mtu=64 cannot carry one frame") != std::string::npos);
}

// 2. --stats-json with a node name that is not UTF-8 aborted (exit 134).
TEST_CASE("Hostile.StatsJson.NameNotUtf8StaysValidJson") {
    TempDir dir;
    auto r = play("--num-buffers 2 --stats-json " + quote(dir / "s.json") + " 'tone name=\xff\xfe ! nullsink'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    std::ifstream in(dir / "s.json");
    const auto j = nlohmann::json::parse(in);  // throws on invalid JSON
    CHECK(j["nodes"].contains("\xEF\xBF\xBD\xEF\xBF\xBD"));  // each bad byte replaced by U+FFFD
}

// 5. A FIFO nobody writes to blocked open() forever while the pipeline was built.
TEST_CASE("Hostile.Input.FifoRefusedAtOnce" * doctest::timeout(60)) {
    TempDir dir;
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    for (const char* node : {"wavsrc", "y4msrc"}) {
        CAPTURE(node);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = play("'" + std::string(node) + " path=" + (dir / "fifo") + " ! nullsink'");
        CHECK(r.exit_code == 2);
        CHECK(r.output.find("is a FIFO") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    }
}

// 5, the other way: a FIFO nobody reads as an output (a sink's path, --stats-json) hung open();
// a file the graph reads, given to --stats-json, was truncated before anything checked it.
TEST_CASE("Hostile.Output.FifoAndInputRefusedAtOnce" * doctest::timeout(120)) {
    TempDir dir;
    REQUIRE(::mkfifo((dir / "fifo").c_str(), 0600) == 0);
    for (const std::string& pipeline : {"tone ! wavsink path=" + (dir / "fifo"), "videotest ! y4msink path=" + (dir / "fifo"),
                                       "videotest ! pngsink path=" + (dir / "fifo")}) {
        CAPTURE(pipeline);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = run("timeout 20 " + kPlayer + " -q --num-buffers 2 " + test::quote(pipeline) + " 2>&1");
        CHECK(r.exit_code != 0);
        CHECK(r.exit_code != 124);  // not hung
        CHECK(r.output.find("is a FIFO") != std::string::npos);
        CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    }
    auto r = run("timeout 20 " + kPlayer + " -q --num-buffers 2 --stats-json " + (dir / "fifo") + " 'tone ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("is a FIFO") != std::string::npos);

    // --stats-json naming the file wavsrc reads: refused, the input left whole.
    REQUIRE(play("--num-buffers 10 'tone ! wavsink path=" + (dir / "in.wav") + "'").exit_code == 0);
    const auto size = std::filesystem::file_size(dir / "in.wav");
    r = run(kPlayer + " -q --stats-json " + (dir / "in.wav") + " 'wavsrc path=" + (dir / "in.wav") + " ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("is the file wavsrc0 reads") != std::string::npos);
    CHECK(std::filesystem::file_size(dir / "in.wav") == size);
    // ... and naming a file a sink is about to make (it does not exist yet): refused too.
    r = run(kPlayer + " -q --num-buffers 5 --stats-json " + (dir / "new.wav") + " 'tone ! wavsink path=" + (dir / "new.wav") + "' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("is the file wavsink0 writes") != std::string::npos);
}

// Devices take what a sink writes and have nothing to sync: a WAV to /dev/null once failed at
// its final fsync (EINVAL).
TEST_CASE("Hostile.DevNull.SinksFinishCleanly") {
    for (const std::string& pipeline : {std::string("tone ! wavsink path=/dev/null"), std::string("videotest ! y4msink path=/dev/null"),
                                        std::string("videotest ! pngsink path=/dev/null")}) {
        CAPTURE(pipeline);
        auto r = play("--num-buffers 3 '" + pipeline + "'");
        CHECK(r.output.empty());
        CHECK(r.exit_code == 0);
    }
}

// 9-11. Errors while stopping were never read: a full disk at the final flush, a PNG that could
// not be written, a statistics file on /dev/full all exited 0.
TEST_CASE("Hostile.DiskFull.FailuresAtTheEndExitOne" * doctest::timeout(120)) {
    {
        SmallDisk disk(80 * 1024);
        if (!disk.mounted()) {
            MESSAGE("cannot mount a tmpfs here (not root?): the full-disk half is skipped");
        } else {
            auto r = play("--duration 0.5 'tone ! wavsink path=" + (disk / "a.wav") + "'");
            CHECK(r.exit_code == 1);
            CHECK(r.output.find("a.wav") != std::string::npos);
            CHECK(r.output.find("No space left on device") != std::string::npos);
            std::filesystem::remove(disk / "a.wav");
            r = play("--num-buffers 3 'videotest ! y4msink path=" + (disk / "a.y4m") + "'");  // 3 x 115 KB
            CHECK(r.exit_code == 1);
            CHECK(r.output.find("a.y4m") != std::string::npos);
            CHECK(r.output.find("No space left on device") != std::string::npos);
        }
    }
    {
        SmallDisk disk(4 * 1024);
        if (disk.mounted()) {
            auto r = play("--num-buffers 2 'videotest width=1024 height=1024 format=rgba ! pngsink path=" + (disk / "a.png") + "'");
            CHECK(r.exit_code == 1);
            CHECK(r.output.find("cannot write PNG") != std::string::npos);
        }
    }
    auto png = play("--num-buffers 2 'videotest ! pngsink path=/dev/full'");
    CHECK(png.exit_code == 1);
    CHECK(png.output.find("/dev/full: cannot write PNG") != std::string::npos);
    auto stats = play("--num-buffers 2 --stats-json /dev/full 'tone ! nullsink'");
    CHECK(stats.exit_code == 1);
    CHECK(stats.output.find("writing the statistics failed") != std::string::npos);
    auto nowhere = play("--num-buffers 2 --stats-json /nonexistent/s.json 'tone ! nullsink'");
    CHECK(nowhere.exit_code == 2);
}

// 12. The same file as input and output destroyed the input and exited 0.
TEST_CASE("Hostile.Files.SameFileInAndOutRefused") {
    TempDir dir;
    REQUIRE(play("--num-buffers 10 'tone ! wavsink path=" + (dir / "same.wav") + "'").exit_code == 0);
    REQUIRE(play("--num-buffers 3 'videotest ! y4msink path=" + (dir / "same.y4m") + "'").exit_code == 0);
    const auto wav_size = size_of(dir / "same.wav"), y4m_size = size_of(dir / "same.y4m");
    auto r = play("'wavsrc path=" + (dir / "same.wav") + " ! gain ! wavsink path=" + (dir / "same.wav") + "'");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("the input would be destroyed") != std::string::npos);
    // Another name for the same file (a relative path, a symbolic link) is the same file.
    REQUIRE(::symlink((dir / "same.y4m").c_str(), (dir / "link.y4m").c_str()) == 0);
    auto v = play("'y4msrc path=" + (dir / "same.y4m") + " ! y4msink path=" + (dir / "link.y4m") + "'");
    CHECK(v.exit_code == 2);
    CHECK(size_of(dir / "same.wav") == wav_size);
    CHECK(size_of(dir / "same.y4m") == y4m_size);
    // Two writers of one file.
    auto two = play("'tone ! tee name=t t. ! wavsink path=" + (dir / "o.wav") + " t. ! wavsink path=" + (dir / "o.wav") + "'");
    CHECK(two.exit_code == 2);
    CHECK(two.output.find("would both write") != std::string::npos);
}

// 13. A recording past 4 GiB got a silently capped header; now it becomes RF64, which ffprobe
// and sox read with the right length.
TEST_CASE("Hostile.Files.WavPast4GiBBecomesRf64" * doctest::timeout(600)) {
    TempDir dir;
    const std::string wav = dir / "big.wav";
    // 64 channels of f32 at 192 kHz: 49 152 000 bytes a second, 4.4 GB in 90 s of media.
    auto r = play("--duration 90 'tone rate=192000 channels=64 format=f32 frames=8192 ! wavsink path=" + wav + "'");
    REQUIRE(r.exit_code == 0);
    const std::uintmax_t bytes = size_of(wav);
    CHECK(bytes > (std::uintmax_t(1) << 32));
    std::ifstream in(wav, std::ios::binary);
    char magic[4] = {};
    in.read(magic, 4);
    CHECK(std::string(magic, 4) == "RF64");
    CHECK(std::stod(test::probe(wav, "a:0", "duration")) == doctest::Approx(90.0).epsilon(1e-6));
    // sox warns "wave header missing extended part of fmt chunk" on every EXTENSIBLE float file,
    // ffmpeg's own included (64 channels are EXTENSIBLE), and still reads it: the number only.
    auto sox = run("{ soxi -D " + quote(wav) + " 2>/dev/null; }");
    CHECK(sox.exit_code == 0);
    CHECK(std::stod(sox.output) == doctest::Approx(90.0).epsilon(1e-6));
    // And it reads back: wavsrc takes RF64.
    auto back = play("--duration 1 'wavsrc path=" + wav + " ! nullsink'");
    CHECK(back.exit_code == 0);
    std::remove(wav.c_str());
}

// 14. mix dropped audio when its inputs' buffers differed in size (0.53 s instead of 2.13 s).
TEST_CASE("Hostile.Mix.UnequalBufferSizesMixedByTime" * doctest::timeout(60)) {
    TempDir dir;
    const std::string wav = dir / "mix.wav";
    auto r = play("--duration 2.13 'tone frames=1024 freq=440 ! m. tone frames=256 freq=1000 ! m. mix name=m ! wavsink path=" +
                  wav + "'");
    REQUIRE(r.exit_code == 0);
    CHECK(std::stod(test::probe(wav, "a:0", "duration")) == doctest::Approx(2.13).epsilon(1e-4));
    const auto samples = test::decode_mono(wav);
    CHECK(test::dominant_frequency(samples, 48000, 300, 600) == doctest::Approx(440).epsilon(0.01));
    CHECK(test::dominant_frequency(samples, 48000, 800, 1200) == doctest::Approx(1000).epsilon(0.01));
}

// 15. --duration was ignored by the network sources; with no sender they never ended.
TEST_CASE("Hostile.Duration.NetworkSourcesEndWithoutPackets" * doctest::timeout(60)) {
    TempDir dir;
    for (const std::string src : {"rtpsrc port=47211", "rtpvrawsrc port=47212"}) {
        CAPTURE(src);
        const auto t0 = std::chrono::steady_clock::now();
        auto r = play("--duration 1 '" + src + " ! nullsink'");
        CHECK(r.exit_code == 0);
        CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    }
    // timeout= counts from the start when nothing ever arrives.
    auto t = play("'rtpsrc port=47213 timeout=300 ! nullsink'");
    CHECK(t.exit_code == 0);
}

// 15. With a sender, --duration 1 records one second, not four.
TEST_CASE("Hostile.Duration.RtpsrcRecordsOnlyTheDuration" * doctest::timeout(60)) {
    TempDir dir;
    const std::string wav = dir / "rx.wav";
    // The sender runs first and outlasts the receiver, so however slowly a loaded machine
    // starts either process, the receiver has packets for the whole of its one second.
    const pid_t tx = spawn(kPlayer + " -q --duration 30 'tone ! rtpsink host=127.0.0.1 port=47214'");
    std::this_thread::sleep_for(300ms);
    auto rx = play("--duration 1 " + quote("rtpsrc port=47214 ! wavsink path=" + wav));
    CHECK(rx.exit_code == 0);
    ::kill(tx, SIGINT);
    CHECK(wait_exit(tx) == 130);  // 128 + SIGINT, as a shell reports a Ctrl-C'd command
    const double duration = std::stod(test::probe(wav, "a:0", "duration"));
    CHECK(duration > 0.8);
    CHECK(duration <= 1.05);
}

// 23. SIGHUP (a terminal closed) left the header a second behind; two signals within a
// millisecond took the no-mercy exit.
TEST_CASE("Hostile.Signals.HangupAndDoubleSignalFinishTheFile" * doctest::timeout(60)) {
    TempDir dir;
    struct Case {
        std::vector<int> signals;
        std::vector<int> codes;  // either: two signals pending at once are delivered lowest number first
    };
    for (const Case& c : {Case{{SIGHUP}, {129}}, Case{{SIGQUIT}, {131}}, Case{{SIGINT, SIGINT}, {130}},
                          Case{{SIGTERM, SIGINT}, {143, 130}}}) {
        CAPTURE(c.signals.front());
        const std::string wav = dir / ("s" + std::to_string(c.signals.front()) + "-" + std::to_string(c.signals.size()) + ".wav");
        const pid_t child = spawn(kPlayer + " -q --realtime " + quote("tone ! wavsink path=" + wav));
        // Until 1.5 s are on disk (a sanitizer build on a loaded machine starts slowly: a fixed
        // sleep once caught only 1.26 s), then the signals.
        const auto deadline = std::chrono::steady_clock::now() + 30s;
        auto written = [&] {
            std::error_code ec;
            const auto size = std::filesystem::file_size(wav, ec);
            return ec ? std::uintmax_t(0) : size;
        };
        while (std::chrono::steady_clock::now() < deadline && written() < 44 + 3 * 48000 * 4 / 2)
            std::this_thread::sleep_for(10ms);
        for (int sig : c.signals) ::kill(child, sig);  // back to back: well under a millisecond apart
        const int code = wait_exit(child);
        CAPTURE(code);
        CHECK(std::find(c.codes.begin(), c.codes.end(), code) != c.codes.end());
        check_wav_consistent(wav, 1.3);  // 1.5 s played, all of it in the header
    }
}

// 23. The lesser ones: control characters echoed raw, loose numbers accepted, the wrong node
// blamed, blank pipelines treated unlike each other.
TEST_CASE("Hostile.Input.StrictNumbersPrintableErrorsBlankPipelines") {
    auto control = play("'tone\x01 ! nullsink'");
    CHECK(control.exit_code == 2);
    CHECK(control.output.find("\\x01") != std::string::npos);
    CHECK(control.output.find('\x01') == std::string::npos);
    for (const std::string value : {"0x10", "\" 5\"", "\"5 \"", "+5", "1e999", "nan", "inf"}) {
        CAPTURE(value);
        auto r = play("--num-buffers 1 'tone ! gain db=" + value + " ! nullsink'");
        CHECK(r.exit_code == 2);
        CHECK(r.output.find("is not a number") != std::string::npos);
    }
    CHECK(play("--num-buffers 1 'tone ! gain db=-6.5 ! nullsink'").exit_code == 0);
    std::string mix = "mix name=m ! nullsink tone num-buffers=1 ! tee name=t";
    for (int i = 0; i < 33; ++i) mix += " t. ! m.";
    auto full = play("'" + mix + "'");
    CHECK(full.exit_code == 2);
    CHECK(full.output.find("m has no free input (it takes at most 32)") != std::string::npos);
    for (const char* blank : {"''", "'   '"}) {
        CAPTURE(blank);
        auto r = play(blank);
        CHECK(r.exit_code == 2);
        CHECK(r.output.find("empty pipeline") != std::string::npos);
    }
}

// 4, without root: a pool bigger than the address space the process may have (ulimit -v,
// RLIMIT_AS) is refused at commit with one line, while a small graph under the same limit runs.
// Not under the sanitizers, whose runtimes reserve terabytes of address space themselves.
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
TEST_CASE("Hostile.Memory.AddressSpaceLimitRefused" * doctest::timeout(60)) {
    auto big = run("sh -c " + quote("ulimit -v 1000000; exec " + kPlayer +
                                    " -q --num-buffers 1 'videotest width=8192 height=8192 format=rgba ! nullsink'") + " 2>&1");
    CHECK(big.exit_code == 2);
    CHECK(big.output == "sluice-play: pool of videotest0.src: out of memory\n");
    auto small = run("sh -c " + quote("ulimit -v 1000000; exec " + kPlayer + " -q --num-buffers 10 'tone ! nullsink'") + " 2>&1");
    CHECK(small.exit_code == 0);
}
#endif

// 4. A pool bigger than the memory cgroup allows got the process OOM-killed; commit() refuses it.
TEST_CASE("Hostile.Memory.CgroupLimitRefusedNotKilled" * doctest::timeout(120)) {
    // The memory cgroup this process is in (v1 here, v2 elsewhere), and a child of it.
    std::string base;
    if (std::ifstream in("/proc/self/cgroup"); in)
        for (std::string line; std::getline(in, line);) {
            if (line.find(":memory:") != std::string::npos) base = "/sys/fs/cgroup/memory" + line.substr(line.rfind(':') + 1);
            else if (line.rfind("0::", 0) == 0 && base.empty()) base = "/sys/fs/cgroup" + line.substr(3);
        }
    const std::string cg = base + "/sluice-test-" + std::to_string(::getpid());
    const bool v1 = base.find("/memory") != std::string::npos;
    if (base.empty() || ::mkdir(cg.c_str(), 0755) != 0) {
        MESSAGE("no writable memory cgroup here (not root?): skipped");
        return;
    }
    {
        std::ofstream limit(cg + (v1 ? "/memory.limit_in_bytes" : "/memory.max"));
        limit << (512u << 20);
    }
    TempDir dir;
    // Five 256 MiB pictures at once (a tee to two renders that keep one each) in 512 MiB.
    {
        std::ofstream script(dir / "run.sh");
        script << "echo $$ > " << cg << "/cgroup.procs && exec " << kPlayer << " -q --num-buffers 2 "
               << quote("videotest width=8192 height=8192 format=rgba ! tee name=t t. ! pngsink path=" + (dir / "a.png") +
                        " t. ! pngsink path=" + (dir / "b.png"))
               << "\n";
    }
    auto r = run("sh " + quote(dir / "run.sh"));
    ::rmdir(cg.c_str());
    INFO(r.output);
    CHECK(r.exit_code == 2);  // refused with a message; 137 was the kernel's kill
    CHECK(r.output.find("out of memory") != std::string::npos);
}

// SPDX-License-Identifier: MIT
#pragma once

// Shared by the node and player tests: temporary folders, running commands, decoding audio with
// ffmpeg (an independent reader), measuring a tone's frequency, and a JACK server of the test's
// own.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <numbers>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>  // check_refused()

namespace test {

// Waits (bounded) until `pred` holds; returns whether it did.
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto until = std::chrono::steady_clock::now() + limit;
    while (!pred()) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return true;
}

// A fresh folder under /tmp, removed with everything in it when this goes out of scope.
class TempDir {
public:
    TempDir() {
        char name[] = "/tmp/sluice-test-XXXXXX";
        path_ = ::mkdtemp(name) ? name : "/tmp";
    }
    ~TempDir() {
        std::error_code ec;
        if (path_ != "/tmp") std::filesystem::remove_all(path_, ec);
    }
    std::string operator/(const std::string& file) const { return path_ + "/" + file; }
    const std::string& path() const { return path_; }

private:
    std::string path_;
};

struct CommandResult {
    int exit_code = -1;
    std::string output;  // stdout and stderr together
};

// Runs a shell command, capturing its output and exit status.
inline CommandResult run(const std::string& command) {
    CommandResult r;
    FILE* p = ::popen((command + " 2>&1").c_str(), "r");
    if (!p) return r;
    char buf[4096];
    while (std::size_t n = std::fread(buf, 1, sizeof buf, p)) r.output.append(buf, n);
    const int status = ::pclose(p);
    r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return r;
}

// Whether this process may give a thread SCHED_FIFO `priority` (root, or RLIMIT_RTPRIO at least
// that): tests of real-time priorities skip where it may not. Tried on a thread of its own, which
// then ends.
inline bool may_use_sched_fifo(int priority) {
    sched_param p{};
    p.sched_priority = priority;
    int err = -1;
    std::thread probe([&] { err = ::pthread_setschedparam(::pthread_self(), SCHED_FIFO, &p); });
    probe.join();
    return err == 0;
}

inline std::string quote(const std::string& s) {
    std::string q = "'";
    for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return q + "'";
}

// The file's first audio channel as floats, decoded by ffmpeg.
inline std::vector<float> decode_mono(const std::string& path) {
    std::vector<float> samples;
    FILE* p = ::popen(("ffmpeg -v error -i " + quote(path) + " -map 0:a:0 -af 'pan=mono|c0=c0' -f f32le - 2>/dev/null").c_str(), "r");
    if (!p) return samples;
    float buf[4096];
    while (std::size_t n = std::fread(buf, sizeof(float), 4096, p)) samples.insert(samples.end(), buf, buf + n);
    ::pclose(p);
    return samples;
}

// The strongest frequency between lo and hi Hz (Goertzel scan at 1 Hz, refined by a parabola
// through the peak and its neighbours).
inline double dominant_frequency(const std::vector<float>& x, double rate, double lo = 20, double hi = 4000) {
    auto power = [&](double f) {
        const double w = 2 * std::numbers::pi * f / rate, c = 2 * std::cos(w);
        double s1 = 0, s2 = 0;
        for (float v : x) {
            const double s0 = v + c * s1 - s2;
            s2 = s1;
            s1 = s0;
        }
        return s1 * s1 + s2 * s2 - c * s1 * s2;
    };
    double best = lo, best_p = -1;
    for (double f = lo; f <= hi; f += 1) {
        const double p = power(f);
        if (p > best_p) best_p = p, best = f;
    }
    const double a = power(best - 1), b = best_p, c = power(best + 1);
    const double denom = a - 2 * b + c;
    return denom != 0 ? best + 0.5 * (a - c) / denom : best;
}

// A whole file's bytes ("" when it cannot be read).
inline std::string read_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Waits (bounded) until `path` exists and is not empty: a sender writes its SDP as it starts.
inline bool wait_for_file(const std::string& path, std::chrono::seconds limit = std::chrono::seconds(10)) {
    return eventually([&] {
        std::error_code ec;
        return std::filesystem::file_size(path, ec) > 0 && !ec;
    }, limit);
}

// An even UDP port from `base` up (RTP's, with RTCP on the odd one above), unlikely to collide
// with a parallel test: each test file passes its own base.
inline int random_rtp_port(int base) {
    static std::mt19937 rng(std::random_device{}());
    return base + 2 * int(rng() % 5000);
}

// The start of a script that makes network namespaces `a` and `b` joined by a veth pair (`va` in
// a with 10.<net>.0.1, `vb` in b with 10.<net>.0.2), loopback up in both, and removes them when
// it exits (a script that starts servers in them replaces the trap and calls cleanup itself).
inline std::string two_namespaces(const std::string& a, const std::string& b, const std::string& va,
                                  const std::string& vb, int net) {
    const std::string prefix = "10." + std::to_string(net) + ".0.";
    return "set -e\n"
           "cleanup() { ip netns del " + a + " 2>/dev/null; ip netns del " + b + " 2>/dev/null; true; }\n"
           "trap cleanup EXIT\n"
           "ip netns add " + a + "\nip netns add " + b + "\n"
           "ip link add " + va + " type veth peer name " + vb + "\n"
           "ip link set " + va + " netns " + a + "\nip link set " + vb + " netns " + b + "\n"
           "ip -n " + a + " addr add " + prefix + "1/24 dev " + va + "\nip -n " + a + " link set " + va + " up\n"
           "ip -n " + b + " addr add " + prefix + "2/24 dev " + vb + "\nip -n " + b + " link set " + vb + " up\n"
           "ip -n " + a + " link set lo up\nip -n " + b + " link set lo up\n";
}

// A 320x240, 25 fps H.264 movie of ffmpeg's test pattern, `seconds` long, for the decoder tests:
// the ffmpeg CLI's result (its output says why it failed).
inline CommandResult make_h264_movie(const std::string& path, int seconds) {
    return run("ffmpeg -v error -y -f lavfi -i testsrc=size=320x240:rate=25:duration=" + std::to_string(seconds) +
               " -c:v libx264 -pix_fmt yuv420p -preset veryfast " + quote(path) + " 2>&1");
}

// ffprobe's answer for one stream entry, e.g. probe(file, "a:0", "codec_name").
inline std::string probe(const std::string& path, const std::string& stream, const std::string& entry) {
    auto r = run("ffprobe -v error -select_streams " + stream + " -count_frames -show_entries stream=" + entry +
                 " -of default=noprint_wrappers=1:nokey=1 " + quote(path));
    std::string s = r.output;
    while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
    return s;
}

// ---- Player tests (tests/demos): sluice-play run as a shell command ----------------------------

// The names the player tests use unqualified: `using namespace test::shell;` in a test file's
// anonymous namespace brings these five and nothing else of this header.
namespace shell {
using test::quote;
using test::read_file;
using test::run;
using test::TempDir;
using test::wait_for_file;
}  // namespace shell

// A shell command run (as run() runs it) on a thread of its own while the test goes on: a sender
// beside the receiver under test. join() waits for it and gives its result; the destructor joins
// too, so a failing REQUIRE in between ends the test rather than meeting a joinable std::thread.
class Background {
public:
    explicit Background(const std::string& command) : thread_([this, command] { result_ = run(command); }) {}
    ~Background() { join(); }
    Background(const Background&) = delete;
    Background& operator=(const Background&) = delete;

    // The command's result. Blocks until the command has ended.
    const CommandResult& join() {
        if (thread_.joinable()) thread_.join();
        return result_;
    }

private:
    CommandResult result_;
    std::thread thread_;  // declared last: it starts once result_ exists
};

// How a command that interrupt_when() interrupted ended.
struct Interrupted {
    bool started = false;  // fork() worked
    bool reaped = false;   // it ended by itself within the give-up time, and waitpid() returned it
    int status = 0;        // its wait status, for WIFEXITED and WEXITSTATUS
    std::chrono::steady_clock::duration took{};  // from the signal to its end
};

// Runs `command` (exec'd by /bin/sh, so the signal reaches the command itself), sends it `sig`
// `after` once `ready()` says so (at once without one) and waits for it to end: a Ctrl-C in the
// middle of a recording. One that has not ended `give_up` after the signal is killed (SIGKILL)
// and reaped, and `reaped` says false: a command that ignores the signal fails the test instead of
// hanging it. `ready` is asked every 10 ms for up to 30 s (then the signal goes all the same): on
// a loaded machine the player may take longer than `after` to start, and a test that counts from
// the output file's appearance measures the recording, not the start-up.
inline Interrupted interrupt_when(const std::string& command, const std::function<bool()>& ready,
                                  std::chrono::milliseconds after, int sig = SIGINT,
                                  std::chrono::milliseconds give_up = std::chrono::seconds(30)) {
    Interrupted r;
    const std::string line = "exec " + command;  // built before fork(): the child only execs
    const pid_t pid = ::fork();
    if (pid < 0) return r;
    if (pid == 0) {
        ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    r.started = true;
    if (ready) {
        const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
        // Not while the command has ended already (WNOWAIT: it stays to be reaped below).
        auto running = [pid] {
            siginfo_t info{};
            if (::waitid(P_PID, id_t(pid), &info, WEXITED | WNOHANG | WNOWAIT) != 0) return errno == EINTR;
            return info.si_pid == 0;
        };
        bool alive = true;
        while (!ready() && std::chrono::steady_clock::now() < until && (alive = running()))
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        if (alive) std::this_thread::sleep_for(after);
    } else {
        std::this_thread::sleep_for(after);
    }
    const auto t0 = std::chrono::steady_clock::now();
    ::kill(pid, sig);
    while (std::chrono::steady_clock::now() - t0 < give_up) {
        const pid_t ended = ::waitpid(pid, &r.status, WNOHANG);
        if (ended == pid) {
            r.reaped = true;
            r.took = std::chrono::steady_clock::now() - t0;
            return r;
        }
        if (ended < 0) return r;  // not our child any more: nothing to wait for
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ::kill(pid, SIGKILL);
    (void)::waitpid(pid, &r.status, 0);
    r.took = std::chrono::steady_clock::now() - t0;
    return r;
}

// A readiness test for interrupt_when: the file at `path` exists (a sink has started).
inline std::function<bool()> file_exists(std::string path) {
    return [path = std::move(path)] { return ::access(path.c_str(), F_OK) == 0; };
}

// A bad-input case for the player: what it is given (arguments or a pipeline) and what its one
// line of error must say.
struct BadInput {
    std::string input, needle;
};

// The player refused its input: exit status 2, and its output says `needle`. Doctest CHECKs, with
// the output as their context: the test goes on after a failure.
inline void check_exit_two_saying(const CommandResult& r, const std::string& needle) {
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find(needle) != std::string::npos);
}

// The player's whole answer to bad input (STYLE.md, "Demos"): check_exit_two_saying(), and the
// output is one line.
inline void check_refused(const CommandResult& r, const std::string& needle) {
    check_exit_two_saying(r, needle);
    INFO(r.output);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

// ---- end of the player tests' section ----------------------------------------------------------

// A JACK server of the test's own: `jackd -n NAME -d dummy`, under a name no other test or user
// shares, so a client finds it through JACK_DEFAULT_SERVER=NAME (env()). ready() says whether it
// accepts clients (polled with jack_lsp). Killed when this goes out of scope, whatever the test
// did, and its files in /dev/shm (a killed server leaves some) removed.
class JackServer {
public:
    // `tag` names the server ("sluice-test-TAG"): one fixed name per test case, so that no two
    // tests running at once share a server, and a server that died without unregistering (its
    // slot in jackd2's shared registry, eight in all, stays taken) is replaced by the next one of
    // its name instead of filling the registry run after run ("Too many servers already active"
    // in CI's third stage, when every server had a name of its own).
    explicit JackServer(const std::string& tag, int rate = 48000, int period = 64) {
        name_ = "sluice-test-" + tag;
        // No audio device reservation over D-Bus (there is no session bus in CI); the dummy
        // driver needs no device, no HOME and no XDG_RUNTIME_DIR (jackd2 keeps its sockets in
        // /dev/shm). Built before fork(): the child only execs.
        const std::string command = "exec env JACK_NO_AUDIO_RESERVATION=1 jackd -n " + name_ + " -d dummy -r " + std::to_string(rate) +
                                    " -p " + std::to_string(period) + " > " + quote(log_dir_ / "jackd.log") + " 2>&1";
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl("/bin/sh", "sh", "-c", command.c_str(), nullptr);
            ::_exit(127);
        }
        ready_ = pid_ > 0 && eventually([&] { return !exited() && run("jack_lsp -s " + quote(name_) + " > /dev/null").exit_code == 0; },
                                         std::chrono::seconds(20));
    }
    ~JackServer() { kill(SIGTERM); }
    JackServer(const JackServer&) = delete;
    JackServer& operator=(const JackServer&) = delete;

    bool ready() const { return ready_; }
    const std::string& name() const { return name_; }
    // The environment a JACK client needs to find this server, as a shell prefix.
    std::string env() const { return "JACK_DEFAULT_SERVER=" + quote(name_) + " "; }
    // What jackd printed (for a failing test's INFO).
    std::string log() const {
        std::ifstream in(log_dir_ / "jackd.log");
        return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    }

    // Freezes the server (SIGSTOP) until resume(): no cycle runs, so no client's process
    // callback is called. A client that deactivates meanwhile waits for the server (jacksink,
    // jacksrc and alsasink leave theirs to a thread after two seconds): resume before it ends.
    void pause() const {
        if (pid_ > 0) ::kill(pid_, SIGSTOP);
    }
    void resume() const {
        if (pid_ > 0) ::kill(pid_, SIGCONT);
    }

    // Ends the server with `sig`, then SIGKILL if it is still there after 5 s; reaps it and
    // removes what it left in /dev/shm. (A SIGKILLed jackd2 also keeps its slot in JACK's shared
    // registry, eight in all, until a server of its name starts again: prefer SIGTERM.)
    void kill(int sig) {
        if (pid_ <= 0) return;
        ::kill(pid_, sig);
        if (sig != SIGKILL) ::kill(pid_, SIGCONT);  // a frozen (paused) server takes it too
        if (!eventually([&] { return exited(); }, std::chrono::seconds(5))) {
            ::kill(pid_, SIGKILL);
            ::waitpid(pid_, nullptr, 0);
        }
        pid_ = -1;
        std::error_code ec;
        for (const auto& entry : std::filesystem::directory_iterator("/dev/shm", ec))
            if (entry.path().filename().string().find("_" + name_ + "_") != std::string::npos) std::filesystem::remove(entry.path(), ec);
    }

private:
    // Whether the server has exited (reaped here).
    bool exited() {
        if (pid_ <= 0) return true;
        if (::waitpid(pid_, nullptr, WNOHANG) != pid_) return false;
        pid_ = -1;
        return true;
    }

    TempDir log_dir_;
    std::string name_;
    pid_t pid_ = -1;
    bool ready_ = false;
};

}  // namespace test

// SPDX-License-Identifier: MIT
// sluice-play: builds a graph from a gst-launch-like pipeline and plays it.
//
// Exit status: 0 the graph reached end of stream (or --duration), 1 a node failed while playing,
// 2 bad input (pipeline, property, link, file), 130/143/129/131 stopped by SIGINT/SIGTERM/SIGHUP/
// SIGQUIT (outputs are complete and valid: the stop goes through the graph's deterministic stop
// path). A file that cannot be finished (a full disk) exits 1.

#include <sluice/sluice.hpp>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include <fcntl.h>  // O_NONBLOCK, O_CLOEXEC
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

using namespace sluice;
using namespace sluice::engine;

constexpr const char* kDefaultPipeline =
    "tone freq=440 amplitude=0.5 ! tee name=audio "
    "audio. ! wavsink path=sluice-demo.wav "
    "audio. ! nullsink "
    "videotest width=640 height=360 fps=30 ! tee name=video "
    "video. ! y4msink path=sluice-demo.y4m "
    "video. ! pngsink path=sluice-demo.png";
constexpr double kDefaultDuration = 5.0;

// The demo's tone also goes to the default sound device when there is one: the nullsink branch
// becomes an alsasink. An empty string when there is none (then why, in `why_not`).
std::string demo_speaker_branch(std::string& why_not) {
    std::unique_ptr<Node> probe;
    if (Status st = nodes::create_node("alsasink", "speaker", {}, probe); !st) {
        why_not = st.message();
        return {};
    }
    return "audio. ! alsasink name=speaker ";
}

// A word of the pipeline syntax that reads back as `text` (double quotes; backslash before a
// double quote or a backslash).
std::string pipeline_quoted(const std::string& text) {
    std::string quoted = "\"";
    for (char c : text) {
        if (c == '"' || c == '\\') quoted += '\\';
        quoted += c;
    }
    return quoted + '"';
}

// `sluice-play FILE` plays a media file as gst-play-1.0 does: its audio on the default ALSA
// device, its video in a window, each at its time (the sound device is the graph's clock). The
// pipeline is the one a user would write; the file is probed first by an avsrc of its own, so
// that only the streams it has are linked (a song gets no window). Returns the pipeline, and
// what plays where in `said`; or an empty string and the one-line error in `error`.
std::string file_player_pipeline(const std::string& path, std::string& said, std::string& error) {
    std::unique_ptr<Node> probe;
    if (Status st = nodes::create_node("avsrc", "file", {{"path", path}}, probe); !st) {
        error = st.message();
        return {};
    }
    bool audio = false, video = false;
    int audio_rate = 0;
    for (std::size_t i = 0; i < probe->output_count(); ++i) {
        const OutputPin& pin = probe->output(i);
        if (pin.name() == "audio" && !pin.offers().empty()) {
            audio = true;
            audio_rate = pin.offers().front().rate;
        }
        video = video || pin.name() == "video";
    }
    std::string text = "avsrc path=" + pipeline_quoted(path) + " name=file ";
    if (audio) {
        std::unique_ptr<Node> speaker;
        if (Status st = nodes::create_node("alsasink", "speaker", {}, speaker); !st) {
            error = path + ": no sound device for its audio (" + st.message() + "); a pipeline plays it elsewhere, e.g. 'avsrc path=" +
                    pipeline_quoted(path) + " ! wavsink path=out.wav'";
            return {};
        }
        // A resampler only where the device cannot take the file's rate (rate 0: the device
        // leaves it open, as alsa-lib's plug does; a card's list of rates is listed).
        const engine::FormatSet& takes = speaker->input(0).accepts();
        const bool takes_rate = std::any_of(takes.begin(), takes.end(), [&](const MediaFormat& f) { return f.rate == 0 || f.rate == audio_rate; });
        // Each branch behind a queue, a thread of its own: the decoder runs ahead of both (up to
        // the video queue's half second) and neither waits for the other's time; without them
        // pictures of a decoder that holds frames back came 120 ms late (720p H.264). Eight
        // periods (about 170 ms, GStreamer's alsasink buffers 200 ms): a FLAC frame alone is
        // 96 ms, and with four periods such a movie underran 18 times in 2 s.
        text += std::string("file.audio ! queue name=audio-queue ! audioconvert ! ") + (takes_rate ? "" : "audioresample ! ") +
                "alsasink name=speaker periods=8 ";
        said = "audio on the ALSA device 'default'";
    }
    if (video) {
        // A converter only where the window cannot show what avsrc gives (it converts to I420
        // itself, but keeps the colour it has: a BT.2020 picture needs one); without one, the
        // decoder's pictures reach the window in the pool buffers it decoded them into.
        std::unique_ptr<Node> window;
        bool shows_it = false;
        if (Status st = nodes::create_node("videosink", "window", {}, window); st)
            for (std::size_t i = 0; i < probe->output_count(); ++i)
                if (probe->output(i).name() == "video")
                    shows_it = !engine::intersect(probe->output(i).offers(), window->input(0).accepts()).empty();
        text += std::string("file.video ! queue name=video-queue max-size-time=0.5 ! ") + (shows_it ? "" : "videoconvert ! ") +
                "videosink name=window title=" + pipeline_quoted(std::filesystem::path(path).filename().string()) + " ";
        said += std::string(said.empty() ? "" : ", ") + "video in a window";
    }
    return text;
}

// Whether the whole pipeline is one word naming a file (not a folder): `sluice-play FILE`.
bool names_a_file(const std::vector<std::string>& words) {
    std::error_code ec;
    // Not only regular files: avsrc refuses a FIFO or a device in one line of its own.
    return words.size() == 1 && std::filesystem::exists(words[0], ec) && !std::filesystem::is_directory(words[0], ec);
}

std::atomic<int> g_signal{0};
std::atomic<std::int64_t> g_first_signal_ns{0};
// The write end of the main loop's wake-up pipe (non-blocking): a signal or a `quit` writes a
// byte so the main thread, asleep in poll(), looks at once. -1 until made.
int g_wake_fd = -1;
int g_wake_pipe_read = -1;  // its read end, which the main loop polls

// Wakes the main loop. Async-signal-safe (write(2) on a non-blocking pipe; a full pipe has
// already woken it).
void wake_main_loop() noexcept {
    const int saved = errno;
    const char byte = 0;
    if (g_wake_fd >= 0 && ::write(g_wake_fd, &byte, 1) < 0) {
        // EAGAIN: the pipe is full of earlier wake-ups, which the main loop has yet to read
    }
    errno = saved;
}

std::int64_t monotonic_ns() noexcept {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);  // async-signal-safe
    return std::int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// SIGINT, SIGTERM, SIGHUP (the terminal closed) and SIGQUIT all stop through the graph's stop
// path, so files are finished. A second signal at least a second after the first means the user
// insists: leave at once. Two arriving together (a terminal that signals the whole process group
// and a script that forwards it) are one request.
extern "C" void on_signal(int sig) {
    // relaxed, all: the main loop polls g_signal; the first-signal time is only read here. The
    // time is claimed first, so a second signal (on another thread, at the same instant) always
    // finds it set and never mistakes "together" for "a second later".
    const std::int64_t now = monotonic_ns();
    std::int64_t first = 0;
    if (g_first_signal_ns.compare_exchange_strong(first, now, std::memory_order_relaxed)) {
        g_signal.store(sig, std::memory_order_relaxed);
        wake_main_loop();
        return;
    }
    if (now - first >= 1'000'000'000) ::_exit(128 + sig);
}

// Why an output of the player (--stats-json, --dot) cannot go to `path`, or "": a FIFO or socket
// (opening it could block, and it is no file to finish), or a file a node of `graph` reads or
// writes (opening it truncates it).
std::string output_path_problem(const std::string& path, Graph& graph) {
    struct stat st {};
    const bool exists = ::stat(path.c_str(), &st) == 0;
    if (exists && (S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode))) return "is a FIFO or socket; this output goes to a regular file";
    std::error_code ec;
    const auto canonical = std::filesystem::weakly_canonical(path, ec);
    for (Node* n : graph.nodes())
        for (const Node::FileUse& use : n->file_uses()) {
            struct stat other {};
            // The same inode, or, for a file not made yet (a sink's), the same path.
            const bool same = exists ? ::stat(use.path.c_str(), &other) == 0 && other.st_dev == st.st_dev && other.st_ino == st.st_ino
                                     : !ec && std::filesystem::weakly_canonical(use.path, ec) == canonical && !ec;
            if (same) return "is the file " + n->name() + (use.writes ? " writes" : " reads") + " (" + use.path + ")";
        }
    return {};
}

// Messages the libraries hand to the log handler (a graph destroyed with samples still held).
// --verbose: the libraries' debug lines too (FFmpeg's own log among them).
bool g_verbose = false;

void print_log(LogLevel level, std::string_view message) {
    if (level == LogLevel::debug && !g_verbose) return;
    std::fprintf(stderr, "sluice-play: %s: %.*s\n", to_string(level), int(message.size()), message.data());
}

// Every node type by kind (sources, transforms, renders), with its properties and where it
// comes from when that is not Sluice itself (a plugin's file, the app).
void list_nodes() {
    const auto specs = nodes::node_specs();
    for (const Node::Kind kind : {Node::Kind::source, Node::Kind::transform, Node::Kind::render}) {
        for (const auto& spec : specs) {
            if (spec.kind != kind) continue;
            const char* kind_name = kind == Node::Kind::source ? "source" : kind == Node::Kind::render ? "render" : "transform";
            std::printf("%-13s %-9s %s", spec.type.c_str(), kind_name, spec.help.c_str());
            if (spec.origin != "built-in") std::printf(" [from %s]", spec.origin.c_str());
            std::printf("\n");
            for (const auto& p : spec.properties)
                std::printf("    %-12s default %-12s %s%s\n", p.name.c_str(),
                            p.default_value.empty() ? "(none)" : p.default_value.c_str(), p.help.c_str(),
                            p.live ? " [live]" : "");
        }
    }
}

// --control: commands read from standard input while the graph plays, one per line:
//   set NODE KEY=VALUE...   change live properties (Graph::set_property)
//   get NODE KEY            print NODE KEY=VALUE
//   pause | play            Graph::pause / run
//   seek SECONDS            Graph::seek
//   quit                    stop, as at end of stream (exit 0)
// Answers go to standard output, refusals to standard error ("sluice-play: control: ..."), and
// playing goes on either way. The reader polls standard input, so the player never waits on a
// blocked read when it ends; when standard input closes, playing goes on without control.
class ControlReader {
public:
    ControlReader(Graph& graph, std::mutex& print_mutex) : graph_(graph), print_mutex_(print_mutex) {
        thread_ = std::thread([this] { loop(); });
        ::pthread_setname_np(thread_.native_handle(), "sluice-control");  // for top -H, gdb and the tests
    }
    ~ControlReader() {
        // The reader sleeps in poll() on standard input and this eventfd: no timeout to wake it
        // (it used to look every 100 ms, each a wake-up beside a device's real-time thread).
        // Without the eventfd it polls as before.
        done_.store(true, std::memory_order_relaxed);  // relaxed: read by loop() after the wake; the join orders the rest
        if (stop_fd_ >= 0) {
            const std::uint64_t one = 1;
            if (::write(stop_fd_, &one, sizeof one) < 0) {
                // an eventfd write fails only at a count of 2^64 - 1: the reader is awake then
            }
        }
        thread_.join();
        if (stop_fd_ >= 0) ::close(stop_fd_);
    }
    // A `quit` was read. Any thread.
    bool quit() const noexcept { return quit_.load(std::memory_order_relaxed); }  // relaxed: a flag polled by main

private:
    void loop() {
        std::string pending;
        char buffer[4096];
        // relaxed: a flag; see ~ControlReader.
        while (!done_.load(std::memory_order_relaxed)) {
            pollfd fds[2] = {{STDIN_FILENO, POLLIN, 0}, {stop_fd_, POLLIN, 0}};  // a negative fd is ignored
            const int ready = ::poll(fds, 2, stop_fd_ >= 0 ? -1 : 100);
            if (ready < 0 && errno == EINTR) continue;
            if (ready <= 0) {
                if (ready < 0) return;
                continue;
            }
            if (fds[1].revents != 0) return;  // the destructor's wake-up
            const ssize_t n = ::read(STDIN_FILENO, buffer, sizeof buffer);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return;  // closed: play on without control
            pending.append(buffer, std::size_t(n));
            for (std::size_t end; (end = pending.find('\n')) != std::string::npos;) {
                const std::string line = pending.substr(0, end);
                pending.erase(0, end + 1);
                run(line);
            }
        }
    }

    void answer(const std::string& text) {
        std::lock_guard lock(print_mutex_);
        std::printf("%s\n", text.c_str());
        std::fflush(stdout);
    }
    void refuse(const std::string& text) {
        std::lock_guard lock(print_mutex_);
        std::fprintf(stderr, "sluice-play: control: %s\n", text.c_str());
    }

    void run(const std::string& line) {
        std::vector<std::string> words;
        for (std::size_t at = 0; at < line.size();) {
            const std::size_t start = line.find_first_not_of(" \t\r", at);
            if (start == std::string::npos) break;
            const std::size_t end = std::min(line.find_first_of(" \t\r", start), line.size());
            words.push_back(line.substr(start, end - start));
            at = end;
        }
        if (words.empty() || words[0].starts_with("#")) return;
        const std::string& verb = words[0];
        if (verb == "set" && words.size() >= 3) {
            for (std::size_t i = 2; i < words.size(); ++i) {
                const std::size_t eq = words[i].find('=');
                if (eq == std::string::npos || eq == 0) {
                    refuse("'" + words[i] + "' is not KEY=VALUE");
                    continue;
                }
                const std::string key = words[i].substr(0, eq), value = words[i].substr(eq + 1);
                if (Status st = graph_.set_property(words[1], key, value); !st) refuse(st.message());
                else answer(words[1] + " " + key + "=" + value);
            }
        } else if (verb == "get" && words.size() == 3) {
            std::string value;
            if (Status st = graph_.property(words[1], words[2], value); !st) refuse(st.message());
            else answer(words[1] + " " + words[2] + "=" + value);
        } else if (verb == "pause" && words.size() == 1) {
            if (Status st = graph_.pause(); !st) refuse(st.message());
            else answer("paused");
        } else if (verb == "play" && words.size() == 1) {
            if (Status st = graph_.run(); !st) refuse(st.message());
            else answer("playing");
        } else if (verb == "seek" && words.size() == 2) {
            char* end = nullptr;
            const double at = std::strtod(words[1].c_str(), &end);
            if (end == words[1].c_str() || *end != '\0' || !(at >= 0 && at < 1e7)) refuse("seek wants seconds, not '" + words[1] + "'");
            else if (Status st = graph_.seek(std::int64_t(at * 1e9)); !st) refuse(st.message());
            else answer("at " + words[1] + " s");
        } else if (verb == "quit" && words.size() == 1) {
            quit_.store(true, std::memory_order_relaxed);  // relaxed: see quit()
            wake_main_loop();
        } else {
            refuse("unknown command '" + line + "' (set NODE KEY=VALUE..., get NODE KEY, pause, play, seek SECONDS, quit)");
        }
    }

    Graph& graph_;
    std::mutex& print_mutex_;
    std::atomic<bool> done_{false}, quit_{false};
    const int stop_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);  // -1: poll standard input every 100 ms
    std::thread thread_;  // declared last: it starts once the above exist
};

double seconds(std::int64_t ns) { return ns == kNoTime ? 0.0 : double(ns) / 1e9; }

// Media time reached: the furthest stop time any render has received.
std::int64_t media_position(const GraphStats& stats) {
    std::int64_t pos = 0;
    for (const NodeReport& n : stats.nodes)
        if (n.kind == Node::Kind::render && n.stats.position_ns != kNoTime) pos = std::max(pos, n.stats.position_ns);
    return pos;
}

std::string progress_line(const GraphStats& s, double elapsed, std::uint64_t& last_samples, double& last_elapsed) {
    std::uint64_t samples = 0, late = 0;
    for (const NodeReport& n : s.nodes)
        if (n.kind == Node::Kind::render) {
            samples += n.stats.samples_in;
            late += n.stats.late;
        }
    std::size_t out = 0, total = 0;
    for (const auto& p : s.pools) {
        out += p.stats.outstanding;
        total += p.properties.buffers;
    }
    const double rate = elapsed > last_elapsed ? double(samples - last_samples) / (elapsed - last_elapsed) : 0.0;
    last_samples = samples;
    last_elapsed = elapsed;
    char line[200];
    std::snprintf(line, sizeof line, "\r\033[K%8.2f s media | %9.0f samples/s | pools %zu/%zu in use | late %llu",
                  seconds(media_position(s)), rate, out, total, static_cast<unsigned long long>(late));
    return line;
}

// The --stats-json document: what ran (the pipeline, the library's version), how it ended, and
// every node (its type, counters, own counters, lateness histogram, outgoing links with their
// formats), every link, every pool.
nlohmann::json stats_json(const Graph& graph, const GraphStats& s, const std::string& pipeline,
                          const std::string& ended_by, int exit_code) {
    nlohmann::json j;
    j["sluice_version"] = sluice::version();
    j["pipeline"] = pipeline;
    j["ended_by"] = ended_by;
    j["exit_code"] = exit_code;
    j["last_stop_ms"] = std::chrono::duration<double, std::milli>(s.last_stop).count();
    j["clock"] = s.clock;
    j["clock_drift_ppm"] = s.clock_drift_ppm;
    if (s.ptp)
        j["ptp"] = {{"port_state", s.ptp->port_state},
                    {"grandmaster", s.ptp->grandmaster},
                    {"grandmaster_here", s.ptp->grandmaster_here},
                    {"holdover", s.ptp->holdover},
                    {"offset_ns", s.ptp->offset_ns},
                    {"answers", s.ptp->answers},
                    {"silences", s.ptp->silences}};
    j["links"] = nlohmann::json::array();
    for (const NodeReport& n : s.nodes) {
        auto& node = j["nodes"][n.name];
        node = {{"type", n.type},
                {"samples_in", n.stats.samples_in},
                {"samples_out", n.stats.samples_out},
                {"drops", n.stats.drops},
                {"late", n.stats.late},
                {"deadline_misses", n.stats.deadline_misses},
                {"max_lateness_ms", double(n.stats.max_lateness_ns) / 1e6},
                {"lateness_p999_ms", double(n.stats.lateness_p999_ns) / 1e6},
                {"position_s", seconds(n.stats.position_ns)}};
        for (const auto& [key, value] : n.extras) node[key] = value;
        for (const LinkReport& l : n.links) {
            node["links"].push_back({{"from", l.from}, {"to", l.to}, {"format", l.format.to_string()}});
            j["links"].push_back({{"from", l.from}, {"to", l.to}, {"format", l.format.to_string()}});
        }
    }
    for (const Node* n : graph.nodes())
        if (n->clocked())
            for (const auto& [upper, count] : n->lateness().buckets())
                j["nodes"][n->name()]["lateness_histogram_ns"].push_back({upper, count});
    for (const auto& p : s.pools)
        j["pools"][p.pin] = {{"buffers", p.properties.buffers},   {"buffer_bytes", p.properties.buffer_bytes},
                             {"alignment", p.properties.alignment}, {"needed", p.needed},
                             {"gets", p.stats.gets},               {"waits", p.stats.waits},
                             {"outstanding", p.stats.outstanding}, {"numa_node", p.stats.numa_node}};
    return j;
}

}  // namespace

int main(int argc, char** argv) {
    set_log_handler(print_log);
    std::vector<std::string> words;
    bool list = false, quiet = false, realtime = false, no_realtime = false, control = false;
    double duration = -1;
    std::int64_t num_buffers = -1;
    std::string stats_path, dot_path;
    std::vector<std::string> plugins;
    int rt_priority = 0;
    std::string clock_source = "system";
    engine::PtpOptions ptp;
    double ptp_wait = 10;

    CLI::App app{"sluice-play: play a Sluice graph written as a pipeline, e.g.\n"
                 "  sluice-play 'tone freq=440 ! gain db=-6 ! wavsink path=a.wav'\n"
                 "  sluice-play 'videotest ! tee name=t  t. ! y4msink path=a.y4m  t. ! pngsink path=a.png'\n"
                 "Words: a node type, key=value properties of the node before, '!' to link, 'name.' to refer\n"
                 "to a named node (each link to a tee adds a branch, to a mix an input).\n"
                 "A media file alone plays it: its audio on the default ALSA device, its video in a window\n"
                 "  sluice-play movie.mp4\n"
                 "With no pipeline it plays a demo graph (a tone and a test picture, 5 s) into files here,\n"
                 "and the tone on the default ALSA device when there is one.\n"
                 "Exit status: 0 end of stream, 1 a node failed, 2 bad input, 130/143/129/131 SIGINT/SIGTERM/SIGHUP/SIGQUIT."};
    app.add_option("pipeline", words, "The pipeline (one quoted argument or several words)");
    app.add_flag("--list", list, "List every node with its properties and defaults");
    app.add_option("--plugin", plugins, "Load node types from this plugin (repeatable; also every *.so in the folders "
                                        "of SLUICE_PLUGIN_PATH)");
    app.add_option("--duration", duration, "Seconds of media to play (sources end their streams there)")
        ->check(CLI::Range(0.0, 1e7));
    app.add_option("--num-buffers", num_buffers, "Samples each source produces unless it sets num-buffers")
        ->check(CLI::Range(std::int64_t(0), INT64_MAX));
    app.add_flag("--realtime", realtime, "Present every sample at its time on the clock (renders wait)");
    app.add_flag("--no-realtime", no_realtime, "As fast as possible (the default)");
    app.add_option("--rt-priority", rt_priority,
                   "Run the streaming threads (sources', queues') at this SCHED_FIFO priority (1-99), with all memory locked (mlockall)")
        ->check(CLI::Range(1, 99));
    app.add_option("--clock", clock_source,
                   "What the graph's clock follows: system (a device render's clock where there is one), or ptp "
                   "(PTP time as linuxptp's ptp4l keeps it; AES67 senders stamp RTP time by it)")
        ->check(CLI::IsMember({"system", "ptp"}));
    app.add_option("--ptp-socket", ptp.socket, "With --clock ptp: ptp4l's management socket (its uds_address)")
        ->capture_default_str();
    app.add_option("--ptp-domain", ptp.domain, "With --clock ptp: ptp4l's domainNumber")->check(CLI::Range(0, 255));
    app.add_option("--ptp-wait", ptp_wait, "With --clock ptp: seconds to wait for ptp4l to follow a grandmaster")
        ->capture_default_str()
        ->check(CLI::Range(0.0, 3600.0));
    app.add_option("--stats-json", stats_path, "Write final per-node and per-pool statistics to this file");
    app.add_option("--dot", dot_path, "Write the graph, once prepared (formats, pools), in Graphviz's DOT language to this file");
    app.add_flag("--control", control, "Read commands from standard input while playing: set NODE KEY=VALUE (live "
                                       "properties), get NODE KEY, pause, play, seek SECONDS, quit");
    app.add_flag("-q,--quiet", quiet, "No progress line");
    app.add_flag("-v,--verbose", g_verbose, "Print the libraries' debug lines too (FFmpeg's log among them)");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::fprintf(stderr, "sluice-play: %s\n", e.what());
        return 2;
    }
    // Plugins first: their types may be listed and used like ours.
    if (const char* folders = std::getenv("SLUICE_PLUGIN_PATH"); folders != nullptr)
        if (Status st = nodes::load_plugins_from(folders); !st) {
            std::fprintf(stderr, "sluice-play: SLUICE_PLUGIN_PATH: %s\n", st.message().c_str());
            return 2;
        }
    for (const auto& p : plugins)
        if (Status st = nodes::load_plugin(p); !st) {
            std::fprintf(stderr, "sluice-play: %s\n", st.message().c_str());
            return 2;
        }
    if (list) {
        list_nodes();
        return 0;
    }
    if (realtime && no_realtime) {
        std::fprintf(stderr, "sluice-play: --realtime and --no-realtime contradict each other\n");
        return 2;
    }
    std::string text;
    for (const auto& w : words) text += (text.empty() ? "" : " ") + w;
    // No pipeline at all plays the demo; one that was given but is blank ('' or '   ') is refused.
    const bool demo = words.empty();
    if (!demo && text.find_first_not_of(" \t\n\r\f\v") == std::string::npos) {
        std::fprintf(stderr, "sluice-play: empty pipeline (give none at all to play the demo graph)\n");
        return 2;
    }
    std::string speaker_missing;
    if (names_a_file(words)) {
        std::string said, error;
        text = file_player_pipeline(words[0], said, error);
        if (text.empty()) {
            std::fprintf(stderr, "sluice-play: %s\n", error.c_str());
            return 2;
        }
        realtime = !no_realtime;  // played to be heard and seen
        if (!quiet) std::printf("sluice-play: playing %s: %s\n", words[0].c_str(), said.c_str());
        if (g_verbose) std::printf("sluice-play: the pipeline: %s\n", text.c_str());
    } else if (demo) {
        text = kDefaultPipeline;
        if (const std::string speaker = demo_speaker_branch(speaker_missing); !speaker.empty()) {
            const std::size_t at = text.find("audio. ! nullsink ");
            text.replace(at, std::strlen("audio. ! nullsink "), speaker);
        }
        if (!quiet && speaker_missing.empty())
            std::printf("sluice-play: the demo's tone plays on the ALSA device 'default' and goes to files\n");
        else if (!quiet)
            std::printf("sluice-play: no sound device (%s); the demo goes to files\n", speaker_missing.c_str());
        if (duration < 0 && num_buffers < 0) duration = kDefaultDuration;
    }

    // Declared before the graph: its ticker may run until the graph is destroyed.
    std::mutex print_mutex;
    std::uint64_t last_samples = 0;
    double last_elapsed = 0;
    const auto t0 = std::chrono::steady_clock::now();
    Graph graph;
    if (Status st = nodes::build_pipeline(graph, text, {.num_buffers = num_buffers}); !st) {
        // One word that fails as a pipeline was perhaps meant as a file to play.
        if (words.size() == 1 && !demo && !names_a_file(words) && words[0].find_first_of("./") != std::string::npos &&
            words[0].find_first_of(" =!") == std::string::npos)
            std::fprintf(stderr, "sluice-play: no file '%s' to play, and as a pipeline: %s\n", words[0].c_str(), st.message().c_str());
        else
            std::fprintf(stderr, "sluice-play: %s%s\n", st.message().c_str(),
                         st.message().starts_with("unknown node") ? " (sluice-play --list shows every node)" : "");
        return 2;
    }
    // The statistics file is opened now, once the graph is known and before anything plays: a
    // path that cannot be written, or that a node reads or writes, is bad input.
    std::ofstream stats_file;
    if (!stats_path.empty()) {
        if (std::string why = output_path_problem(stats_path, graph); !why.empty()) {
            std::fprintf(stderr, "sluice-play: --stats-json %s: %s\n", stats_path.c_str(), why.c_str());
            return 2;
        }
        stats_file.open(stats_path);
        if (!stats_file) {
            std::fprintf(stderr, "sluice-play: %s: cannot write the statistics: %s\n", stats_path.c_str(),
                         std::strerror(errno));
            return 2;
        }
    }
    // The graph as prepared (formats and pools fixed): a FIFO, or a file the graph uses, is bad
    // input as for --stats-json.
    if (!dot_path.empty()) {
        if (std::string why = output_path_problem(dot_path, graph); !why.empty()) {
            std::fprintf(stderr, "sluice-play: --dot %s: %s\n", dot_path.c_str(), why.c_str());
            return 2;
        }
        std::ofstream dot(dot_path);
        dot << graph.to_dot();
        dot.close();
        if (!dot) {
            std::fprintf(stderr, "sluice-play: %s: cannot write the graph: %s\n", dot_path.c_str(), std::strerror(errno));
            return 2;
        }
    }
    ptp.wait = std::chrono::milliseconds(std::int64_t(ptp_wait * 1000));
    if (clock_source == "ptp")
        if (Status st = graph.follow_ptp(ptp); !st) {
            std::fprintf(stderr, "sluice-play: %s\n", st.message().c_str());
            return 2;
        }
    if (duration >= 0) graph.set_media_duration(std::int64_t(duration * 1e9));
    for (Node* n : graph.nodes()) {
        if (n->kind() == Node::Kind::render) n->set_clocked(realtime);
        if (n->owns_streaming_thread() && rt_priority > 0) n->set_thread_options({.priority = rt_priority, .cpu = -1});
    }

    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigfillset(&sa.sa_mask);  // one handler at a time on a thread
    if (int fds[2]; ::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0) {
        g_wake_pipe_read = fds[0];
        g_wake_fd = fds[1];
    }  // else the main loop looks every 50 ms instead
    for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) ::sigaction(sig, &sa, nullptr);

    const bool show_progress = !quiet && ::isatty(STDERR_FILENO);
    if (show_progress)
        graph.set_ticker(std::chrono::milliseconds(250), [&] {
            const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            const std::string line = progress_line(graph.stats(), elapsed, last_samples, last_elapsed);
            std::lock_guard lock(print_mutex);
            std::fputs(line.c_str(), stderr);
        });

    // Real time as JACK, PipeWire and cyclictest mean it: every page this process has and will
    // have stays in memory (pools, stacks of the threads run() starts), so no page fault (a disk
    // read, at worst) lands in a streaming thread. A refusal (ulimit -l) is a warning: it plays on.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // Not under a sanitizer: its shadow memory spans terabytes, which mlockall would try to fault in.
    if (rt_priority > 0) {
        std::lock_guard lock(print_mutex);
        std::fprintf(stderr, "sluice-play: warning: not locking memory in a sanitizer build (its shadow memory spans terabytes)\n");
    }
#else
    if (rt_priority > 0 && ::mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        std::lock_guard lock(print_mutex);
        std::fprintf(stderr, "sluice-play: warning: cannot lock memory (mlockall: %s; see ulimit -l): pages may fault in the streaming threads\n",
                     std::strerror(errno));
    }
#endif
    if (Status st = graph.run(); !st) {
        std::fprintf(stderr, "sluice-play: %s\n", st.message().c_str());
        return 2;
    }

    std::string ended_by = "end-of-stream";
    int code = 0;
    std::optional<ControlReader> controller;
    if (control) controller.emplace(graph, print_mutex);
    // The main thread sleeps until there is something to do: an event (the graph's eventfd), a
    // signal or a `quit` (the wake-up pipe). It used to look every 50 ms; each of those wake-ups
    // is a vCPU or a core leaving its idle state beside a device's real-time thread. Once a
    // second all the same: an end of stream whose event found no memory is seen by ended() alone.
    const int events_fd = graph.event_fd();
    const bool wake_pipe = g_wake_fd >= 0;
    for (bool first = true;; first = false) {
        if (!first) {
            pollfd fds[2] = {{events_fd, POLLIN, 0}, {wake_pipe ? g_wake_pipe_read : -1, POLLIN, 0}};
            const int timeout_ms = events_fd >= 0 && wake_pipe ? 1000 : 50;
            if (::poll(fds, 2, timeout_ms) > 0) {
                // Reset both (the eventfd is non-blocking: a lost race reads EAGAIN, harmlessly).
                std::uint64_t count;
                char bytes[64];
                if ((fds[0].revents & POLLIN) && ::read(events_fd, &count, sizeof count) < 0) {
                    // EAGAIN: another reader took it; the events themselves are polled below
                }
                if ((fds[1].revents & POLLIN) && ::read(g_wake_pipe_read, bytes, sizeof bytes) < 0) {
                    // EAGAIN: nothing left
                }
            }
        }
        if (graph.ended()) break;
        if (controller && controller->quit()) {
            ended_by = "quit";
            break;
        }
        bool failed = false;
        while (auto e = graph.poll_event()) {
            if (e->type == Event::Type::error) {
                std::lock_guard lock(print_mutex);
                std::fprintf(stderr, "%ssluice-play: error: %s\n", show_progress ? "\r\033[K" : "", e->message.c_str());
                failed = true;
            } else if (e->type == Event::Type::warning) {
                std::lock_guard lock(print_mutex);
                std::fprintf(stderr, "%ssluice-play: warning: %s%s%s\n", show_progress ? "\r\033[K" : "", e->node.c_str(),
                             e->node.empty() ? "" : ": ", e->message.c_str());
            }
        }
        if (failed) {
            ended_by = "error";
            code = 1;
            break;
        }
        if (int sig = g_signal.load(std::memory_order_relaxed)) {  // relaxed: a flag polled by this loop only
            ended_by = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : sig == SIGHUP ? "SIGHUP" : "SIGQUIT";
            code = 128 + sig;
            break;
        }
    }
    controller.reset();  // no command runs while the graph stops
    graph.set_ticker(std::chrono::milliseconds(0), {});
    // Errors found while stopping count too: a file that could not be finished fails the run.
    const Status stopped = graph.stop();
    {
        std::lock_guard lock(print_mutex);
        if (show_progress) std::fputs("\r\033[K", stderr);
    }
    bool stop_failed = !stopped;
    while (auto e = graph.poll_event()) {
        if (e->type == Event::Type::error) {
            std::fprintf(stderr, "sluice-play: error: %s\n", e->message.c_str());
            stop_failed = true;
        } else if (e->type == Event::Type::warning || e->type == Event::Type::stop_stuck) {
            std::fprintf(stderr, "sluice-play: %s: %s%s%s\n", e->type == Event::Type::warning ? "warning" : "stop",
                         e->node.c_str(), e->node.empty() ? "" : ": ", e->message.c_str());
        }
    }
    if (stop_failed && code != 1) {
        if (code == 0) ended_by = "error";
        code = 1;
    }
    const GraphStats stats = graph.stats();
    if (!quiet) {
        std::uint64_t samples = 0;
        for (const NodeReport& n : stats.nodes)
            if (n.kind == Node::Kind::render) samples += n.stats.samples_in;
        std::printf("sluice-play: %s after %.2f s of media, %llu samples rendered, stop took %.2f ms\n", ended_by.c_str(),
                    seconds(media_position(stats)), static_cast<unsigned long long>(samples),
                    std::chrono::duration<double, std::milli>(stats.last_stop).count());
        if (demo) {
            char cwd[4096];
            const char* here = ::getcwd(cwd, sizeof cwd) ? cwd : ".";
            std::printf("wrote %s/sluice-demo.wav (440 Hz tone), %s/sluice-demo.y4m (test picture), %s/sluice-demo.png (its last frame)\n",
                        here, here, here);
        }
        if (code == 1) std::printf("sluice-play: outputs written before the error are closed and valid, but end early\n");
    }
    if (!stats_path.empty()) {
        // Node names come from the user and may not be UTF-8: replaced, the JSON stays valid.
        stats_file << stats_json(graph, stats, text, ended_by, code).dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
                   << "\n";
        stats_file.close();
        if (!stats_file) {
            std::fprintf(stderr, "sluice-play: %s: writing the statistics failed: %s\n", stats_path.c_str(),
                         std::strerror(errno));
            return code != 0 ? code : 1;
        }
    }
    return code;
}

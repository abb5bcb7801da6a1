// SPDX-License-Identifier: MIT
// videosink's window on a real X server: each case starts its own Xvfb (a free display number,
// chosen by Xvfb itself through -displayfd) and ends it, whatever happens. The test reads the
// window back through Xlib (XGetImage: what xwd does) and closes it as a window manager does, with
// a WM_DELETE_WINDOW message: the honest "the user closed the window".
#include "../support.hpp"

#include <doctest/doctest.h>

#include <X11/Xlib.h>
#include <X11/Xutil.h>

#include <algorithm>
#include <array>
#include <bit>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

// The player with a window leaves ~1.2 KB allocated by system libraries it does not own (libdbus,
// X and GL libraries already unloaded at exit, which LeakSanitizer cannot name): under CI's
// ASan stage (detect_leaks=1) its leak check is turned off for these children only; every other
// sanitizer check stays on, and the test process itself keeps its leak check.
const std::string kPlayer = "env ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" " + std::string(SLUICE_PLAY_PATH);
using namespace std::chrono_literals;

using test::read_file;

// Waits up to `limit` for the child `pid`; its exit code (128 + signal when killed), or nothing
// while it still runs.
std::optional<int> wait_child(pid_t pid, std::chrono::milliseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (;;) {
        int status = 0;
        const pid_t got = ::waitpid(pid, &status, WNOHANG);
        if (got == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        if (got < 0) return -1;
        if (std::chrono::steady_clock::now() > until) return std::nullopt;
        std::this_thread::sleep_for(10ms);
    }
}

// Ends a child: SIGTERM, then SIGKILL if it lingers. For destructors.
void end_child(pid_t pid) {
    if (pid <= 0) return;
    ::kill(pid, SIGTERM);
    if (!wait_child(pid, 5s)) {
        ::kill(pid, SIGKILL);
        (void)wait_child(pid, 5s);
    }
}

// An Xvfb of our own, 1024x768x24, on the display number it picked (-displayfd writes it once
// the server accepts connections). Ended by the destructor.
class Xvfb {
public:
    Xvfb() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::dup2(fds[1], 3);  // without O_CLOEXEC: Xvfb writes the number there
            const int null = ::open("/dev/null", O_RDWR);
            ::dup2(null, 1);
            ::dup2(null, 2);
            ::execlp("Xvfb", "Xvfb", "-displayfd", "3", "-screen", "0", "1024x768x24", "-nolisten", "tcp", static_cast<char*>(nullptr));
            ::_exit(127);
        }
        ::close(fds[1]);
        std::string number;
        const auto until = std::chrono::steady_clock::now() + 30s;
        while (std::chrono::steady_clock::now() < until && number.find('\n') == std::string::npos) {
            pollfd p{fds[0], POLLIN, 0};
            if (::poll(&p, 1, 100) <= 0) continue;
            char buf[32];
            const ssize_t n = ::read(fds[0], buf, sizeof buf);
            if (n <= 0) break;  // Xvfb failed and closed it
            number.append(buf, std::size_t(n));
        }
        ::close(fds[0]);
        REQUIRE_MESSAGE(number.find('\n') != std::string::npos, "Xvfb did not start");
        display_ = ":" + number.substr(0, number.find('\n'));
    }
    ~Xvfb() { end_child(pid_); }
    Xvfb(const Xvfb&) = delete;
    Xvfb& operator=(const Xvfb&) = delete;

    const std::string& display() const { return display_; }

private:
    pid_t pid_ = -1;
    std::string display_;
};

// sluice-play in the background on `display`, its output into a file. Killed by the destructor
// if it still runs.
class Player {
public:
    Player(const std::string& display, const std::string& args, const test::TempDir& dir) : log_(dir / "player.log") {
        pid_ = ::fork();
        REQUIRE(pid_ >= 0);
        if (pid_ == 0) {
            ::setenv("DISPLAY", display.c_str(), 1);
            ::unsetenv("WAYLAND_DISPLAY");
            ::execl("/bin/sh", "sh", "-c", ("exec " + kPlayer + " " + args + " >" + test::quote(log_) + " 2>&1").c_str(),
                    static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    ~Player() {
        if (pid_ > 0) end_child(pid_);
    }
    Player(const Player&) = delete;
    Player& operator=(const Player&) = delete;

    std::optional<int> wait(std::chrono::milliseconds limit) {
        auto code = wait_child(pid_, limit);
        if (code) pid_ = -1;
        return code;
    }
    void signal(int sig) const { ::kill(pid_, sig); }
    bool running() const { return pid_ > 0 && ::waitpid(pid_, nullptr, WNOHANG) == 0; }
    std::string output() const { return read_file(log_); }

private:
    std::string log_;
    pid_t pid_ = -1;
};

// X errors (a window gone between two requests) come back as failed calls, not an exit.
int ignore_x_error(Display*, XErrorEvent*) { return 0; }

// A client connection to the test's X server.
class XClient {
public:
    explicit XClient(const std::string& display) {
        XSetErrorHandler(ignore_x_error);
        d_ = XOpenDisplay(display.c_str());
        REQUIRE_MESSAGE(d_ != nullptr, "cannot connect to " << display);
    }
    ~XClient() {
        if (d_ != nullptr) XCloseDisplay(d_);
    }
    XClient(const XClient&) = delete;
    XClient& operator=(const XClient&) = delete;

    // The viewable window titled `title` (WM_NAME), or 0.
    Window find(const std::string& title) { return find_under(DefaultRootWindow(d_), title); }

    // Waits up to `limit` for it.
    Window wait_for(const std::string& title, std::chrono::milliseconds limit) {
        Window w = 0;
        test::eventually([&] { return (w = find(title)) != 0; }, limit);
        return w;
    }

    struct Rgb {
        int r = -1, g = -1, b = -1;
    };
    // The window's pixels as they are on the screen, row by row (empty if it went away).
    struct Shot {
        int width = 0, height = 0;
        std::vector<Rgb> pixels;
        Rgb at(int x, int y) const { return pixels.at(std::size_t(y) * std::size_t(width) + std::size_t(x)); }
    };
    Shot screenshot(Window w) {
        Shot shot;
        XWindowAttributes a{};
        if (!XGetWindowAttributes(d_, w, &a)) return shot;
        XImage* image = XGetImage(d_, w, 0, 0, unsigned(a.width), unsigned(a.height), AllPlanes, ZPixmap);
        if (image == nullptr) return shot;
        auto channel = [](unsigned long pixel, unsigned long mask) {
            return int((pixel & mask) >> std::countr_zero(mask)) * 255 / int(mask >> std::countr_zero(mask));
        };
        shot.width = a.width;
        shot.height = a.height;
        for (int y = 0; y < a.height; ++y)
            for (int x = 0; x < a.width; ++x) {
                const unsigned long p = XGetPixel(image, x, y);
                shot.pixels.push_back({channel(p, image->red_mask), channel(p, image->green_mask), channel(p, image->blue_mask)});
            }
        XDestroyImage(image);
        return shot;
    }

    // Puts the window above its siblings (it is then exposed, and redrawn by its client).
    void raise(Window w) {
        XRaiseWindow(d_, w);
        XSync(d_, False);
    }

    // What a window manager sends when the user clicks the close button. Whether the window
    // asked for it (WM_PROTOCOLS lists WM_DELETE_WINDOW), as a window manager checks first.
    bool close(Window w) {
        const Atom protocols = XInternAtom(d_, "WM_PROTOCOLS", False);
        const Atom delete_window = XInternAtom(d_, "WM_DELETE_WINDOW", False);
        Atom* listed = nullptr;
        int count = 0;
        bool asked = false;
        if (XGetWMProtocols(d_, w, &listed, &count)) {
            asked = std::find(listed, listed + count, delete_window) != listed + count;
            XFree(listed);
        }
        XEvent e{};
        e.xclient.type = ClientMessage;
        e.xclient.window = w;
        e.xclient.message_type = protocols;
        e.xclient.format = 32;
        e.xclient.data.l[0] = long(delete_window);
        e.xclient.data.l[1] = CurrentTime;
        XSendEvent(d_, w, False, NoEventMask, &e);
        XFlush(d_);
        return asked;
    }

private:
    Window find_under(Window parent, const std::string& title) {
        Window root = 0, up = 0, *children = nullptr;
        unsigned count = 0;
        if (!XQueryTree(d_, parent, &root, &up, &children, &count)) return 0;
        Window found = 0;
        for (unsigned i = 0; i < count && found == 0; ++i) {
            char* name = nullptr;
            if (XFetchName(d_, children[i], &name) && name != nullptr) {
                XWindowAttributes a{};
                if (title == name && XGetWindowAttributes(d_, children[i], &a) && a.map_state == IsViewable) found = children[i];
                XFree(name);
            }
            if (found == 0) found = find_under(children[i], title);
        }
        if (children != nullptr) XFree(children);
        return found;
    }

    Display* d_ = nullptr;
};

// videotest's 75% bars, left to right: white, yellow, cyan, green, magenta, red, blue.
constexpr std::array<XClient::Rgb, 7> kBars = {{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}}};

// Where bar i's centre is in a `width` x `height` videotest picture (the bars fill the top two
// thirds; the middle of that height is clear of the frame number in the top-left corner).
std::pair<int, int> bar_centre(int i, int width, int height) {
    auto even = [](int v) { return v & ~1; };
    const int x0 = even(i * width / 7), x1 = i == 6 ? width : even((i + 1) * width / 7);
    return {(x0 + x1) / 2, even(height * 2 / 3) / 2};
}

// Whether every bar's centre, and the pixels around it, has its colour within `tolerance`; what
// was seen otherwise, for the failure message.
bool bars_in_place(const XClient::Shot& shot, int width, int height, std::string& seen, int tolerance = 12) {
    seen.clear();
    if (shot.width != width || shot.height != height) {
        seen = "window of " + std::to_string(shot.width) + "x" + std::to_string(shot.height);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < 7; ++i) {
        const auto [cx, cy] = bar_centre(i, width, height);
        for (int dy = -4; dy <= 4; dy += 4)
            for (int dx = -4; dx <= 4; dx += 4) {
                const XClient::Rgb p = shot.at(cx + dx, cy + dy);
                const XClient::Rgb& want = kBars[std::size_t(i)];
                if (std::abs(p.r - want.r) > tolerance || std::abs(p.g - want.g) > tolerance || std::abs(p.b - want.b) > tolerance) {
                    ok = false;
                    seen += "bar " + std::to_string(i) + " at (" + std::to_string(cx + dx) + "," + std::to_string(cy + dy) + "): " +
                            std::to_string(p.r) + "," + std::to_string(p.g) + "," + std::to_string(p.b) + "; ";
                }
            }
    }
    return ok;
}

// Waits (bounded: the first pictures take a while under a sanitizer) until the window titled
// `title` shows the bars; the last failure in `seen`.
bool window_shows_bars(XClient& x, const std::string& title, int width, int height, std::string& seen) {
    return test::eventually(
        [&] {
            const Window w = x.find(title);
            if (w == 0) {
                seen = "no window titled '" + title + "'";
                return false;
            }
            x.raise(w);  // on top of the other windows there (no window manager places them)
            return bars_in_place(x.screenshot(w), width, height, seen);
        },
        30s);
}

// The window titled `title` shows the bars (window_shows_bars()); the failure's message says what
// it showed instead.
void check_shows_bars(XClient& x, const std::string& title, int width, int height) {
    std::string seen;
    const bool shown = window_shows_bars(x, title, width, height, seen);
    CHECK_MESSAGE(shown, seen);
}

}  // namespace

// The test picture in the window: the seven bars at their places, in their colours (I420 as
// videotest makes it, through SDL's YUV texture); Ctrl-C (SDL installs no handler of its own)
// stops the player cleanly, and the window showed pictures.
TEST_CASE("VideoSink.Window.ShowsTheBarsAtTheirPlaces" * doctest::timeout(120)) {
    Xvfb server;
    XClient x(server.display());
    test::TempDir dir;
    Player player(server.display(), "-q --realtime --stats-json " + test::quote(dir / "s.json") +
                                         " 'videotest width=320 height=240 ! videosink title=bars'",
                  dir);
    INFO(player.output());
    check_shows_bars(x, "bars", 320, 240);
    CHECK(player.running());  // an endless stream: the window did not end it
    player.signal(SIGINT);
    const auto code = player.wait(20s);
    REQUIRE(code.has_value());
    CHECK(*code == 128 + SIGINT);
    CHECK(x.wait_for("bars", 1ms) == 0);  // the window went with it
    std::ifstream in(dir / "s.json");
    const auto j = nlohmann::json::parse(in);
    CHECK(j["ended_by"] == "SIGINT");
    CHECK(j["nodes"]["videosink0"]["shown"].get<int>() > 0);
}

// Every packed and planar format SDL shows directly, through videoconvert: the same bars. One
// player per format (one window per process), all at once on one server.
TEST_CASE("VideoSink.Window.ShowsEachPixelFormat" * doctest::timeout(180)) {
    Xvfb server;
    XClient x(server.display());
    const std::vector<std::string> formats = {"nv12", "yuy2", "rgba", "bgra", "rgb24"};
    std::vector<std::unique_ptr<test::TempDir>> dirs;
    std::vector<std::unique_ptr<Player>> players;
    for (const std::string& format : formats) {
        dirs.push_back(std::make_unique<test::TempDir>());
        players.push_back(std::make_unique<Player>(server.display(),
                                                   "-q --realtime 'videotest width=320 height=240 ! videoconvert format=" + format +
                                                       " ! videosink title=bars-" + format + "'",
                                                   *dirs.back()));
    }
    for (std::size_t i = 0; i < formats.size(); ++i) {
        CAPTURE(formats[i]);
        INFO(players[i]->output());
        check_shows_bars(x, "bars-" + formats[i], 320, 240);
    }
    for (auto& p : players) p->signal(SIGINT);
    for (std::size_t i = 0; i < formats.size(); ++i) {
        CAPTURE(formats[i]);
        CHECK(players[i]->wait(20s) == 128 + SIGINT);
    }
}

// A decoder's pictures, rows padded for its SIMD and macroblocks (avsrc decodes H.264 straight
// into the pool): shown as they are, each plane at its own pitch, no copy.
TEST_CASE("VideoSink.Window.ShowsPaddedPicturesOfADecoder" * doctest::timeout(120)) {
    test::TempDir dir;
    // 322 pixels wide: no decoder's row size, so the rows are padded. Lossless, so the bars stay.
    auto made = test::run(kPlayer + " -q 'videotest width=322 height=240 num-buffers=150 ! y4msink path=" + dir / "bars.y4m" +
                          "' && ffmpeg -v error -y -i " + dir / "bars.y4m" + " -c:v libx264 -qp 0 -preset veryfast -pix_fmt yuv420p " +
                          dir / "bars.mp4");
    REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    Xvfb server;
    XClient x(server.display());
    Player player(server.display(), "-q --realtime --dot " + test::quote(dir / "g.dot") + " 'avsrc path=" + dir / "bars.mp4" +
                                         " ! videosink title=decoded'",
                  dir);
    INFO(player.output());
    check_shows_bars(x, "decoded", 322, 240);
    const std::string dot = read_file(dir / "g.dot");
    CHECK(dot.find("video/I420 322x240 30/1fps stride=") != std::string::npos);  // padded rows reached the window
    player.signal(SIGINT);
    const auto code = player.wait(20s);
    CHECK((code == 0 || code == 128 + SIGINT));  // 5 s of media: it may just have ended
}

// Closing the window (a WM_DELETE_WINDOW, as a window manager sends when the user clicks its
// close button) ends an endless stream like an end of stream: exit 0, "end-of-stream".
TEST_CASE("VideoSink.Close.EndsTheGraph" * doctest::timeout(120)) {
    Xvfb server;
    test::TempDir dir;
    Player player(server.display(), "--realtime 'videotest ! videosink title=closeme'", dir);
    XClient x(server.display());
    std::string seen;
    REQUIRE_MESSAGE(window_shows_bars(x, "closeme", 320, 240, seen), seen);  // playing
    const Window w = x.find("closeme");
    REQUIRE(w != 0);
    CHECK(x.close(w));  // the window asked for WM_DELETE_WINDOW, as SDL's windows do
    const auto code = player.wait(20s);
    INFO(player.output());
    REQUIRE(code.has_value());
    CHECK(*code == 0);
    CHECK(player.output().find("sluice-play: end-of-stream after") != std::string::npos);
}

// A stream that ends by itself ends the graph too (the last picture stays until it stops), and a
// second videosink in the same process is refused in one line (SDL has one event queue).
TEST_CASE("VideoSink.EndOfStreamAndOneWindowPerProcess" * doctest::timeout(120)) {
    Xvfb server;
    test::TempDir dir;
    {
        Player player(server.display(), "-q --realtime --num-buffers 5 'videotest ! videosink'", dir);
        const auto code = player.wait(30s);
        INFO(player.output());
        CHECK(code == 0);
    }
    {
        Player player(server.display(), "-q 'videotest ! tee name=t t. ! videosink t. ! videosink'", dir);
        const auto code = player.wait(30s);
        const std::string out = player.output();
        INFO(out);
        CHECK(code == 2);
        CHECK(out.find("another videosink has a window open") != std::string::npos);
        CHECK(std::count(out.begin(), out.end(), '\n') == 1);
    }
}

// No display at all: one line naming the node and SDL's reason, exit 2, no hang.
TEST_CASE("VideoSink.NoDisplay.OneLineAndExitTwo" * doctest::timeout(60)) {
    auto r = test::run("env -u DISPLAY -u WAYLAND_DISPLAY " + kPlayer + " -q 'videotest ! videosink'");
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("videosink0: cannot open a window: ") != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    // A display that is not there: the same.
    auto gone = test::run("DISPLAY=:4711 " + kPlayer + " -q 'videotest ! videosink'");
    INFO(gone.output);
    CHECK(gone.exit_code == 2);
    CHECK(gone.output.find("videosink0: cannot open a window: ") != std::string::npos);
    CHECK(std::count(gone.output.begin(), gone.output.end(), '\n') == 1);
}

// `sluice-play FILE` with a movie: its audio on the default ALSA device (alsa-lib's file
// plugin), its pictures in a window titled with the file's name, at their time (the device is
// the clock, so the 2 s play in no less); every picture reaches the window, every sample the
// device, exactly as ffmpeg decodes them.
TEST_CASE("Player.File.PlaysAMovieOnTheDeviceAndInAWindow" * doctest::timeout(120)) {
    test::TempDir dir;
    auto made = test::run("ffmpeg -v error -y -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i "
                          "sine=frequency=440:sample_rate=48000:duration=2 -ac 2 -c:v ffv1 -pix_fmt yuv420p -c:a flac " + dir / "movie.mkv");
    REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    std::ofstream(dir / "asound.conf") << "pcm.!default { type file slave.pcm \"null\" file \"" << dir / "speaker.raw"
                                       << "\" format \"raw\" }\n";
    Xvfb server;
    const auto t0 = std::chrono::steady_clock::now();
    auto r = test::run("DISPLAY=" + server.display() + " ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:" + dir / "asound.conf" + " " +
                       kPlayer + " --stats-json " + dir / "stats.json" + " " + dir / "movie.mkv" + " 2>&1");
    const auto took = std::chrono::steady_clock::now() - t0;
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("movie.mkv: audio on the ALSA device 'default', video in a window\n") != std::string::npos);
    CHECK(took >= 1900ms);  // played at its time, not as fast as the machine decodes
    const auto stats = nlohmann::json::parse(read_file(dir / "stats.json"));
    REQUIRE(stats["nodes"].contains("window"));
    CHECK(stats["nodes"]["window"]["samples_in"].get<std::int64_t>() == 50);
    // Each branch behind a queue of its own, and the decoder's I420 pictures shown from the pool
    // buffers it decoded them into (the window reads them as they are: no videoconvert).
    CHECK(stats["nodes"]["video-queue"]["samples_out"].get<std::int64_t>() == 50);
    CHECK(stats["nodes"]["audio-queue"]["samples_out"].get<std::int64_t>() > 0);
    CHECK(stats["nodes"]["file"]["copies"].get<std::int64_t>() == 0);
    CHECK_FALSE(stats["nodes"].contains("videoconvert0"));
    auto decoded = test::run("ffmpeg -v error -i " + dir / "movie.mkv" + " -map 0:a -f s16le -");
    REQUIRE(decoded.exit_code == 0);
    CHECK(decoded.output.size() == std::size_t(96000 * 4));
    CHECK((read_file(dir / "speaker.raw") == decoded.output));
}

// The same on a sound device that keeps time (alsa-lib's JACK plugin on a jackd of the test's
// own), so that the device is the graph's clock: the audio and the pictures come from one avsrc,
// on one streaming thread, which waits in the videosink for each picture's time on the device's
// clock. That clock counted only when alsasink wrote, and a device that had not started yet (it
// waits for a full buffer) counted nothing: the wait never ended and the player hung. Now the
// device's time moves on between counts, is counted only while the device plays, and starts
// over from where it stood after an underrun. The second run's buffer (8 x 2048 frames) is
// longer than the time the thread waits per picture, the third's (4 x 1024, 85 ms) shorter
// than a FLAC frame (96 ms): it underruns, and hung at the first underrun with a time that
// stood still once nobody counted.
TEST_CASE("Player.File.PlaysAMovieOnADeviceThatIsTheClock" * doctest::timeout(150)) {
    test::TempDir dir;
    auto made = test::run("ffmpeg -v error -y -f lavfi -i testsrc=size=320x240:rate=25:duration=2 -f lavfi -i "
                          "sine=frequency=440:sample_rate=48000:duration=2 -ac 2 -c:v ffv1 -c:a flac " + dir / "movie.mkv");
    REQUIRE_MESSAGE(made.exit_code == 0, made.output);
    test::JackServer jack("avclock", 48000, 256);
    INFO(jack.log());
    REQUIRE(jack.ready());
    std::ofstream(dir / "asound.conf") << "pcm.!default { type plug slave.pcm { type jack playback_ports { 0 system:playback_1 1 system:playback_2 } } }\n";
    Xvfb server;
    for (const char* pipeline : {"", "--realtime 'avsrc path=MOVIE name=file file.audio ! audioconvert ! alsasink period-frames=2048 periods=8 "
                                     "file.video ! videosink'",
                                 "--realtime 'avsrc path=MOVIE name=file file.audio ! audioconvert ! alsasink period-frames=1024 periods=4 "
                                 "file.video ! videosink'"}) {
        std::string args = pipeline;
        if (args.empty()) args = dir / "movie.mkv";
        else args.replace(args.find("MOVIE"), 5, dir / "movie.mkv");
        CAPTURE(args);
        auto r = test::run(jack.env() + "DISPLAY=" + server.display() + " ALSA_CONFIG_PATH=/usr/share/alsa/alsa.conf:" + dir / "asound.conf" +
                           " timeout 25 " + kPlayer + " -q --stats-json " + dir / "stats.json " + args + " 2>&1");
        INFO(r.output);
        REQUIRE(r.exit_code == 0);  // 124: it hung, and timeout ended it
        const auto stats = nlohmann::json::parse(read_file(dir / "stats.json"));
        CHECK(stats["clock"].get<std::string>() != "system");  // the device was the clock
        std::int64_t pictures = -1;
        for (const auto& [name, node] : stats["nodes"].items())
            if (node["type"] == "videosink") pictures = node["samples_in"].get<std::int64_t>();
        CHECK(pictures == 50);
    }
}

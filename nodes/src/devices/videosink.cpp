// SPDX-License-Identifier: MIT
// videosink: pictures in a window, through SDL2 (libsdl2: X11, Wayland, KMS/DRM...).
//
// Threads. SDL's video calls must all come from one thread (the one that made the window pumps
// its events), and a streaming thread must not block on a display server. So the node owns a
// window thread, started by start() and joined by stop(), that makes the window, its renderer and
// one streaming texture, then loops: show the newest picture, pump SDL's events, sleep until the
// next picture or 10 ms. process() (streaming thread) waits for the picture's time (present(),
// when the graph is clocked and sync=true), then leaves the picture in a one-picture mailbox, the
// newest winning (LatestPicture below), and wakes the window thread through an EventCount: no
// lock, no allocation, no SDL call, a futex wake only while the window thread sleeps. The window
// thread copies the picture into the texture (SDL_UpdateYUVTexture takes each plane's pitch, so a
// decoder's padded rows are read as they are) and lets the sample go at once.
//
// Closing the window (the user, the window manager, or a WM_DELETE_WINDOW from a test) ends the
// stream like an end of stream: the window hides, the node reports its input ended (the graph
// ends when every render has), and process() answers Flow::end_of_stream from then on, which
// ends the source upstream.
//
// SDL has one event queue per process, read by the thread that made the windows, so one videosink
// at a time has a window in a process; a second one fails to start, saying so. SDL never installs
// signal handlers (SDL_HINT_NO_SIGNAL_HANDLERS): Ctrl-C is the app's (sluice-play stops cleanly).
// Y'CbCr is converted by SDL with one conversion mode per process (BT.601 limited or full, BT.709
// limited: the matrices and ranges SDL 2 knows); other colours need a videoconvert before it.
#include "core/common.hpp"
#include "video/video_node.hpp"
#include <sluice/allocators/event_count.hpp>
#include <sluice/nodes/registry.hpp>

#include <SDL.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <future>
#include <string>
#include <thread>
#include <utility>

namespace sluice::nodes {
namespace {

using engine::ColourMatrix;
using engine::ColourRange;
using engine::Flow;
using engine::FormatSet;
using engine::MediaFormat;
using engine::PixelFormat;

// A mailbox of one picture between one producer and one consumer, where the newest wins: a triple
// buffer. Three slots; at any time the producer owns one (`back_`), the consumer one (`front_`),
// and the third is shared through one atomic word holding its index and whether it holds a
// picture the consumer has not taken (kFresh). Each side swaps its own slot for the shared one,
// so no slot is ever touched by both at once; neither side ever waits for the other.
// (The triple buffering of graphics drivers; as in HadrienG2/triple-buffer, here holding
// refcounted samples rather than values.)
// Invariant: the slots owned by the two sides are empty between calls (a put leaves its sample in
// the shared slot, a take moves it out at once); the shared slot holds a sample iff kFresh is set.
class LatestPicture {
public:
    // Producer (the streaming thread; the control thread while the streaming threads are parked
    // or gone): leaves `s` for the consumer. Returns the picture it replaced, which the consumer
    // never took (empty if none), for the caller to count and drop. Never blocks or allocates.
    SampleRef put(SampleRef s) noexcept {
        slots_[back_] = std::move(s);
        // acq_rel: the release publishes the sample just stored to take()'s acquire exchange; the
        // acquire sees the consumer's move out of the slot it handed back (its release exchange),
        // so the slot we now own is ours to write.
        const unsigned old = shared_.exchange(back_ | kFresh, std::memory_order_acq_rel);
        back_ = old & kIndex;
        return std::move(slots_[back_]);
    }

    // Producer, as put(): takes back the picture the consumer has not taken yet, if any.
    SampleRef withdraw() noexcept {
        // acq_rel: as in put() (an empty slot is published; a fresh one's sample is acquired).
        const unsigned old = shared_.exchange(back_, std::memory_order_acq_rel);
        back_ = old & kIndex;
        return std::move(slots_[back_]);
    }

    // Consumer (the window thread): the newest picture not taken yet, or an empty ref. Never
    // blocks or allocates.
    SampleRef take() noexcept {
        // acquire: a hint that skips the exchange when nothing is new; a stale "not fresh" only
        // delays the picture to the caller's next look (it looks again after every wake-up, and
        // the producer wakes it after put()).
        if ((shared_.load(std::memory_order_acquire) & kFresh) == 0) return {};
        // acq_rel: the acquire pairs with put()'s release (the sample in the slot); the release
        // hands our empty slot to the producer (see put()).
        const unsigned old = shared_.exchange(front_, std::memory_order_acq_rel);
        front_ = old & kIndex;
        return std::move(slots_[front_]);
    }

    // Empties every slot. Control thread, neither side running (both joined or parked).
    void clear() noexcept {
        for (SampleRef& s : slots_) s.reset();
        back_ = 0;
        front_ = 1;
        shared_.store(2, std::memory_order_relaxed);  // relaxed: no other thread runs
    }

private:
    static constexpr unsigned kIndex = 3, kFresh = 4;
    std::array<SampleRef, 3> slots_;
    unsigned back_ = 0;                  // the producer's slot
    unsigned front_ = 1;                 // the consumer's slot
    std::atomic<unsigned> shared_{2};    // the third slot's index | kFresh
};

// The texture format SDL shows pictures of `f` with, or SDL_PIXELFORMAT_UNKNOWN.
Uint32 texture_format(PixelFormat f) noexcept {
    switch (f) {
        case PixelFormat::i420: return SDL_PIXELFORMAT_IYUV;  // Y, U, V planes
        case PixelFormat::nv12: return SDL_PIXELFORMAT_NV12;
        case PixelFormat::yuy2: return SDL_PIXELFORMAT_YUY2;
        case PixelFormat::rgba: return SDL_PIXELFORMAT_RGBA32;  // R G B A in memory, either endianness
        case PixelFormat::bgra: return SDL_PIXELFORMAT_BGRA32;
        case PixelFormat::rgb24: return SDL_PIXELFORMAT_RGB24;
        default: return SDL_PIXELFORMAT_UNKNOWN;
    }
}

// What SDL 2 can show without a conversion of ours: Y'CbCr in BT.601 (limited or full range) or
// BT.709 limited, and RGB; every layout (SDL takes each plane's pitch). I420 first: what a source
// open to any format is asked for.
FormatSet accepted_formats() {
    FormatSet set;
    for (PixelFormat p : {PixelFormat::i420, PixelFormat::nv12, PixelFormat::yuy2})
        for (auto [matrix, range] : {std::pair{ColourMatrix::bt601, ColourRange::limited}, std::pair{ColourMatrix::bt709, ColourRange::limited},
                                     std::pair{ColourMatrix::bt601, ColourRange::full}}) {
            MediaFormat f = MediaFormat::video(0, 0, p).with_any_layout();
            f.matrix = matrix;
            f.range = range;
            set.push_back(f);
        }
    for (PixelFormat p : {PixelFormat::rgba, PixelFormat::bgra, PixelFormat::rgb24})
        set.push_back(MediaFormat::video(0, 0, p).with_any_layout());
    return set;
}

// Whether a videosink has its window open in this process (SDL has one event queue).
std::atomic<bool> g_window_in_use{false};

class VideoSink final : public detail::VideoNode {
public:
    VideoSink(std::string name, PropertyReader& r) : VideoNode(std::move(name), Kind::render) {
        title_ = r.text("title");
        width_ = int(r.integer("width", 0, engine::kMaxVideoDimension));
        height_ = int(r.integer("height", 0, engine::kMaxVideoDimension));
        sync_ = r.choice("sync", {"true", "false"}) == 0;
        // Held after process() returns: the picture in the mailbox, and the one the window thread
        // is copying into its texture.
        add_input("sink", accepted_formats(), engine::InputNeeds{.holds = 2});
    }
    ~VideoSink() override { close_window(); }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"shown", shown_.load(std::memory_order_relaxed)}};  // relaxed: statistics
    }

private:
    // ---- Control thread.

    Status start() override {
        // sync=false: never waits for the clock, so the graph's preroll must not wait for it.
        if (!sync_) set_clocked(false);
        close_window();
        const MediaFormat& f = input(0).format();
        layout_ = engine::picture_layout(f);
        mailbox_.clear();
        shown_.store(0, std::memory_order_relaxed);  // relaxed: statistics; no other thread yet
        // relaxed, these four: the window thread is started below (the start publishes them) and
        // no streaming thread runs yet.
        closed_.store(false, std::memory_order_relaxed);
        streamed_.store(false, std::memory_order_relaxed);
        ended_.store(false, std::memory_order_relaxed);
        quit_.store(false, std::memory_order_relaxed);
        // acquire: pairs with the release in close_window() of the videosink that had the window.
        if (g_window_in_use.exchange(true, std::memory_order_acquire))
            return {engine::GraphErrc::bad_state,
                    "another videosink has a window open in this process (SDL reads one event queue): one at a time"};
        owns_window_ = true;
        // The drivers SDL may try, unless SDL_VIDEODRIVER says otherwise: X11 and Wayland where
        // their displays are set (a Wayland client library looking for a server that is not
        // there prints its own lines on stderr), then KMS/DRM (a console). Never SDL's
        // offscreen or dummy drivers, which would "show" pictures nobody sees.
        auto set = [](const char* name) {
            const char* v = std::getenv(name);
            return v != nullptr && *v != '\0';
        };
        drivers_.clear();
        if (set("DISPLAY")) drivers_ += "x11,";
        if (set("WAYLAND_DISPLAY")) drivers_ += "wayland,";
        drivers_ += "KMSDRM";
        no_display_hint_ = !set("DISPLAY") && !set("WAYLAND_DISPLAY");
        display_ = set("DISPLAY") ? std::getenv("DISPLAY") : "";
        std::promise<std::string> opened;
        std::future<std::string> result = opened.get_future();
        window_thread_ = std::thread([this, p = std::move(opened)]() mutable { window_main(std::move(p)); });
        std::string error;
        try {
            error = result.get();
        } catch (...) {  // the window thread ran out of memory
            close_window();
            throw;
        }
        if (!error.empty()) {
            close_window();
            return {engine::GraphErrc::io_error, error};
        }
        return {};
    }

    void stop() override { close_window(); }

    // Streaming threads parked: the picture not shown yet belongs to the old position. (One the
    // window thread is copying right now is let go as soon as it is copied.)
    void flush() override {
        if (mailbox_.withdraw()) count_drop();
    }

    // Joins the window thread (which destroys the window) and drops every held picture.
    void close_window() noexcept {
        if (window_thread_.joinable()) {
            quit_.store(true, std::memory_order_release);  // release: pairs with the window thread's acquire
            wake_.notify_all();
            window_thread_.join();
        }
        mailbox_.clear();
        if (owns_window_) {
            owns_window_ = false;
            g_window_in_use.store(false, std::memory_order_release);  // release: pairs with start()'s acquire
        }
    }

    // ---- Streaming thread.

    Flow process(std::size_t, SampleRef&& s) override {
        if (!streamed_.load(std::memory_order_relaxed))  // relaxed: this thread's own flag
            // seq_cst, with the seq_cst load of closed_ below and the window thread's store of
            // closed_ then load of streamed_ (close()): of the two threads, at least one sees the
            // other's store, so a window closed as the first picture arrives is reported once by
            // one of them and never by neither.
            streamed_.store(true, std::memory_order_seq_cst);
        if (closed_.load(std::memory_order_seq_cst)) return window_closed(s);  // seq_cst: see above
        if (s.size() < layout_.bytes) return short_sample(s.size(), layout_.bytes);
        if (sync_)
            if (Flow f = present(s); f != Flow::ok) return f;
        if (closed_.load(std::memory_order_seq_cst)) return window_closed(s);  // closed while we waited
        if (mailbox_.put(std::move(s))) count_drop();  // the window thread had not shown the previous one
        wake_.notify_one();
        return Flow::ok;
    }

    Flow window_closed(SampleRef& s) noexcept {
        s.reset();
        count_drop();
        report_ended();
        return Flow::end_of_stream;
    }

    // The stream upstream ended: the last picture stays in the window until the graph stops.
    void end_of_stream(std::size_t) override { report_ended(); }

    // Tells the graph this render's input ended, once per start: at the stream's end or when the
    // window is closed, whichever comes first. A streaming thread or the window thread.
    void report_ended() noexcept {
        // acq_rel: one caller wins; the flag is the whole message.
        if (!ended_.exchange(true, std::memory_order_acq_rel)) Node::end_of_stream(0);
    }

    // ---- Window thread: every SDL call of the node happens here.

    void window_main(std::promise<std::string> opened) noexcept {
        try {
            if (std::string error = open_sdl(); !error.empty()) {
                close_sdl();
                opened.set_value(std::move(error));
                return;
            }
            opened.set_value({});
        } catch (...) {  // no memory for a message: say what we can
            close_sdl();
            try {
                opened.set_exception(std::current_exception());
            } catch (...) {
            }
            return;
        }
        draw();
        for (;;) {
            const std::uint32_t ticket = wake_.prepare_wait();
            if (quit_.load(std::memory_order_acquire)) break;  // acquire: pairs with close_window()
            bool showed = false;
            if (SampleRef s = mailbox_.take()) {
                if (!closed_.load(std::memory_order_relaxed)) {  // relaxed: this thread's own flag
                    upload(s);
                    showed = true;
                }
            }  // the sample goes back to its pool here, copied
            if (showed) {
                draw();
                shown_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
            }
            // Events after every picture too: pictures arriving faster than they are shown must
            // not keep a close from being seen.
            SDL_Event e;
            while (SDL_PollEvent(&e)) {
                if (e.type == SDL_QUIT || (e.type == SDL_WINDOWEVENT && e.window.event == SDL_WINDOWEVENT_CLOSE)) {
                    close();
                } else if (e.type == SDL_WINDOWEVENT &&
                           (e.window.event == SDL_WINDOWEVENT_EXPOSED || e.window.event == SDL_WINDOWEVENT_SIZE_CHANGED)) {
                    draw();
                }
            }
            if (!showed) wake_.wait(ticket, detail::steady_now_ns() + 10'000'000);  // else look for the next at once
        }
        close_sdl();
    }

    // Makes the window, its renderer and its texture; the message on failure (naming SDL's).
    std::string open_sdl() {
        const MediaFormat& f = input(0).format();
        // Before SDL_Init: SDL must leave SIGINT and SIGTERM to the app.
        SDL_SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
        SDL_SetHint(SDL_HINT_VIDEODRIVER, drivers_.c_str());  // the environment's SDL_VIDEODRIVER wins
        if (SDL_InitSubSystem(SDL_INIT_VIDEO) != 0) {
            std::string error = std::string("cannot open a window: ") + SDL_GetError();
            if (no_display_hint_) error += " (no display: DISPLAY and WAYLAND_DISPLAY are not set)";
            else if (!display_.empty()) error += " (DISPLAY=" + display_ + ")";
            return error;
        }
        sdl_inited_ = true;
        window_ = SDL_CreateWindow(title_.c_str(), SDL_WINDOWPOS_UNDEFINED, SDL_WINDOWPOS_UNDEFINED, width_ > 0 ? width_ : f.width,
                                   height_ > 0 ? height_ : f.height, SDL_WINDOW_SHOWN | SDL_WINDOW_RESIZABLE);
        if (window_ == nullptr) return std::string("cannot open a window: ") + SDL_GetError();
        renderer_ = SDL_CreateRenderer(window_, -1, 0);
        if (renderer_ == nullptr) return std::string("cannot draw in the window: ") + SDL_GetError();
        // The picture keeps its shape in a window of another shape (black bars), and is scaled
        // smoothly.
        SDL_RenderSetLogicalSize(renderer_, f.width, f.height);
        SDL_SetHint(SDL_HINT_RENDER_SCALE_QUALITY, "linear");
        if (!engine::is_rgb(f.pixel_format))
            SDL_SetYUVConversionMode(f.matrix == ColourMatrix::bt709 ? SDL_YUV_CONVERSION_BT709
                                     : f.range == ColourRange::full  ? SDL_YUV_CONVERSION_JPEG
                                                                     : SDL_YUV_CONVERSION_BT601);
        texture_ = SDL_CreateTexture(renderer_, texture_format(f.pixel_format), SDL_TEXTUREACCESS_STREAMING, f.width, f.height);
        if (texture_ == nullptr) return std::string("cannot make a ") + engine::to_string(f.pixel_format) + " texture: " + SDL_GetError();
        SDL_SetTextureBlendMode(texture_, SDL_BLENDMODE_NONE);  // alpha is not transparency here
        return {};
    }

    void close_sdl() noexcept {
        if (texture_ != nullptr) SDL_DestroyTexture(texture_);
        if (renderer_ != nullptr) SDL_DestroyRenderer(renderer_);
        if (window_ != nullptr) SDL_DestroyWindow(window_);
        texture_ = nullptr;
        renderer_ = nullptr;
        window_ = nullptr;
        if (sdl_inited_) {
            SDL_QuitSubSystem(SDL_INIT_VIDEO);  // counted: an app's own use of SDL's video stays
            // Nothing of SDL's left in use (no app of ours uses it otherwise): its D-Bus
            // connection, hints and thread-local state go too.
            if (SDL_WasInit(SDL_INIT_EVERYTHING) == 0) SDL_Quit();
        }
        sdl_inited_ = false;
        have_picture_ = false;
    }

    // Copies the picture into the texture, each plane at its own pitch.
    void upload(const SampleRef& s) noexcept {
        const auto* base = reinterpret_cast<const Uint8*>(s.data());
        const engine::PicturePlane* p = layout_.plane;
        switch (input(0).format().pixel_format) {
            case PixelFormat::i420:
                SDL_UpdateYUVTexture(texture_, nullptr, base + p[0].offset, int(p[0].stride), base + p[1].offset, int(p[1].stride),
                                     base + p[2].offset, int(p[2].stride));
                break;
            case PixelFormat::nv12:
                SDL_UpdateNVTexture(texture_, nullptr, base + p[0].offset, int(p[0].stride), base + p[1].offset, int(p[1].stride));
                break;
            default: SDL_UpdateTexture(texture_, nullptr, base + p[0].offset, int(p[0].stride)); break;
        }
        have_picture_ = true;
    }

    // The last picture (black before the first), scaled to the window.
    void draw() noexcept {
        SDL_SetRenderDrawColor(renderer_, 0, 0, 0, 255);
        SDL_RenderClear(renderer_);
        if (have_picture_) SDL_RenderCopy(renderer_, texture_, nullptr, nullptr);
        SDL_RenderPresent(renderer_);
    }

    // The window was closed: it goes away at once, and the stream ends (see process()).
    void close() noexcept {
        if (closed_.exchange(true, std::memory_order_seq_cst)) return;  // seq_cst: see process()
        SDL_HideWindow(window_);
        if (streamed_.load(std::memory_order_seq_cst)) report_ended();  // seq_cst: see process()
    }

    // Properties.
    std::string title_;
    int width_ = 0, height_ = 0;  // 0: the picture's
    bool sync_ = true;
    // Fixed by start() for the run.
    engine::PictureLayout layout_{};
    bool no_display_hint_ = false;
    std::string drivers_;  // SDL's video drivers to try, in order
    std::string display_;  // $DISPLAY, for messages
    bool owns_window_ = false;  // this node set g_window_in_use
    std::thread window_thread_;

    // Between the streaming thread and the window thread.
    LatestPicture mailbox_;
    EventCount wake_;                          // a picture was put; quit_ was set
    std::atomic<bool> quit_{false};            // close_window() wants the window thread to end
    std::atomic<bool> closed_{false};          // the window was closed: the stream is over here
    std::atomic<bool> streamed_{false};        // process() ran since start(): the graph counts ends
    std::atomic<bool> ended_{false};           // the end was reported to the graph (once per start)
    std::atomic<std::uint64_t> shown_{0};      // pictures shown

    // The window thread's own (made and destroyed there).
    bool sdl_inited_ = false;
    bool have_picture_ = false;
    SDL_Window* window_ = nullptr;
    SDL_Renderer* renderer_ = nullptr;
    SDL_Texture* texture_ = nullptr;
};

}  // namespace

NodeSpec videosink_spec() {
    return {"videosink", Node::Kind::render,
            "shows pictures in a window (SDL2), each at its time when clocked; closing the window ends the stream",
            {{"title", "Sluice", "the window's title"},
             {"width", "0", "window width in pixels (0: the picture's); the picture keeps its shape"},
             {"height", "0", "window height in pixels (0: the picture's)"},
             {"sync", "true", "in a clocked graph, show each picture at its time (false: as soon as it arrives)"}},
            factory<VideoSink>()};
}

}  // namespace sluice::nodes

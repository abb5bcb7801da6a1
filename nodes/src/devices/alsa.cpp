// SPDX-License-Identifier: MIT
// alsasink and alsasrc: sound devices through alsa-lib (libasound), so every ALSA device name
// works, `default` included, which on desktops routes through PipeWire's or PulseAudio's ALSA
// plugins, and so do alsa-lib's own plugins (file, null, plug, dmix) that the tests use.
//
// The device is opened non-blocking and waited on with poll() over its descriptors plus an
// eventfd, so a streaming thread waiting for the device wakes when the graph stops or flushes
// (unblock()) instead of sleeping in alsa-lib. The device paces the stream: samples are written
// (or read) as fast as it takes (gives) them. The device is the graph's clock
// (provide-clock=true, the default, as a GStreamer audio sink provides the pipeline clock):
// alsasink publishes the frames the device has played (written minus its delay) with the
// instant, and the graph's clock follows them, so other clocked renders (video) keep to the
// sound card's crystal and the drift between it and the system clock is measured. The master
// sink then never waits for the clock itself: that clock only moves as the device plays, so
// waiting for a sample's time would drain the device's buffer before every write. (Its first
// sample after a start or a seek alone waits while a file's graph prerolls, before the clock runs.) Devices that
// keep no time (alsa-lib's null plugin, and anything that still holds no samples once a whole
// buffer went in) provide no clock, or release it (it runs on at the system's pace); an
// alsasink that is not the master (sync=true, the default) waits for each sample's time as a
// GStreamer sink syncs to the pipeline clock, which also paces those devices. At end of stream
// the clock is released too, so a longer video branch plays on.
// Underruns and overruns are recovered with snd_pcm_recover and counted as `xruns`.
//
// Formats come from the device's hardware parameters, probed when the node is made: the sample
// formats it takes among s16, s24 (S24_3LE), s32 and f32, and its rates and channel counts
// (fixed when the device has one, open otherwise and checked at start).
#include "core/common.hpp"
#include "devices/bounded_close.hpp"
#include "devices/stall_watch.hpp"
#include <sluice/engine/log.hpp>
#include <sluice/nodes/registry.hpp>

#include <alsa/asoundlib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <cstring>
#include <memory>
#include <thread>
#include <vector>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::FormatSet;
using engine::MediaFormat;
using engine::SampleFormat;

using PcmPtr = detail::CPtr<snd_pcm_t, snd_pcm_close>;
using HwParamsPtr = detail::CPtr<snd_pcm_hw_params_t, snd_pcm_hw_params_free>;
using SwParamsPtr = detail::CPtr<snd_pcm_sw_params_t, snd_pcm_sw_params_free>;

snd_pcm_format_t alsa_format(SampleFormat f) {
    switch (f) {
        case SampleFormat::s16: return SND_PCM_FORMAT_S16_LE;
        case SampleFormat::s24: return SND_PCM_FORMAT_S24_3LE;
        case SampleFormat::s32: return SND_PCM_FORMAT_S32_LE;
        case SampleFormat::f32: return SND_PCM_FORMAT_FLOAT_LE;
        case SampleFormat::any: break;
    }
    return SND_PCM_FORMAT_UNKNOWN;
}

// alsa-lib prints its own diagnostics to stderr; a library of ours never does: they go to the
// engine's log handler at debug level (sluice-play -v shows them). Called from C: nothing may
// unwind out of it.
void forward_alsa_log(const char* file, int line, const char* function, int, const char* format, ...) noexcept {
    char text[1024];
    va_list args;
    va_start(args, format);
    std::vsnprintf(text, sizeof text, format, args);
    va_end(args);
    try {
        engine::log_message(engine::LogLevel::debug, std::string("alsa: ") + (function ? function : "") + ": " + text +
                                                         " (" + (file ? file : "?") + ":" + std::to_string(line) + ")");
    } catch (...) {  // no memory for the line, or the app's handler threw: the line is lost
    }
}

void route_alsa_log() {
    static std::once_flag once;
    std::call_once(once, [] { snd_lib_error_set_handler(&forward_alsa_log); });
}

// "alsasink: device 'hw:9': cannot open: No such device"
std::string device_error(const std::string& device, const char* what, int err) {
    return "device '" + detail::printable(device) + "': " + what + ": " + snd_strerror(err);
}

// The rates a device with more than one takes, as a graph can negotiate them: 0 (any) where it
// takes every common rate from 8 to 192 kHz (alsa-lib's plug converts any rate; a card with a
// continuous range); otherwise each common rate it takes, 48 kHz first. A card's list (a USB
// interface's 44.1, 48 and 96 kHz) is then met at negotiation, where an audioresample fixes a
// song's 22.05 kHz (sluice-play puts one in), instead of refused when the device opens. A rate
// asked for by name (alsasrc's rate=) that the device takes comes first, common or not.
std::vector<int> device_rates(snd_pcm_t* pcm, snd_pcm_hw_params_t* hw, unsigned min, unsigned max, int wanted) {
    static constexpr int kCommon[] = {48000, 44100, 96000, 88200, 192000, 176400, 32000,
                                      24000, 22050, 16000, 12000, 11025, 8000};
    if (min == max) return {int(min)};
    std::vector<int> rates;
    for (int r : kCommon)
        if (snd_pcm_hw_params_test_rate(pcm, hw, unsigned(r), 0) == 0) rates.push_back(r);
    if (rates.size() == std::size(kCommon) && min <= 8000 && max >= 192000) return {0};
    if (wanted > 0 && snd_pcm_hw_params_test_rate(pcm, hw, unsigned(wanted), 0) == 0) {
        std::erase(rates, wanted);
        rates.insert(rates.begin(), wanted);
    }
    if (rates.empty()) return {int(min)};  // uncommon rates only: the lowest, which it takes
    return rates;
}

// What the device takes, from its hardware parameters: one MediaFormat per sample format and
// rate (device_rates; a USB card's rates may differ by format), with channels fixed where the
// device has only one. `wanted_rate`: see device_rates.
Status probe_device(const std::string& device, snd_pcm_stream_t stream, FormatSet& out, int wanted_rate = 0) {
    route_alsa_log();
    snd_pcm_t* raw = nullptr;
    // Non-blocking: a busy device is an error now, never a wait.
    detail::after_finished_closers();  // alsa-lib's JACK plugin opens a JACK client
    if (int e = snd_pcm_open(&raw, device.c_str(), stream, SND_PCM_NONBLOCK); e < 0)
        return {e == -EBUSY ? engine::GraphErrc::io_error : engine::GraphErrc::invalid_argument,
                device_error(device, e == -EBUSY ? "busy (another program has it)" : "cannot open", e)};
    PcmPtr pcm(raw);
    snd_pcm_hw_params_t* hw_raw = nullptr;
    if (snd_pcm_hw_params_malloc(&hw_raw) < 0) return {Errc::out_of_memory, "out of memory"};
    HwParamsPtr hw(hw_raw);
    if (int e = snd_pcm_hw_params_any(pcm.get(), hw.get()); e < 0)
        return {engine::GraphErrc::unsupported_format, device_error(device, "cannot read its parameters", e)};
    snd_pcm_hw_params_t* one_raw = nullptr;  // the parameters with one sample format chosen
    if (snd_pcm_hw_params_malloc(&one_raw) < 0) return {Errc::out_of_memory, "out of memory"};
    HwParamsPtr one(one_raw);
    for (SampleFormat f : {SampleFormat::s16, SampleFormat::s32, SampleFormat::f32, SampleFormat::s24}) {
        snd_pcm_hw_params_copy(one.get(), hw.get());
        if (snd_pcm_hw_params_set_format(pcm.get(), one.get(), alsa_format(f)) < 0) continue;
        unsigned rate_min = 0, rate_max = 0, channels_min = 0, channels_max = 0;
        snd_pcm_hw_params_get_rate_min(one.get(), &rate_min, nullptr);
        snd_pcm_hw_params_get_rate_max(one.get(), &rate_max, nullptr);
        snd_pcm_hw_params_get_channels_min(one.get(), &channels_min);
        snd_pcm_hw_params_get_channels_max(one.get(), &channels_max);
        const int channels = channels_min == channels_max ? int(channels_min) : 0;
        for (int rate : device_rates(pcm.get(), one.get(), rate_min, rate_max, wanted_rate))
            out.push_back(MediaFormat::audio(rate, channels, f));
    }
    if (out.empty())
        return {engine::GraphErrc::unsupported_format, "device '" + detail::printable(device) +
                                                           "' takes none of the sample formats s16, s24, s32, f32"};
    return {};
}

// The device open for streaming, and how its thread waits for it without missing a stop.
class Device {
public:
    ~Device() { close(); }

    Status open(const std::string& device, snd_pcm_stream_t stream, const MediaFormat& f, unsigned period_frames,
                unsigned periods) {
        close();
        name_ = device;
        snd_pcm_t* raw = nullptr;
        detail::after_finished_closers();  // alsa-lib's JACK plugin opens a JACK client
        if (int e = snd_pcm_open(&raw, device.c_str(), stream, SND_PCM_NONBLOCK); e < 0)
            return {engine::GraphErrc::io_error, device_error(device, e == -EBUSY ? "busy (another program has it)" : "cannot open", e)};
        pcm_.reset(raw);
        // Said again, though the open said it: alsa-lib's external plugins (ioplug: the JACK
        // and PulseAudio plugins) take the open's mode for their reads and writes but not for
        // their drain, which then polls with no timeout until the device has played all (for
        // ever on a frozen server, and deaf to a stop); snd_pcm_nonblock tells the plugin too.
        if (int e = snd_pcm_nonblock(raw, 1); e < 0)
            engine::log_message(engine::LogLevel::warning, device_error(device, "cannot be made non-blocking (a stop may wait for its drain)", e));
        snd_pcm_hw_params_t* hw_raw = nullptr;
        if (snd_pcm_hw_params_malloc(&hw_raw) < 0) return {Errc::out_of_memory, "out of memory"};
        HwParamsPtr hw(hw_raw);
        snd_pcm_t* p = pcm_.get();
        snd_pcm_hw_params_any(p, hw.get());
        unsigned rate = unsigned(f.rate);
        snd_pcm_uframes_t period = period_frames;
        if (int e = snd_pcm_hw_params_set_access(p, hw.get(), SND_PCM_ACCESS_RW_INTERLEAVED); e < 0)
            return {engine::GraphErrc::unsupported_format, device_error(device, "no interleaved access", e)};
        if (int e = snd_pcm_hw_params_set_format(p, hw.get(), alsa_format(f.sample_format)); e < 0)
            return {engine::GraphErrc::unsupported_format,
                    device_error(device, (std::string("does not take ") + engine::to_string(f.sample_format)).c_str(), e)};
        if (int e = snd_pcm_hw_params_set_channels(p, hw.get(), unsigned(f.channels)); e < 0)
            return {engine::GraphErrc::unsupported_format,
                    device_error(device, ("does not take " + std::to_string(f.channels) + " channels").c_str(), e)};
        if (int e = snd_pcm_hw_params_set_rate(p, hw.get(), rate, 0); e < 0)
            return {engine::GraphErrc::unsupported_format,
                    device_error(device, ("does not take " + std::to_string(rate) + " Hz (put 'audioresample rate=N' before it)").c_str(), e)};
        snd_pcm_hw_params_set_period_size_near(p, hw.get(), &period, nullptr);
        unsigned count = periods;
        snd_pcm_hw_params_set_periods_near(p, hw.get(), &count, nullptr);
        if (int e = snd_pcm_hw_params(p, hw.get()); e < 0)
            return {engine::GraphErrc::unsupported_format, device_error(device, "cannot set its parameters", e)};
        snd_pcm_uframes_t buffer = 0;
        snd_pcm_hw_params_get_period_size(hw.get(), &period, nullptr);
        snd_pcm_hw_params_get_buffer_size(hw.get(), &buffer);
        period_ = period;
        buffer_ = buffer;
        // Playback starts once the buffer is full (not at the first frame, which would underrun
        // at once); the thread wakes when a period is free.
        snd_pcm_sw_params_t* sw_raw = nullptr;
        if (snd_pcm_sw_params_malloc(&sw_raw) < 0) return {Errc::out_of_memory, "out of memory"};
        SwParamsPtr sw(sw_raw);
        snd_pcm_sw_params_current(p, sw.get());
        if (stream == SND_PCM_STREAM_PLAYBACK) snd_pcm_sw_params_set_start_threshold(p, sw.get(), buffer);
        snd_pcm_sw_params_set_avail_min(p, sw.get(), period);
        if (int e = snd_pcm_sw_params(p, sw.get()); e < 0)
            return {engine::GraphErrc::unsupported_format, device_error(device, "cannot set its start threshold", e)};
        if (int e = snd_pcm_prepare(p); e < 0) return {engine::GraphErrc::io_error, device_error(device, "cannot prepare", e)};
        const int n = snd_pcm_poll_descriptors_count(p);
        fds_.assign(std::size_t(std::max(n, 0)) + 1, pollfd{});
        snd_pcm_poll_descriptors(p, fds_.data(), unsigned(n));
        wake_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (wake_ < 0) return {engine::GraphErrc::io_error, std::string("eventfd: ") + std::strerror(errno)};
        fds_.back() = {wake_, POLLIN, 0};
        return {};
    }

    // Closes the device, on a thread of its own given a second: closing may not return, as
    // alsa-lib's JACK plugin asks a frozen server to deactivate its client and waits for the
    // answer for ever. If it has not returned by then it is left to that thread
    // (bounded_close.hpp; its handle leaks, as jacksink leaves a frozen server's client), so
    // that the graph still stops. Every close, not only that of a device seen stalling: two
    // devices on one streaming thread (alsasrc ! alsasink) wait in turn, so the one not waited
    // on when the server froze looked healthy and its plain close hung the stop. Should a
    // left-behind thread come back while the process exits, alsa-lib's messages may reach a log
    // that is gone: a risk taken only for a device that already hung.
    void close() noexcept {
        if (pcm_) {
            snd_pcm_t* pcm = pcm_.release();
            if (!detail::close_within([pcm]() noexcept { snd_pcm_close(pcm); }, std::chrono::seconds(1))) {
                try {
                    engine::log_message(engine::LogLevel::warning,
                                        "alsa: device '" + detail::printable(name_) + "' did not close within a second; left behind");
                } catch (...) {  // no memory for the line
                }
            }
        }
        pcm_.reset();
        if (wake_ >= 0) ::close(wake_);
        wake_ = -1;
    }

    // Control thread: wakes a wait() in progress (or the next one).
    void wake() noexcept {
        if (wake_ >= 0) {
            const std::uint64_t one = 1;
            (void)!::write(wake_, &one, sizeof one);
        }
    }

    // Waits until the device is ready for more (poll on its descriptors, translated by
    // snd_pcm_poll_descriptors_revents: a plugin's descriptor, an eventfd or pipe for PipeWire,
    // PulseAudio or dmix, stays readable until alsa-lib says what it means), until wake() is
    // called, or `timeout_ms` (-1: none) passes. ready: go on; woken: the caller checks why;
    // failed: poll itself failed (errno).
    enum class Wait { ready, woken, timeout, failed };
    Wait wait(int timeout_ms = -1) noexcept {
        const auto count = unsigned(fds_.size() - 1);
        for (;;) {
            for (auto& fd : fds_) fd.revents = 0;
            const int n = ::poll(fds_.data(), nfds_t(fds_.size()), timeout_ms);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return Wait::failed;
            if (n == 0) return Wait::timeout;
            if (fds_.back().revents & POLLIN) {
                std::uint64_t woken = 0;
                (void)!::read(wake_, &woken, sizeof woken);
                return Wait::woken;
            }
            unsigned short revents = 0;
            if (snd_pcm_poll_descriptors_revents(pcm_.get(), fds_.data(), count, &revents) < 0) return Wait::ready;
            if (revents & (POLLOUT | POLLIN | POLLERR | POLLHUP)) return Wait::ready;
        }
    }

    // wait(), for no longer than `stall` allows, counting the time in it.
    Wait wait(detail::StallWatch& stall) noexcept {
        const std::int64_t since = detail::steady_now_ns();
        const Wait w = wait(stall.timeout_ms());
        stall.waited(detail::steady_now_ns() - since);
        return w;
    }

    snd_pcm_t* pcm() const noexcept { return pcm_.get(); }
    const std::string& name() const noexcept { return name_; }
    snd_pcm_uframes_t period() const noexcept { return period_; }
    snd_pcm_uframes_t buffer() const noexcept { return buffer_; }

private:
    PcmPtr pcm_;
    std::string name_;
    std::vector<pollfd> fds_;  // the device's descriptors, then the eventfd
    int wake_ = -1;
    snd_pcm_uframes_t period_ = 0, buffer_ = 0;
};

// Properties both nodes share.
std::vector<PropertySpec> device_properties(const char* direction) {
    return {{"device", "default", std::string("ALSA device to ") + direction + " (default, hw:0, plughw:1,0, a name from asoundrc ...)"},
            {"period-frames", "1024", "frames per period (the device may round it)"},
            {"periods", "4", "periods in the device's buffer"},
            detail::stall_timeout_property("take (give)")};
}

// What those properties say.
struct DeviceSettings {
    std::string device;
    unsigned period_frames = 1024, periods = 4;
    std::int64_t stall_ns = 0;  // 0: none
    static DeviceSettings read(PropertyReader& r) {
        DeviceSettings d;
        d.device = r.text("device");
        d.period_frames = unsigned(r.integer("period-frames", 16, 1 << 20));
        d.periods = unsigned(r.integer("periods", 2, 1024));
        d.stall_ns = detail::read_stall_timeout(r);
        return d;
    }
};

class AlsaSink final : public Node {
public:
    AlsaSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
        settings_ = DeviceSettings::read(r);
        sync_ = r.choice("sync", {"true", "false"}) == 0;
        provide_clock_ = r.flag("provide-clock");
        FormatSet accepts;
        if (r.ok())
            if (Status st = probe_device(settings_.device, SND_PCM_STREAM_PLAYBACK, accepts); !st) r.fail(st.code(), st.message());
        add_input("sink", accepts.empty() ? FormatSet{MediaFormat::audio()} : accepts);
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"xruns", xruns_.load(std::memory_order_relaxed)}};  // relaxed: statistics
    }

    // The device's clock, when it keeps one and provide-clock=true; see the file's header.
    const engine::DeviceTime* device_time() const noexcept override {
        return keeps_time_.load(std::memory_order_relaxed) ? &device_time_ : nullptr;  // relaxed: a lone flag
    }

private:
    Status start() override {
        xruns_.store(0, std::memory_order_relaxed);  // relaxed: statistics
        stall_ = detail::StallWatch();
        Status st = device_pcm_.open(settings_.device, SND_PCM_STREAM_PLAYBACK, input(0).format(), settings_.period_frames, settings_.periods);
        if (!st) return st;
        // relaxed: no streaming thread runs yet; the graph reads it on this (the control) thread.
        keeps_time_.store(provide_clock_ && snd_pcm_type(device_pcm_.pcm()) != SND_PCM_TYPE_NULL, std::memory_order_relaxed);
        device_time_.start(int(input_rate()));
        device_time_.plays_between_counts();  // counted by this streaming thread, which may wait elsewhere
        counted_run_ = false;
        stall_ = detail::StallWatch(settings_.stall_ns, engine::frames_to_ns(device_pcm_.period(), input_rate()));
        written_ = 0;
        timekeeping_checked_ = false;
        first_since_flush_ = true;
        // sync=false: never waits for the clock, so the graph's preroll must not wait for it.
        if (!sync_) set_clocked(false);
        return st;
    }
    void stop() override { device_pcm_.close(); }
    void unblock() override { device_pcm_.wake(); }
    void flush() override {
        if (device_pcm_.pcm()) {
            // What the device held is dropped, never played: the clock's count must not take it.
            snd_pcm_sframes_t delay = 0;
            if (snd_pcm_delay(device_pcm_.pcm(), &delay) == 0 && delay > 0) written_ -= std::min(std::uint64_t(delay), written_);
            snd_pcm_drop(device_pcm_.pcm());
            snd_pcm_prepare(device_pcm_.pcm());
            device_stopped();  // the streaming thread is parked while a flush runs: still one writer
        }
        first_since_flush_ = true;
    }
    // The device stopped (dropped, or an xrun recovered): its next count starts its time over
    // from where it stands. Done here, not found from its state later: one write of a whole
    // buffer starts it again within the call, and the state would never read as stopped.
    void device_stopped() noexcept {
        if (counted_run_) device_time_.restart();
        counted_run_ = false;
    }

    Flow process(std::size_t, SampleRef&& s) override {
        // The master's samples are paced by the device alone (see the file's header).
        const bool master = keeps_time_.load(std::memory_order_relaxed) && clock().device() == &device_time_;  // relaxed: as above
        // The master too with its first sample after a start or a flush while the clock does not
        // run: a file's graph prerolls (every render holds its first sample until the clock
        // starts), and audio written now would play ahead of the pictures held for the start.
        // Only the first: one held at a pause runs ahead of the clock by the device's buffer,
        // and would wait that out after the pause, the device running dry meanwhile.
        if (sync_ && (!master || (first_since_flush_ && !clock().running())))
            if (Flow f = present(s); f != Flow::ok) return f;
        first_since_flush_ = false;
        const std::size_t frame_bytes = input(0).format().frame_bytes();
        const auto* p = reinterpret_cast<const std::uint8_t*>(s.data());
        snd_pcm_uframes_t left = s.size() / frame_bytes;
        while (left > 0) {
            const snd_pcm_sframes_t n = snd_pcm_writei(device_pcm_.pcm(), p, left);
            if (n >= 0) {
                p += std::size_t(n) * frame_bytes;
                left -= snd_pcm_uframes_t(n);
                written_ += std::uint64_t(n);
                if (n > 0) stall_.moved();
                publish_played();
                continue;
            }
            if (n == -EAGAIN) {
                if (Flow f = wait_for_device(); f != Flow::ok) return f;
                continue;
            }
            if (Flow f = recover(int(n)); f != Flow::ok) return f;
        }
        // A sample whose last frame filled the device's buffer stays here until the device has
        // room, as one whose end did not fit does: returning at once would take the source's
        // next sample while there is no room for it, and everything upstream would run a
        // sample further ahead of what plays (jacksink does the same; bench/README.md,
        // "Session 17"). Only while the device runs: a suspended or unplugged one reports no
        // room and polls ready at once (the next write meets its error and recovers or says
        // so), and one wait is enough (it polls again while the device has no room).
        snd_pcm_t* pcm = device_pcm_.pcm();
        if (snd_pcm_avail_update(pcm) == 0 && snd_pcm_state(pcm) == SND_PCM_STATE_RUNNING)
            if (Flow f = wait_for_device(); f != Flow::ok) return f;
        return Flow::ok;
    }

    // What was written plays out before the render reports its end. Non-blocking, waited on
    // like a write: a stop wakes it, and a device that stops taking samples (a suspended sound
    // server) is given up on after a second more than its buffer lasts.
    void end_of_stream(std::size_t input) override {
        snd_pcm_t* pcm = device_pcm_.pcm();
        int e = snd_pcm_drain(pcm);
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1) +
                              std::chrono::nanoseconds(engine::frames_to_ns(device_pcm_.buffer(), input_rate()));
        while ((e == -EAGAIN || e == 0) && snd_pcm_state(pcm) == SND_PCM_STATE_DRAINING) {
            if (std::chrono::steady_clock::now() > deadline) {
                // Not dropped here: a device that stopped may not return from that either (the
                // JACK plugin's drop deactivates its client); stop() closes it, bounded.
                device_time_.release();
                (void)report_error(make_error_code(engine::GraphErrc::io_error),
                                   "device '" + detail::printable(settings_.device) + "': it stopped taking samples while draining");
                return;
            }
            const Device::Wait w = device_pcm_.wait(20);
            if (w == Device::Wait::woken && stop_token().stop_requested()) break;  // stopping: the rest is dropped
            if (w == Device::Wait::failed) break;
            publish_played();  // the device's time runs on while it plays out
            e = 0;
        }
        // Nothing more to count: other clocked renders (a longer video) go on at the system's pace.
        device_time_.release();
        if (stop_token().stop_requested()) return;
        if (e < 0 && e != -EAGAIN && e != -EPIPE)
            (void)report_error(make_error_code(engine::GraphErrc::io_error), device_error(settings_.device, "drain failed", e));
        Node::end_of_stream(input);
    }
    std::int64_t input_rate() const { return std::max(input(0).format().rate, 1); }

    // What the device has played: written minus what it still holds (its delay), now. A
    // device that still holds nothing once a whole buffer went in takes samples as fast as they
    // come (a null device behind a plug or a default route): it keeps no time, and its clock is
    // released (it runs on at the system's pace) and this sink waits for each sample's time.
    void publish_played() noexcept {
        if (!keeps_time_.load(std::memory_order_relaxed)) return;  // relaxed: only this thread writes it now
        snd_pcm_sframes_t delay = 0;
        if (snd_pcm_delay(device_pcm_.pcm(), &delay) < 0) return;  // an xrun: the next write recovers it
        if (!timekeeping_checked_ && written_ >= device_pcm_.buffer()) {
            timekeeping_checked_ = true;
            if (delay <= 0) {
                keeps_time_.store(false, std::memory_order_relaxed);  // relaxed: a lone flag
                device_time_.release();
                return;
            }
        }
        // Counted only while it plays: a device that waits for a full buffer before it starts
        // counts no frames meanwhile, and a clock that followed those counts would stand still
        // at 0 while this thread, fed by the same source as a videosink, waits for a picture's
        // time on it and writes nothing more (the graph hung). Until it plays, the clock runs
        // at the system's pace; once it stopped (an underrun, a drop), from where it stood.
        if (const snd_pcm_state_t state = snd_pcm_state(device_pcm_.pcm()); state != SND_PCM_STATE_RUNNING && state != SND_PCM_STATE_DRAINING) {
            device_stopped();
            return;
        }
        counted_run_ = true;
        const std::uint64_t held = delay > 0 ? std::min(std::uint64_t(delay), written_) : 0;
        device_time_.publish(written_ - held, detail::steady_now_ns());
    }

    // Waits for room (see stall_watch.hpp). Streaming thread.
    Flow wait_for_device() {
        if (stall_.stalled()) return report_error(make_error_code(engine::GraphErrc::io_error), "device '" + detail::printable(settings_.device) + "' took no samples " + stall_.for_how_long());
        const Device::Wait w = device_pcm_.wait(stall_);
        switch (w) {
            case Device::Wait::ready:
            case Device::Wait::timeout: return Flow::ok;
            case Device::Wait::failed:
                return report_error(make_error_code(engine::GraphErrc::io_error),
                                    "device '" + detail::printable(settings_.device) + "': poll failed: " + std::strerror(errno));
            case Device::Wait::woken: break;
        }
        if (stop_token().stop_requested()) return Flow::stopped;
        return flushing() ? Flow::flushing : Flow::ok;
    }

    // An underrun (the stream fell behind the device) or a suspend: counted and recovered.
    Flow recover(int err) {
        if (err == -EPIPE || err == -ESTRPIPE) xruns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        if (int e = snd_pcm_recover(device_pcm_.pcm(), err, 1); e < 0)
            return report_error(make_error_code(engine::GraphErrc::io_error), device_error(settings_.device, "write failed", e));
        device_stopped();
        return Flow::ok;
    }

    DeviceSettings settings_;
    bool sync_ = true;
    bool provide_clock_ = true;
    bool first_since_flush_ = true;  // streaming thread; start() and flush() while it is parked
    // Provides the clock: asked for, and the device keeps time (start(); cleared by the
    // streaming thread if the device turns out to take samples as fast as they come).
    std::atomic<bool> keeps_time_{false};
    bool timekeeping_checked_ = false;
    bool counted_run_ = false;  // the device played and was counted since it last (re)started
    Device device_pcm_;
    detail::StallWatch stall_;                // the streaming thread's
    engine::DeviceTime device_time_;  // published by this node's streaming thread
    std::uint64_t written_ = 0;       // frames written since start
    std::atomic<std::uint64_t> xruns_{0};
};

class AlsaSrc final : public Node {
public:
    AlsaSrc(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        settings_ = DeviceSettings::read(r);
        const int rate = int(r.integer("rate", 0, 768000));
        const int channels = int(r.integer("channels", 0, 64));
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        FormatSet offers;
        if (r.ok())
            if (Status st = probe_device(settings_.device, SND_PCM_STREAM_CAPTURE, offers, rate); !st) r.fail(st.code(), st.message());
        // A rate asked for, among the device's rates (a card's list; see device_rates).
        if (rate > 0 && !offers.empty()) {
            std::vector<int> rates;
            for (const MediaFormat& f : offers)
                if (std::find(rates.begin(), rates.end(), f.rate) == rates.end()) rates.push_back(f.rate);
            std::erase_if(offers, [&](const MediaFormat& f) { return f.rate != 0 && f.rate != rate; });
            if (offers.empty()) {
                std::string takes;
                for (int x : rates) takes += (takes.empty() ? "" : ", ") + std::to_string(x);
                r.fail(engine::GraphErrc::unsupported_format, "device '" + detail::printable(settings_.device) + "' captures at " +
                                                                  takes + " Hz, not rate=" + std::to_string(rate) +
                                                                  " (leave rate= out, and put 'audioresample rate=" +
                                                                  std::to_string(rate) + "' after it)");
            }
        }
        // What the device leaves open, the properties (or fixate's 48 kHz stereo) decide.
        for (MediaFormat& f : offers) {
            if (f.rate == 0) f.rate = rate > 0 ? rate : 48000;
            if (f.channels == 0) f.channels = channels > 0 ? channels : 2;
        }
        add_output("src", offers.empty() ? FormatSet{MediaFormat::audio(48000, 2, SampleFormat::s16)} : offers);
    }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"xruns", xruns_.load(std::memory_order_relaxed)}};  // relaxed: statistics
    }

private:
    engine::BufferNeeds output_buffers(std::size_t) const override {
        return {std::size_t(settings_.period_frames) * output(0).format().frame_bytes(), 1};
    }
    Status start() override {
        xruns_.store(0, std::memory_order_relaxed);  // relaxed: statistics
        stall_ = detail::StallWatch();
        frames_ = 0;
        limit_.produced = 0;
        if (Status st = device_pcm_.open(settings_.device, SND_PCM_STREAM_CAPTURE, output(0).format(), settings_.period_frames, settings_.periods); !st)
            return st;
        stall_ = detail::StallWatch(settings_.stall_ns, engine::frames_to_ns(device_pcm_.period(), std::max(output(0).format().rate, 1)));
        if (int e = snd_pcm_start(device_pcm_.pcm()); e < 0)
            return {engine::GraphErrc::io_error, device_error(settings_.device, "cannot start capturing", e)};
        return {};
    }
    void stop() override { device_pcm_.close(); }
    void unblock() override { device_pcm_.wake(); }

    Flow produce() override {
        const MediaFormat& f = output(0).format();
        const std::int64_t start = engine::frames_to_ns(frames_, f.rate);
        if (limit_reached(limit_, start)) return Flow::end_of_stream;
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        const std::size_t frame_bytes = f.frame_bytes();
        const snd_pcm_uframes_t want = std::min<snd_pcm_uframes_t>(s->capacity() / frame_bytes, device_pcm_.period());
        auto* p = reinterpret_cast<std::uint8_t*>(s->data());
        snd_pcm_uframes_t got = 0;
        bool discontinuity = frames_ == 0;
        while (got < want) {
            const snd_pcm_sframes_t n = snd_pcm_readi(device_pcm_.pcm(), p + got * frame_bytes, want - got);
            if (n > 0) {
                got += snd_pcm_uframes_t(n);
                stall_.moved();
                continue;
            }
            if (n == -EAGAIN || n == 0) {
                if (stall_.stalled())
                    return report_error(make_error_code(engine::GraphErrc::io_error), "device '" + detail::printable(settings_.device) + "' gave no samples " + stall_.for_how_long());
                const Device::Wait w = device_pcm_.wait(stall_);
                if (w == Device::Wait::failed)
                    return report_error(make_error_code(engine::GraphErrc::io_error),
                                        "device '" + detail::printable(settings_.device) + "': poll failed: " + std::strerror(errno));
                if (w == Device::Wait::woken && stop_token().stop_requested()) return Flow::stopped;
                continue;
            }
            // An overrun: samples were lost; recovered, counted, and the next sample says so.
            if (n == -EPIPE || n == -ESTRPIPE) xruns_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
            if (int e = snd_pcm_recover(device_pcm_.pcm(), int(n), 1); e < 0)
                return report_error(make_error_code(engine::GraphErrc::io_error), device_error(settings_.device, "read failed", e));
            snd_pcm_start(device_pcm_.pcm());
            discontinuity = true;
        }
        (void)s->set_size(std::size_t(got) * frame_bytes);
        frames_ += got;
        s->set_times(start, engine::frames_to_ns(frames_, f.rate));
        if (discontinuity) s->add_flags(SampleFlags::discontinuity);
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    DeviceSettings settings_;
    Device device_pcm_;
    detail::StallWatch stall_;  // the streaming thread's
    engine::StreamLimit limit_;
    std::uint64_t frames_ = 0;
    std::atomic<std::uint64_t> xruns_{0};
};

}  // namespace

NodeSpec alsasink_spec() {
    std::vector<PropertySpec> properties = device_properties("play on");
    properties.push_back({"sync", "true", "in a clocked graph, wait for each sample's time too (false: the device alone paces); the clock's master never waits"});
    properties.push_back({"provide-clock", "true",
                          "the device is the graph's clock (other clocked renders follow it); not a device that keeps no time (alsa-lib's null plugin)"});
    return {"alsasink", Node::Kind::render, "plays audio on an ALSA device (xruns counted)", std::move(properties),
            factory<AlsaSink>()};
}

NodeSpec alsasrc_spec() {
    std::vector<PropertySpec> properties = device_properties("capture from");
    properties.push_back({"rate", "0", "sample rate, one the device takes (0: the device's, 48000 where it takes that)"});
    properties.push_back({"channels", "0", "channels when the device leaves them open (0: 2)"});
    properties.push_back(detail::num_buffers_property());
    return {"alsasrc", Node::Kind::source, "captures audio from an ALSA device (xruns counted)", std::move(properties),
            factory<AlsaSrc>()};
}

}  // namespace sluice::nodes

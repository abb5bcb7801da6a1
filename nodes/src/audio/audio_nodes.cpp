// SPDX-License-Identifier: MIT
// Audio sources and transforms: tone, noise, gain, mix, audioconvert.
#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>

#include <sluice/allocators/event_count.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cmath>
#include <cstring>
#include <numbers>
#include <optional>
#include <string_view>
#include <type_traits>
#include <vector>

namespace sluice::nodes {
namespace {

using engine::BufferNeeds;
using engine::Flow;
using engine::FormatSet;
using engine::InputNeeds;
using engine::MediaFormat;
using engine::SampleFormat;

constexpr std::int64_t kSecond = 1'000'000'000;

std::vector<std::string> sample_format_names() { return {"s16", "s24", "s32", "f32"}; }
SampleFormat sample_format_at(std::size_t i) {
    constexpr SampleFormat kFormats[] = {SampleFormat::s16, SampleFormat::s24, SampleFormat::s32, SampleFormat::f32};
    return kFormats[std::min<std::size_t>(i, 3)];
}

// Integer samples have a full scale of 2^(bits-1) both ways (s16: 32768), as ffmpeg's swresample
// has, so int -> float -> int is exact and int -> wider int is a shift. Float -> int rounds half
// away from zero and clamps (+1.0 becomes the largest value).
constexpr double kS16Scale = 32768.0, kS24Scale = 8388608.0, kS32Scale = 2147483648.0;

// Rounds with plain arithmetic (lrintf is a library call unless errno handling is off).
std::int16_t to_s16(float v) noexcept {
    const float scaled = v * 32768.0f;
    const int i = int(scaled + (scaled >= 0 ? 0.5f : -0.5f));
    return static_cast<std::int16_t>(i < -32768 ? -32768 : i > 32767 ? 32767 : i);
}
// s24 and s32 in double: a float's 24-bit mantissa cannot hold every s32 value.
std::int32_t to_int(double v, double scale) noexcept {
    const double scaled = v * scale;
    const double r = scaled + (scaled >= 0 ? 0.5 : -0.5);
    if (r >= scale) return std::int32_t(scale - 1);
    if (r <= -scale) return std::int32_t(-scale);
    return r == r ? std::int32_t(r) : 0;  // NaN is silence, never undefined behaviour
}

// Packed little-endian 24-bit samples: three bytes, any alignment.
void put_s24(std::byte* p, std::int32_t v) noexcept {
    p[0] = std::byte(v & 0xFF);
    p[1] = std::byte((v >> 8) & 0xFF);
    p[2] = std::byte((v >> 16) & 0xFF);
}
std::int32_t get_s24(const std::byte* p) noexcept {
    const std::uint32_t u = std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16;
    return std::int32_t(u << 8) >> 8;  // sign-extends (arithmetic shift, defined since C++20)
}

// `n` samples of format `f` as doubles at full scale 1.0: exact for every format.
void load_samples(SampleFormat f, const std::byte* in, double* out, std::size_t n) noexcept {
    switch (f) {
        case SampleFormat::s16: {
            const auto* src = reinterpret_cast<const std::int16_t*>(in);
            for (std::size_t i = 0; i < n; ++i) out[i] = double(src[i]) / kS16Scale;
            return;
        }
        case SampleFormat::s24:
            for (std::size_t i = 0; i < n; ++i) out[i] = double(get_s24(in + 3 * i)) / kS24Scale;
            return;
        case SampleFormat::s32: {
            const auto* src = reinterpret_cast<const std::int32_t*>(in);
            for (std::size_t i = 0; i < n; ++i) out[i] = double(src[i]) / kS32Scale;
            return;
        }
        case SampleFormat::f32: {
            const auto* src = reinterpret_cast<const float*>(in);
            for (std::size_t i = 0; i < n; ++i) out[i] = src[i];
            return;
        }
        case SampleFormat::any: break;
    }
    std::fill(out, out + n, 0.0);
}

// `n` doubles written as format `f`. s16 goes through to_s16(float), so f32 -> s16 rounds
// exactly as it always has.
void store_samples(SampleFormat f, const double* in, std::byte* out, std::size_t n) noexcept {
    switch (f) {
        case SampleFormat::s16: {
            auto* dst = reinterpret_cast<std::int16_t*>(out);
            for (std::size_t i = 0; i < n; ++i) dst[i] = to_s16(float(in[i]));
            return;
        }
        case SampleFormat::s24:
            for (std::size_t i = 0; i < n; ++i) put_s24(out + 3 * i, to_int(in[i], kS24Scale));
            return;
        case SampleFormat::s32: {
            auto* dst = reinterpret_cast<std::int32_t*>(out);
            for (std::size_t i = 0; i < n; ++i) dst[i] = to_int(in[i], kS32Scale);
            return;
        }
        case SampleFormat::f32: {
            auto* dst = reinterpret_cast<float*>(out);
            for (std::size_t i = 0; i < n; ++i) dst[i] = float(in[i]);
            return;
        }
        case SampleFormat::any: break;
    }
}

// Common to the generated-audio sources: format, buffer size, times and limits.
class AudioSource : public Node {
public:
    AudioSource(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        const auto rate = int(r.integer("rate", 1, 384000));
        const auto channels = int(r.integer("channels", 1, 64));
        const auto format = sample_format_at(r.choice("format", sample_format_names()));
        frames_ = std::size_t(r.integer("frames", 1, 1 << 20));
        scratch_.resize(r.ok() ? frames_ : 1);  // allocated here, never while streaming
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        amplitude_live_.set(float(r.number("amplitude", 0.0, 1.0)));
        add_output("src", {MediaFormat::audio(rate, channels, format)});
    }

protected:
    BufferNeeds output_buffers(std::size_t) const override { return {frames_ * output(0).format().frame_bytes(), 1}; }
    // Live: amplitude (and a subclass's own, through live_property).
    Status set_property(std::string_view key, std::string_view value) override {
        if (key != "amplitude") return live_property(key, value);
        double v = 0;
        Status st = PropertyReader::read_live(*this, key, value, [&](PropertyReader& r) { v = r.number(key, 0.0, 1.0); });
        if (st) amplitude_live_.set(float(v));
        return st;
    }
    Status get_property(std::string_view key, std::string& value) const override {
        if (key != "amplitude") return live_value(key, value);
        value = detail::number_text(amplitude_live_.get());
        return {};
    }
    virtual Status live_property(std::string_view key, std::string_view value) { return Node::set_property(key, value); }
    virtual Status live_value(std::string_view key, std::string& value) const { return Node::get_property(key, value); }

    Status start() override {
        limit_.produced = 0;
        frame_ = 0;
        amplitude_ = amplitude_live_.get();  // no ramp into the first buffer
        return {};
    }
    void flush() override {}  // keep the position: a flush drops samples, the tone goes on

    Flow produce() override {
        const MediaFormat& f = output(0).format();
        const std::int64_t start = engine::frames_to_ns(frame_, f.rate);
        const std::int64_t limit = media_limit_ns();
        if (limit_reached(limit_, start)) return Flow::end_of_stream;
        // The last buffer before a media duration is cut short, so the stream ends exactly there.
        std::size_t frames = frames_;
        if (limit >= 0) {
            const std::uint64_t end_frame = engine::frames_at_or_after(limit, f.rate);
            frames = std::size_t(std::min<std::uint64_t>(frames, end_frame - frame_));
        }
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        const std::size_t channels = std::size_t(f.channels);
        float* mono = scratch_.data();
        fill(mono, frames);
        apply_amplitude(mono, frames);
        switch (f.sample_format) {
            case SampleFormat::f32: {
                auto* out = reinterpret_cast<float*>(s->data());
                for (std::size_t i = 0; i < frames; ++i)
                    for (std::size_t c = 0; c < channels; ++c) out[i * channels + c] = mono[i];
                break;
            }
            case SampleFormat::s16: {
                auto* out = reinterpret_cast<std::int16_t*>(s->data());
                if (channels == 2) {  // the common case, written out so it vectorizes
                    for (std::size_t i = 0; i < frames; ++i) out[2 * i] = out[2 * i + 1] = to_s16(mono[i]);
                } else {
                    for (std::size_t i = 0; i < frames; ++i) {
                        const std::int16_t v = to_s16(mono[i]);
                        for (std::size_t c = 0; c < channels; ++c) out[i * channels + c] = v;
                    }
                }
                break;
            }
            case SampleFormat::s24: {
                std::byte* out = s->data();
                for (std::size_t i = 0; i < frames; ++i) {
                    const std::int32_t v = to_int(mono[i], kS24Scale);
                    for (std::size_t c = 0; c < channels; ++c) put_s24(out + 3 * (i * channels + c), v);
                }
                break;
            }
            case SampleFormat::s32: {
                auto* out = reinterpret_cast<std::int32_t*>(s->data());
                for (std::size_t i = 0; i < frames; ++i) {
                    const std::int32_t v = to_int(mono[i], kS32Scale);
                    for (std::size_t c = 0; c < channels; ++c) out[i * channels + c] = v;
                }
                break;
            }
            case SampleFormat::any: break;  // fixed by negotiation before streaming
        }
        (void)s->set_size(frames * f.frame_bytes());
        frame_ += frames;
        s->set_times(start, engine::frames_to_ns(frame_, f.rate));
        if (limit_.produced == 0) s->add_flags(SampleFlags::discontinuity);
        ++limit_.produced;
        return push(0, std::move(*s));
    }

    // Writes the next `frames` values, at full scale (-1..1), to `out`.
    virtual void fill(float* out, std::size_t frames) noexcept = 0;

    // Scales by the amplitude; after a live change, by a ramp from the old one to the new across
    // this buffer, so the level has no step: no click.
    void apply_amplitude(float* mono, std::size_t frames) noexcept {
        const float target = amplitude_live_.get();
        if (target == amplitude_ || frames == 0) {
            for (std::size_t i = 0; i < frames; ++i) mono[i] *= target;
            return;
        }
        const float from = amplitude_;
        for (std::size_t i = 0; i < frames; ++i) mono[i] *= from + (target - from) * float(i + 1) / float(frames);
        amplitude_ = target;
    }

    float amplitude_ = 0.5f;  // of the last buffer made
    detail::Live<float> amplitude_live_{0.5f};
    std::size_t frames_ = 1024;
    std::vector<float> scratch_;
    std::uint64_t frame_ = 0;
    engine::StreamLimit limit_;
};

// A phasor rotated by a fixed angle per frame (a multiply-add oscillator) instead of a sin()
// call per frame; re-anchored to the exact phase at every buffer, so rounding cannot drift.
class Tone final : public AudioSource {
public:
    Tone(std::string name, PropertyReader& r) : AudioSource(std::move(name), r) {
        freq_live_.set(r.number("freq", 0.0, 1e6));
    }

private:
    Status live_property(std::string_view key, std::string_view value) override {
        if (key != "freq") return AudioSource::live_property(key, value);
        double v = 0;
        Status st = PropertyReader::read_live(*this, key, value, [&](PropertyReader& r) { v = r.number(key, 0.0, 1e6); });
        if (st) freq_live_.set(v);
        return st;
    }
    Status live_value(std::string_view key, std::string& value) const override {
        if (key != "freq") return AudioSource::live_value(key, value);
        value = detail::number_text(freq_live_.get());
        return {};
    }
    Status start() override {
        phase_ = 0;
        freq_ = -1;  // the first fill() sets the steps
        return AudioSource::start();
    }
    // The phase carries over a live change of frequency: no jump in the wave, no click.
    void set_steps(double freq) noexcept {
        freq_ = freq;
        step_ = 2 * std::numbers::pi * freq / output(0).format().rate;
        step4_cos_ = std::cos(4 * step_);
        step4_sin_ = std::sin(4 * step_);
    }
    // Four phasors, one per lane, each rotated by four steps per iteration: no dependency between
    // lanes, so the loop vectorizes. Anchored to the exact phase at every buffer.
    void fill(float* out, std::size_t frames) noexcept override {
        if (const double freq = freq_live_.get(); freq != freq_) set_steps(freq);
        double c[4], s[4];
        for (int k = 0; k < 4; ++k) {
            c[k] = std::cos(phase_ + k * step_);
            s[k] = std::sin(phase_ + k * step_);
        }
        phase_ = std::fmod(phase_ + step_ * double(frames), 2 * std::numbers::pi);
        std::size_t i = 0;
        for (; i + 4 <= frames; i += 4)
            for (int k = 0; k < 4; ++k) {
                out[i + k] = float(s[k]);
                const double nc = c[k] * step4_cos_ - s[k] * step4_sin_;
                s[k] = s[k] * step4_cos_ + c[k] * step4_sin_;
                c[k] = nc;
            }
        for (int k = 0; i < frames; ++i, ++k) out[i] = float(s[k]);
    }
    detail::Live<double> freq_live_{440};
    double freq_ = 440, phase_ = 0, step_ = 0, step4_cos_ = 1, step4_sin_ = 0;
};

class Noise final : public AudioSource {
public:
    Noise(std::string name, PropertyReader& r) : AudioSource(std::move(name), r) {
        seed_ = std::uint64_t(r.integer("seed", 0, INT64_MAX)) | 1;
    }

private:
    Status start() override {
        state_ = seed_;
        return AudioSource::start();
    }
    void fill(float* out, std::size_t frames) noexcept override {
        for (std::size_t i = 0; i < frames; ++i) {
            // xorshift64*: fast, and the same seed gives the same noise.
            state_ ^= state_ >> 12;
            state_ ^= state_ << 25;
            state_ ^= state_ >> 27;
            const std::uint64_t r = state_ * 0x2545F4914F6CDD1DULL;
            out[i] = float(r >> 40) / float(1 << 23) - 1.0f;
        }
    }
    std::uint64_t seed_ = 1, state_ = 1;
};

std::vector<PropertySpec> audio_source_properties() {
    return {{"amplitude", "0.5", "peak level, linear 0..1", true},
            {"rate", "48000", "sample rate in Hz"},
            {"channels", "2", "channel count"},
            {"format", "s16", "sample format: s16|s24|s32|f32"},
            {"frames", "1024", "frames per buffer"},
            detail::num_buffers_property()};
}

// The bytes per buffer of the pool feeding input `i` (already sized: pools are set in graph
// order), so a transform's own pool matches what it receives.
std::size_t upstream_buffer_bytes(const Node& node, std::size_t input) {
    return node.input(input).peer()->allocator().properties().buffer_bytes;
}

// Gain: in place when the sample is ours alone, into a buffer of its own pool when shared.
class Gain final : public Node {
public:
    Gain(std::string name, PropertyReader& r) : Node(std::move(name), Kind::transform) {
        db_live_.set(r.number("db", -150.0, 60.0));
        // s16 and f32 only: other formats are refused at negotiation (audioconvert fixes that).
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16), MediaFormat::audio(0, 0, SampleFormat::f32)});
        add_output("src", {MediaFormat::audio(0, 0, SampleFormat::s16), MediaFormat::audio(0, 0, SampleFormat::f32)});
    }
    bool passes_through(std::size_t, std::size_t) const override { return true; }

private:
    BufferNeeds output_buffers(std::size_t) const override {
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < input_count(); ++i) bytes = std::max(bytes, upstream_buffer_bytes(*this, i));
        return {bytes, 1};
    }
    Status set_property(std::string_view key, std::string_view value) override {
        if (key != "db") return Node::set_property(key, value);
        double v = 0;
        Status st = PropertyReader::read_live(*this, key, value, [&](PropertyReader& r) { v = r.number(key, -150.0, 60.0); });
        if (st) db_live_.set(v);
        return st;
    }
    Status get_property(std::string_view key, std::string& value) const override {
        if (key != "db") return Node::get_property(key, value);
        value = detail::number_text(db_live_.get());
        return {};
    }
    Status start() override {
        set_factor(db_live_.get());
        return {};
    }
    void set_factor(double db) noexcept {
        db_ = db;
        factor_ = float(std::pow(10.0, db / 20.0));
        q16_ = std::int64_t(std::llround(std::pow(10.0, db / 20.0) * 65536.0));
    }
    // A live change of level: the factor moves from the old value to the new one frame by frame
    // across this buffer (a ramp, as a fader moves), so the wave has no step: no click.
    template <class T>
    void ramp(T* p, std::size_t samples, float from, float to) noexcept {
        const std::size_t channels = std::size_t(std::max(output(0).format().channels, 1));
        const std::size_t frames = samples / channels;
        for (std::size_t i = 0; i < frames; ++i) {
            const float f = from + (to - from) * float(i + 1) / float(frames);
            for (std::size_t c = 0; c < channels; ++c) {
                T& v = p[i * channels + c];
                if constexpr (std::is_same_v<T, float>) {
                    v *= f;
                } else {
                    v = to_s16(float(v) * f / 32768.0f);
                }
            }
        }
    }
    Flow process(std::size_t, SampleRef&& in) override {
        SampleRef out;
        if (in.use_count() == 1) {
            out = std::move(in);
        } else {  // shared (a tee upstream): never write into a buffer someone else reads
            auto s = get_buffer(0);
            if (!s) return buffer_failed(s.error());
            out = std::move(*s);
            std::memcpy(out.data(), in.data(), in.size());
            (void)out.set_size(in.size());
            out.set_times(in.start_time(), in.stop_time());
            out.set_flags(in.flags());
            in.reset();
        }
        const std::size_t n = out.size();
        const bool f32 = output(0).format().sample_format == SampleFormat::f32;
        if (const double db = db_live_.get(); db != db_) {
            const float from = factor_;
            set_factor(db);
            if (f32) ramp(reinterpret_cast<float*>(out.data()), n / 4, from, factor_);
            else ramp(reinterpret_cast<std::int16_t*>(out.data()), n / 2, from, factor_);
            return push(0, std::move(out));
        }
        if (f32) {
            auto* p = reinterpret_cast<float*>(out.data());
            for (std::size_t i = 0; i < n / 4; ++i) p[i] *= factor_;
        } else {
            // 16.16 fixed point, rounded to nearest: exact to 1 LSB and vectorizable.
            auto* p = reinterpret_cast<std::int16_t*>(out.data());
            if (q16_ <= 65536) {  // attenuation: the product fits 32 bits
                const auto q = std::int32_t(q16_);
                for (std::size_t i = 0; i < n / 2; ++i) p[i] = std::int16_t((std::int32_t(p[i]) * q + 32768) >> 16);
            } else {
                for (std::size_t i = 0; i < n / 2; ++i) {
                    const std::int64_t v = (std::int64_t(p[i]) * q16_ + 32768) >> 16;
                    p[i] = std::int16_t(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
                }
            }
        }
        return push(0, std::move(out));
    }
    detail::Live<double> db_live_{0};
    double db_ = 0;  // what factor_ and q16_ were made from
    float factor_ = 1;
    std::int64_t q16_ = 65536;
};

// The matrix that mixes `in` channels into `out` (row-major, out x in), or false when there is
// no sensible one. Channel orders are WAV's and ffmpeg's defaults for the count: 1 is mono,
// 2 is FL FR, 6 is 5.1 (FL FR FC LFE SL SR, or BL BR: the same weights either way).
//   same count       identity
//   1 -> M           mono copied to FL and FR (to the one channel when M is 1), the rest silent
//   5.1 -> 2         ITU-R BS.775: L = FL + k FC + k SL, R = FR + k FC + k SR with k = 1/sqrt(2),
//                    LFE dropped, scaled by 1 / (1 + 2k) so it cannot clip (the weights and the
//                    normalisation swresample uses for `ffmpeg -ac 2` to an integer format)
//   5.1 -> 1         the average of that stereo pair
//   N -> 1           the average of every channel
//   2 -> M           FL and FR copied, the rest silent
// Anything else (4 -> 2: quad or 4.0?) needs a layout the format does not carry: refused.
bool channel_matrix(int in, int out, std::vector<double>& m) {
    m.assign(std::size_t(in) * std::size_t(out), 0.0);
    auto at = [&](int o, int i) -> double& { return m[std::size_t(o) * std::size_t(in) + std::size_t(i)]; };
    constexpr double k = std::numbers::sqrt2 / 2;
    constexpr double norm = 1 / (1 + 2 * k);
    if (in == out) {
        for (int c = 0; c < in; ++c) at(c, c) = 1;
    } else if (in == 1) {
        for (int o = 0; o < std::min(out, 2); ++o) at(o, 0) = 1;
    } else if (in == 6 && out <= 2) {
        const double share = out == 1 ? 0.5 : 1.0;  // mono: the average of L and R
        for (int side = 0; side < 2; ++side) {
            const int o = out == 1 ? 0 : side;
            at(o, side) += share * norm;         // FL or FR
            at(o, 2) += share * k * norm;        // FC
            at(o, 4 + side) += share * k * norm;  // SL or SR
        }
    } else if (out == 1) {
        for (int c = 0; c < in; ++c) at(0, c) = 1.0 / in;
    } else if (in == 2) {
        at(0, 0) = at(1, 1) = 1;
    } else {
        return false;
    }
    return true;
}

// audioconvert: sample format (s16, s24, s32, f32) and channel count. Each block of up to
// kBlockFrames frames is read into doubles (exact for every format, s32 included), mixed through
// channel_matrix() when the count changes, and written in the output format. Hand-written rather
// than swresample so that it is real-time safe: the matrix and both scratch blocks are allocated
// in configure() on the control thread, and process() only reads and writes them (no
// allocation, lock or system call per buffer).
class AudioConvert final : public Node {
public:
    AudioConvert(std::string name, PropertyReader& r) : Node(std::move(name), Kind::transform) {
        const std::size_t format = r.choice("format", {"auto", "s16", "s24", "s32", "f32"});
        if (format != 0) target_ = sample_format_at(format - 1);
        const std::string channels = r.text("channels");
        if (channels != "auto") {
            // Digits only (strtol would take " 2" and "+2").
            const bool digits = !channels.empty() && channels.size() <= 2 &&
                                std::all_of(channels.begin(), channels.end(), [](char c) { return c >= '0' && c <= '9'; });
            channels_ = digits ? std::stoi(channels) : -1;
            if (channels_ < 0 || channels_ > 64)
                r.fail(make_error_code(engine::GraphErrc::invalid_argument),
                       "property channels='" + detail::printable(channels) + "' is not auto or a channel count from 0 to 64");
        }
        add_input("sink", {MediaFormat::audio()});
        add_output("src", {MediaFormat::audio()});
    }
    bool passes_through(std::size_t, std::size_t) const override { return same_; }

private:
    static constexpr std::size_t kBlockFrames = 256;

    // The input's format with `format=` and `channels=` applied. With format=auto, the input's
    // sample format first (no conversion is the best conversion), then the others, so that the
    // next node picks: `audioconvert channels=2` changes the channel count alone.
    FormatSet output_formats(std::size_t) const override {
        MediaFormat f = input(0).format();
        if (channels_ != 0) f.channels = channels_;
        if (target_ != SampleFormat::any) {
            f.sample_format = target_;
            return {f};
        }
        FormatSet set{f};
        for (std::size_t i = 0; i < 4; ++i) {
            MediaFormat other = f;
            other.sample_format = sample_format_at(i);
            if (other.sample_format != f.sample_format) set.push_back(other);
        }
        return set;
    }
    Status configure() override {
        const MediaFormat& in = input(0).format();
        const MediaFormat& out = output(0).format();
        same_ = in.sample_format == out.sample_format && in.channels == out.channels;
        mixes_ = in.channels != out.channels;
        if (!channel_matrix(in.channels, out.channels, matrix_))
            return {engine::GraphErrc::unsupported_format,
                    name() + ": no channel mix from " + std::to_string(in.channels) + " to " + std::to_string(out.channels) +
                        " channels (it mixes mono to any count, any count to mono, stereo up, 5.1 to stereo)"};
        in_block_.assign(kBlockFrames * std::size_t(in.channels), 0.0);
        out_block_.assign(kBlockFrames * std::size_t(out.channels), 0.0);
        return {};
    }
    BufferNeeds output_buffers(std::size_t) const override {
        const std::size_t in_bytes = upstream_buffer_bytes(*this, 0);
        const std::size_t frames = in_bytes / std::max<std::size_t>(input(0).format().frame_bytes(), 1);
        return {std::max<std::size_t>(frames * output(0).format().frame_bytes(), 1), 1};
    }
    Flow process(std::size_t, SampleRef&& in) override {
        if (same_) return push(0, std::move(in));
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        SampleRef out = std::move(*s);
        const MediaFormat& fi = input(0).format();
        const MediaFormat& fo = output(0).format();
        const std::size_t in_channels = std::size_t(fi.channels), out_channels = std::size_t(fo.channels);
        const std::size_t in_frame = fi.frame_bytes(), out_frame = fo.frame_bytes();
        const std::size_t frames = std::min(in.size() / in_frame, out.capacity() / out_frame);
        for (std::size_t done = 0; done < frames;) {
            const std::size_t n = std::min(kBlockFrames, frames - done);
            double* block = in_block_.data();
            load_samples(fi.sample_format, in.data() + done * in_frame, block, n * in_channels);
            if (mixes_) {
                double* mixed = out_block_.data();
                for (std::size_t i = 0; i < n; ++i) {
                    const double* x = block + i * in_channels;
                    for (std::size_t o = 0; o < out_channels; ++o) {
                        const double* row = matrix_.data() + o * in_channels;
                        double sum = 0;
                        for (std::size_t c = 0; c < in_channels; ++c) sum += row[c] * x[c];
                        mixed[i * out_channels + o] = sum;
                    }
                }
                block = mixed;
            }
            store_samples(fo.sample_format, block, out.data() + done * out_frame, n * out_channels);
            done += n;
        }
        (void)out.set_size(frames * out_frame);
        out.set_times(in.start_time(), in.stop_time());
        out.set_flags(in.flags());
        in.reset();
        return push(0, std::move(out));
    }
    SampleFormat target_ = SampleFormat::any;  // any: format=auto
    int channels_ = 0;                         // 0: keep the input's
    bool same_ = false;
    bool mixes_ = false;
    std::vector<double> matrix_;     // out x in, row-major; set by configure()
    std::vector<double> in_block_;   // kBlockFrames frames of input, as doubles
    std::vector<double> out_block_;  // the same frames mixed
};

// Mix: N audio inputs of one format into one output, by time. Each input has a slot holding its
// current sample and how much of it has been mixed; the thread whose sample completes the set
// mixes as many frames as every live input has left (inputs may send buffers of different
// sizes), pushes them, and frees the slots it used up (so pushes downstream are serialised even
// though they come from different sources' threads). A thread whose slot is still full waits (on
// an EventCount, woken by the mix, by unblock() on stop/flush, or by its stop token), which is
// what keeps fast sources in step with slow ones. An input at end of stream counts as silence.
class Mix final : public Node {
public:
    Mix(std::string name, PropertyReader& r) : Node(std::move(name), Kind::transform) {
        add_output("src", {MediaFormat::audio()});
        // The inputs come later, one per link; their gains may be given now (`sink_1::db=-6`).
        for (const std::string& key : r.given_keys()) {
            if (!key.starts_with("sink_") || !key.ends_with("::db")) continue;  // `name`, given to create_node
            const std::size_t i = input_of_gain_key(key);
            if (i == kMaxInputs) {  // the registry let it through as an instance of sink_%u::db
                r.fail(engine::GraphErrc::invalid_argument,
                       "property " + key + ": a mix has at most " + std::to_string(kMaxInputs) + " inputs");
                break;
            }
            slots_[i].db_live.set(r.number(key, kMinDb, kMaxDb));
            gains_given_ = std::max(gains_given_, i + 1);
        }
    }

    bool request_input() override {
        if (input_count() >= kMaxInputs) return false;
        // s16 and f32 only (what mix_and_push adds): others are refused at negotiation.
        add_input("sink_" + std::to_string(input_count()),
                  {MediaFormat::audio(0, 0, SampleFormat::s16), MediaFormat::audio(0, 0, SampleFormat::f32)},
                  InputNeeds{.holds = 1});
        return true;
    }

private:
    static constexpr std::size_t kMaxInputs = 32;
    static constexpr double kMinDb = -150, kMaxDb = 60;  // as gain's
    struct Slot {
        SampleRef sample;
        std::size_t used = 0;  // bytes of `sample` mixed already; written by the mixing thread
        std::atomic<bool> full{false};
        std::atomic<bool> ended{false};
        // The input's level: set by the control thread, picked up by whichever thread mixes next.
        detail::Live<double> db_live{0};
        // What the mixing thread applies (ordered between mixing threads by filled_, as `used`).
        double db = 0;
        float factor = 1;
        std::int64_t q16 = 65536;  // the factor in 16.16 fixed point, for s16
        // A ramp under way: from `ramp_from` to `factor` over `ramp_frames`, `ramp_done` of them
        // mixed so far (it may span several mixes when inputs' buffers differ in size).
        float ramp_from = 1;
        std::size_t ramp_frames = 0, ramp_done = 0;
        void set_level(double new_db) noexcept {
            db = new_db;
            const double f = std::pow(10.0, new_db / 20.0);
            factor = float(f);
            q16 = std::llround(f * 65536.0);
        }
        // The factor for the next frame: on the ramp, or the level itself.
        float current_factor() const noexcept {
            if (ramp_done >= ramp_frames) return factor;
            return ramp_from + (factor - ramp_from) * float(ramp_done) / float(ramp_frames);
        }
    };

    static std::string gain_key(std::size_t input) { return "sink_" + std::to_string(input) + "::db"; }
    // The input a `sink_N::db` key names, or kMaxInputs when it names none.
    static std::size_t input_of_gain_key(std::string_view key) {
        constexpr std::string_view head = "sink_", tail = "::db";
        if (!key.starts_with(head) || !key.ends_with(tail) || key.size() <= head.size() + tail.size()) return kMaxInputs;
        const std::string_view digits = key.substr(head.size(), key.size() - head.size() - tail.size());
        if (digits.size() > 1 && digits[0] == '0') return kMaxInputs;  // one spelling per input, as the registry's
        std::size_t i = 0;
        const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), i);
        if (ec != std::errc() || end != digits.data() + digits.size() || i >= kMaxInputs) return kMaxInputs;
        return i;
    }

    // Live: each input's `sink_N::db`, ramped over the next buffer mixed.
    Status set_property(std::string_view key, std::string_view value) override {
        const std::size_t i = input_of_gain_key(key);
        if (i == kMaxInputs) return Node::set_property(key, value);
        if (i >= input_count())
            return {engine::GraphErrc::invalid_argument, name() + ": no input sink_" + std::to_string(i) + " (it has " +
                                                             std::to_string(input_count()) + ")"};
        double v = 0;
        Status st = PropertyReader::read_live(*this, key, value, [&](PropertyReader& r) { v = r.number(key, kMinDb, kMaxDb); });
        if (st) slots_[i].db_live.set(v);
        return st;
    }
    Status get_property(std::string_view key, std::string& value) const override {
        const std::size_t i = input_of_gain_key(key);
        if (i == kMaxInputs || i >= std::max(input_count(), gains_given_)) return Node::get_property(key, value);
        value = detail::number_text(slots_[i].db_live.get());
        return {};
    }

    FormatSet output_formats(std::size_t) const override {
        return input_count() ? FormatSet{input(0).format()} : FormatSet{};
    }
    Status configure() override {
        if (input_count() == 0) return {engine::GraphErrc::not_linked, "mix has no inputs"};
        if (gains_given_ > input_count())
            return {engine::GraphErrc::invalid_argument, name() + ": " + gain_key(gains_given_ - 1) + " given, but it has " +
                                                             std::to_string(input_count()) + " inputs (sink_0 to sink_" +
                                                             std::to_string(input_count() - 1) + ")"};
        for (std::size_t i = 1; i < input_count(); ++i) {
            const MediaFormat& first = input(0).format();
            const MediaFormat& other = input(i).format();
            if (other == first) continue;
            // The converter that fixes it, written as it would go into the pipeline.
            std::string advice;
            if (other.rate != first.rate) advice = "audioresample rate=" + std::to_string(first.rate);
            if (other.sample_format != first.sample_format || other.channels != first.channels) {
                if (!advice.empty()) advice += " ! ";
                advice += "audioconvert";
                if (other.sample_format != first.sample_format)
                    advice += std::string(" format=") + engine::to_string(first.sample_format);
                if (other.channels != first.channels) advice += " channels=" + std::to_string(first.channels);
            }
            advice = "put '" + advice + "' before it";
            return {engine::GraphErrc::not_linked, "inputs must share one format: " + input(0).full_name() + " carries " +
                                                       first.to_string() + ", " + input(i).full_name() + " carries " +
                                                       other.to_string() + " (" + advice + ")"};
        }
        return {};
    }
    BufferNeeds output_buffers(std::size_t) const override {
        std::size_t bytes = 0;
        for (std::size_t i = 0; i < input_count(); ++i) bytes = std::max(bytes, upstream_buffer_bytes(*this, i));
        return {bytes, 1};
    }
    Status start() override {
        reset_slots();
        for (auto& slot : slots_) {  // no ramp into the first buffer
            slot.set_level(slot.db_live.get());
            slot.ramp_frames = slot.ramp_done = 0;
        }
        return {};
    }
    void stop() override { reset_slots(); }
    void flush() override {
        for (auto& slot : slots_) {
            slot.sample.reset();
            slot.used = 0;
            slot.full.store(false, std::memory_order_relaxed);  // relaxed: threads are parked
        }
        filled_.store(ended_count(), std::memory_order_relaxed);  // relaxed: as above
        // A paused graph's clocked render parks inside present(), so a mixing thread may be
        // inside mix_and_push's push (or get_buffer) now: the set it was mixing is gone, and it
        // must not free slots that the other inputs may be filling anew once the gate opens.
        // release: pairs with the acquire load in mix_and_push after it comes back.
        flushes_.fetch_add(1, std::memory_order_release);
    }
    void unblock() override { wake(); }

    void reset_slots() {
        for (auto& slot : slots_) {
            slot.sample.reset();
            slot.used = 0;
            // relaxed: no streaming thread runs during start()/stop().
            slot.full.store(false, std::memory_order_relaxed);
            slot.ended.store(false, std::memory_order_relaxed);
        }
        filled_.store(0, std::memory_order_relaxed);
        ended_inputs_.store(0, std::memory_order_relaxed);
    }
    std::uint32_t ended_count() const {
        std::uint32_t n = 0;
        for (std::size_t i = 0; i < input_count(); ++i) n += slots_[i].ended.load(std::memory_order_relaxed);
        return n;
    }
    void wake() noexcept { slot_freed_.notify_all(); }

    // Waits until slot i is free. ok, or stopped/flushing.
    Flow wait_for_slot(std::size_t i) noexcept {
        for (;;) {
            const std::uint32_t ticket = slot_freed_.prepare_wait();
            // acquire: pairs with the mixer's release store that emptied the slot.
            if (!slots_[i].full.load(std::memory_order_acquire)) return Flow::ok;
            if (stop_token().stop_requested()) return Flow::stopped;
            if (flushing()) return Flow::flushing;
            slot_freed_.wait(ticket, -1, &stop_token());
        }
    }

    // Counts one more full (or ended) slot; the one completing the set mixes.
    Flow arrive() noexcept {
        // acq_rel: the completing thread must see every other slot's sample.
        if (filled_.fetch_add(1, std::memory_order_acq_rel) + 1 == input_count()) return mix_and_push();
        return Flow::ok;
    }

    Flow process(std::size_t i, SampleRef&& s) override {
        if (Flow f = wait_for_slot(i); f != Flow::ok) {
            if (f == Flow::flushing) count_drop();
            return f;
        }
        slots_[i].sample = std::move(s);
        slots_[i].used = 0;
        // release: publishes the sample to the thread that mixes.
        slots_[i].full.store(true, std::memory_order_release);
        return arrive();
    }

    void end_of_stream(std::size_t i) override {
        if (wait_for_slot(i) != Flow::ok) return;
        // relaxed: published by the acq_rel increment in arrive().
        slots_[i].ended.store(true, std::memory_order_relaxed);
        const std::uint32_t ended = ended_inputs_.fetch_add(1, std::memory_order_acq_rel) + 1;  // acq_rel: counts once
        if (ended == input_count()) {
            push_end_of_stream(0);
            return;
        }
        (void)arrive();
    }

    // Adds `samples` of one input into `dst` at the input's level. At 0 dB a plain sum (exact, as
    // before levels existed); after a live change, the factor moves from where it was to the new
    // level frame by frame over one of that input's buffers (`ramp_frames`), as gain's does, even
    // when the buffer is mixed in several parts: no step, no click.
    template <class T>
    static void mix_in(Slot& slot, T* dst, const T* src, std::size_t samples, int channel_count,
                       std::size_t ramp_frames) noexcept {
        constexpr bool is_float = std::is_same_v<T, float>;
        auto add = [](T& d, float v) {
            if constexpr (is_float) d += v;
            else d = T(std::clamp(long(d) + std::lround(v), -32768L, 32767L));
        };
        if (const double target = slot.db_live.get(); target != slot.db) {
            slot.ramp_from = slot.current_factor();
            slot.set_level(target);
            slot.ramp_frames = std::max<std::size_t>(ramp_frames, 1);
            slot.ramp_done = 0;
        }
        const std::size_t channels = std::size_t(std::max(channel_count, 1));
        const std::size_t frames = samples / channels;
        std::size_t i = 0;
        for (; i < frames && slot.ramp_done < slot.ramp_frames; ++i) {
            ++slot.ramp_done;
            const float g = slot.ramp_from + (slot.factor - slot.ramp_from) * float(slot.ramp_done) / float(slot.ramp_frames);
            for (std::size_t c = 0; c < channels; ++c) add(dst[i * channels + c], float(src[i * channels + c]) * g);
        }
        if (i == frames) return;
        dst += i * channels;
        src += i * channels;
        samples -= i * channels;
        if (slot.db == 0) {
            if constexpr (is_float) {
                for (std::size_t k = 0; k < samples; ++k) dst[k] += src[k];
            } else {
                for (std::size_t k = 0; k < samples; ++k) dst[k] = T(std::clamp(int(dst[k]) + int(src[k]), -32768, 32767));
            }
        } else if constexpr (is_float) {
            for (std::size_t k = 0; k < samples; ++k) dst[k] += src[k] * slot.factor;
        } else {
            // 16.16 fixed point, rounded to nearest, as gain's.
            for (std::size_t k = 0; k < samples; ++k) {
                const std::int64_t v = dst[k] + ((std::int64_t(src[k]) * slot.q16 + 32768) >> 16);
                dst[k] = T(v < -32768 ? -32768 : v > 32767 ? 32767 : v);
            }
        }
    }

    // Every live slot is full: mix what they all have, as many times as it takes to use one up.
    Flow mix_and_push() noexcept {
        // acquire: pairs with flush(); a change after get_buffer or push means a flush emptied
        // the slots meanwhile (see flush()).
        const std::uint32_t flushes = flushes_.load(std::memory_order_acquire);
        auto flushed = [&] { return flushes_.load(std::memory_order_acquire) != flushes; };
        const MediaFormat& f = output(0).format();
        const std::size_t frame = f.frame_bytes();
        const bool f32 = f.sample_format == SampleFormat::f32;
        for (;;) {
            std::size_t bytes = SIZE_MAX;
            const Slot* first = nullptr;
            for (std::size_t i = 0; i < input_count(); ++i) {
                const Slot& slot = slots_[i];
                // relaxed: ordered by filled_'s acq_rel, as the samples are.
                if (slot.ended.load(std::memory_order_relaxed) || !slot.sample) continue;
                bytes = std::min(bytes, slot.sample.size() - slot.used);
                if (!first) first = &slot;
            }
            auto got = get_buffer(0);
            if (flushed()) return Flow::flushing;
            if (!got) {
                release_slots(true);
                return buffer_failed(got.error());
            }
            SampleRef out = std::move(*got);
            bytes = first ? std::min(bytes, out.capacity()) : 0;
            bytes -= bytes % frame;
            std::memset(out.data(), 0, bytes);
            bool discontinuity = false;
            for (std::size_t i = 0; i < input_count(); ++i) {
                Slot& slot = slots_[i];
                if (slot.ended.load(std::memory_order_relaxed) || !slot.sample) continue;  // relaxed: as above
                const std::byte* in = slot.sample.data() + slot.used;
                discontinuity = discontinuity || (slot.used == 0 && slot.sample.has(SampleFlags::discontinuity));
                const std::size_t buffer_frames = slot.sample.size() / frame;  // a ramp lasts one of them
                if (f32)
                    mix_in(slot, reinterpret_cast<float*>(out.data()), reinterpret_cast<const float*>(in), bytes / 4, f.channels,
                           buffer_frames);
                else
                    mix_in(slot, reinterpret_cast<std::int16_t*>(out.data()), reinterpret_cast<const std::int16_t*>(in), bytes / 2,
                           f.channels, buffer_frames);
            }
            (void)out.set_size(bytes);
            if (first && first->sample.start_time() != kNoTime) {
                const MediaTime start =
                    first->sample.start_time() + engine::frames_to_ns(first->used / frame, f.rate);
                out.set_times(start, start + engine::frames_to_ns(bytes / frame, f.rate));
            }
            if (discontinuity) out.add_flags(SampleFlags::discontinuity);
            bool used_up = first == nullptr || bytes == 0;
            for (std::size_t i = 0; i < input_count(); ++i) {
                Slot& slot = slots_[i];
                if (slot.ended.load(std::memory_order_relaxed) || !slot.sample) continue;  // relaxed: as above
                slot.used += bytes;
                used_up = used_up || slot.used >= slot.sample.size() - slot.sample.size() % frame;
            }
            // Push before the slots are freed: the next set cannot complete (on another thread)
            // until this push has returned, so the node downstream never runs on two threads at once.
            const Flow flow = bytes != 0 ? push(0, std::move(out)) : Flow::ok;
            if (flushed()) return Flow::flushing;
            if (used_up || flow != Flow::ok) {
                release_slots(flow != Flow::ok);
                return flow;
            }
        }
    }

    // Frees the slots whose sample is used up (all of them with `all`: the stream is over or
    // failed), then wakes their threads.
    void release_slots(bool all) noexcept {
        const std::size_t frame = output(0).format().frame_bytes();
        std::uint32_t freed = 0;
        bool free_it[kMaxInputs] = {};
        for (std::size_t i = 0; i < input_count(); ++i) {
            const Slot& slot = slots_[i];
            if (slot.ended.load(std::memory_order_relaxed)) continue;  // relaxed: as in mix
            free_it[i] = all || !slot.sample || slot.used >= slot.sample.size() - slot.sample.size() % frame;
            freed += free_it[i];
        }
        // The count goes down first: no slot can be refilled (and counted) before it is emptied.
        // acq_rel: orders the decrement (and every `used` written above) before the slot stores
        // below, and publishes the partly used slots' `used` to the next mixing thread.
        filled_.fetch_sub(freed, std::memory_order_acq_rel);
        for (std::size_t i = 0; i < input_count(); ++i) {
            if (!free_it[i]) continue;
            slots_[i].sample.reset();
            slots_[i].used = 0;
            // release: the waiting thread of this input may fill the slot again.
            slots_[i].full.store(false, std::memory_order_release);
        }
        wake();
    }

    std::array<Slot, kMaxInputs> slots_;
    std::atomic<std::uint32_t> filled_{0};
    std::atomic<std::uint32_t> ended_inputs_{0};
    std::atomic<std::uint32_t> flushes_{0};  // flush() calls, so a mixing thread notices one under it
    EventCount slot_freed_;  // notified when the mix empties the slots, on unblock() and on stop
    std::size_t gains_given_ = 0;  // one past the highest input whose level the pipeline gave
};

}  // namespace

NodeSpec tone_spec() {
    auto props = audio_source_properties();
    props.insert(props.begin(), {"freq", "440", "frequency in Hz; a live change keeps the phase", true});
    return {"tone", Node::Kind::source, "sine tone", props,
            factory<Tone>()};
}

NodeSpec noise_spec() {
    auto props = audio_source_properties();
    props.push_back({"seed", "1", "random seed (the same seed gives the same noise)"});
    return {"noise", Node::Kind::source, "white noise", props,
            factory<Noise>()};
}

NodeSpec gain_spec() {
    return {"gain", Node::Kind::transform, "changes the level by a number of decibels",
            {{"db", "0", "gain in dB (negative attenuates); a live change ramps over one buffer", true}},
            factory<Gain>()};
}

NodeSpec mix_spec() {
    return {"mix", Node::Kind::transform,
            "mixes any number of audio inputs of one format by media time (each link adds an input; buffer sizes may differ)",
            {{"sink_%u::db", "0", "level of input N in dB (sink_1::db=-6); a live change ramps over one buffer", true}},
            factory<Mix>()};
}

NodeSpec audioconvert_spec() {
    return {"audioconvert", Node::Kind::transform, "converts the sample format and mixes channels (mono, stereo, 5.1 down)",
            {{"format", "auto", "output sample format: auto (the input's, or what the next node takes)|s16|s24|s32|f32"},
             {"channels", "auto", "output channel count: auto (0) keeps the input's; 1->N copies, N->1 averages, 5.1->2 is ITU-R BS.775"}},
            factory<AudioConvert>()};
}

}  // namespace sluice::nodes

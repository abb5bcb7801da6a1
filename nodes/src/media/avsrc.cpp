// SPDX-License-Identifier: MIT
// avsrc: any media file FFmpeg reads (MP3, AAC, Opus, Vorbis, FLAC, WAV of every kind; H.264,
// VP9, MPEG-4, FFV1 ... in MP4, MKV, WebM, Ogg, AVI), demuxed by libavformat and decoded by
// libavcodec. Audio leaves as interleaved s16 or f32 (as negotiated downstream), converted by
// libswresample; video as I420 or RGBA. Output pins `audio` and `video`; each may stay unlinked,
// and then its stream is not decoded at all. FFmpeg's own log goes to the engine's log handler
// (media/ffmpeg.hpp).
//
// Pictures go straight from the decoder into pool buffers when they can: the decoder's
// get_buffer2 is served by the video pin's SampleAllocator, with the strides and padded rows
// avcodec_align_dimensions2 asks for, so the sample pushed downstream is the memory the decoder
// wrote (and, while it is a reference picture, still reads). That takes an I420 decoder that
// honours get_buffer2 (AV_CODEC_CAP_DR1) and a downstream that reads padded pictures
// (MediaFormat::kAnyLayout); otherwise each picture is copied (or converted by libswscale) once
// into a packed pool buffer, and counted in the node's `copies` stat.
//
// The allocator's contract reaches the decoder's threads: a decoder thread waiting in
// get_buffer2 on an empty pool wakes when the graph stops (decommit), and the decoder is told
// the picture failed.
//
// FFmpeg rather than our own parsers: these formats are what FFmpeg exists for. The streaming
// thread allocates and may block inside FFmpeg (its decoders do); a file source is not a
// real-time callback, and the pools still bound what is in flight.
#include "core/common.hpp"
#include "media/ffmpeg.hpp"
#include "video/picture.hpp"
#include "video/swscale.hpp"
#include <sluice/nodes/registry.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/channel_layout.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <charconv>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <sched.h>
#include <thread>
#include <unistd.h>

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::MediaFormat;
using engine::PixelFormat;
using engine::SampleFormat;
using detail::av_message;
using detail::CodecPtr;

struct FormatCloser {
    void operator()(AVFormatContext* f) const noexcept { avformat_close_input(&f); }
};
using FormatPtr = std::unique_ptr<AVFormatContext, FormatCloser>;

// Which stream of a kind a property asks for: the best one (as ffmpeg picks), an index, none.
struct StreamChoice {
    enum class Mode { best, index, none } mode = Mode::best;
    int index = -1;
};

StreamChoice read_stream_choice(PropertyReader& r, std::string_view key) {
    const std::string v = r.text(key);
    if (v.empty() || v == "auto") return {};
    if (v == "none") return {StreamChoice::Mode::none, -1};
    int index = -1;
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), index);
    if (ec != std::errc() || end != v.data() + v.size() || index < 0 || index > 65535) {
        r.fail(make_error_code(engine::GraphErrc::invalid_argument),
               std::string(key) + "='" + detail::printable(v) + "': expected auto, none or a stream index");
        return {StreamChoice::Mode::none, -1};
    }
    return {StreamChoice::Mode::index, index};
}

// An opened file: the demuxer and the streams picked for audio and video (-1: none).
struct OpenedFile {
    FormatPtr format;
    int audio = -1;
    int video = -1;
};

Status open_media(const std::string& path, StreamChoice audio, StreamChoice video, OpenedFile& out) {
    // Refuse FIFOs and devices before FFmpeg blocks in open() on them (issue #17: never hang).
    std::string error;
    const int fd = detail::open_regular_file(path, error);
    if (fd < 0) return {engine::GraphErrc::io_error, path + ": " + error};
    ::close(fd);
    AVFormatContext* raw = nullptr;
    // "file:" so that a name with a colon ("12:00.wav", "pipe:1") is a file, not a protocol.
    if (int e = avformat_open_input(&raw, ("file:" + path).c_str(), nullptr, nullptr); e < 0)
        return {engine::GraphErrc::corrupt_file, path + ": " + av_message(e)};
    out.format.reset(raw);
    // A format FFmpeg only guessed at (the score at which it warns "misdetection possible"; about
    // one file of random bytes in 200 reads as EA's ADPCM this way) is no media file: decoding it
    // would end in exit 0 with noise.
    if (raw->probe_score <= AVPROBE_SCORE_RETRY)
        return {engine::GraphErrc::corrupt_file, path + ": not a media file FFmpeg recognises (its best guess, " +
                                                     std::string(raw->iformat ? raw->iformat->name : "?") + ", scored " +
                                                     std::to_string(raw->probe_score) + " of 100)"};
    if (int e = avformat_find_stream_info(raw, nullptr); e < 0)
        return {engine::GraphErrc::corrupt_file, path + ": cannot read its streams: " + av_message(e)};
    auto pick = [&](StreamChoice choice, AVMediaType type, const char* kind, int& index) -> Status {
        index = -1;
        if (choice.mode == StreamChoice::Mode::none) return {};
        if (choice.mode == StreamChoice::Mode::index) {
            if (choice.index >= int(raw->nb_streams))
                return {engine::GraphErrc::invalid_argument, path + " has no stream " + std::to_string(choice.index) +
                                                                 " (it has " + std::to_string(raw->nb_streams) + ")"};
            if (raw->streams[choice.index]->codecpar->codec_type != type)
                return {engine::GraphErrc::invalid_argument,
                        path + ": stream " + std::to_string(choice.index) + " is not " + kind};
            index = choice.index;
            return {};
        }
        const int best = av_find_best_stream(raw, type, -1, -1, nullptr, 0);
        index = best >= 0 ? best : -1;
        return {};
    };
    if (Status st = pick(audio, AVMEDIA_TYPE_AUDIO, "audio", out.audio); !st) return st;
    if (Status st = pick(video, AVMEDIA_TYPE_VIDEO, "video", out.video); !st) return st;
    return {};
}

// Decoder threads when `threads=0`: one per core this process may run on (its affinity mask, as
// taskset or a container's cpuset sets it). FFmpeg's own automatic count is cores + 1; with as
// many frame threads as cores the H.264 decoder's threads stop displacing each other: 720p H.264
// decodes in 1.20 s instead of 1.37 s on 2 cores, for the ffmpeg CLI (-threads 2 against its
// default) alike (bench/README.md). VP9, FFV1 and MPEG-4 Part 2 measured level either way.
int threads_per_core() {
    cpu_set_t set;
    CPU_ZERO(&set);
    int cores = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : int(std::thread::hardware_concurrency());
    return std::clamp(cores, 1, 16);
}

// `prepare` sets what must be set before the decoder opens (our get_buffer2).
template <class Prepare>
Status open_decoder(const std::string& path, AVStream* stream, int threads, CodecPtr& out, Prepare&& prepare) {
    const AVCodec* codec = avcodec_find_decoder(stream->codecpar->codec_id);
    if (!codec)
        return {engine::GraphErrc::unsupported_format, path + ": stream " + std::to_string(stream->index) +
                                                           ": no decoder for codec '" +
                                                           avcodec_get_name(stream->codecpar->codec_id) + "'"};
    CodecPtr ctx(avcodec_alloc_context3(codec));
    if (!ctx) return {engine::GraphErrc::invalid_argument, path + ": out of memory"};
    if (int e = avcodec_parameters_to_context(ctx.get(), stream->codecpar); e < 0)
        return {engine::GraphErrc::corrupt_file, path + ": stream " + std::to_string(stream->index) + ": " + av_message(e)};
    ctx->thread_count = threads;
    ctx->pkt_timebase = stream->time_base;
    prepare(ctx.get());
    if (int e = avcodec_open2(ctx.get(), codec, nullptr); e < 0)
        return {engine::GraphErrc::unsupported_format,
                path + ": stream " + std::to_string(stream->index) + ": cannot open the " + codec->name + " decoder: " + av_message(e)};
    out = std::move(ctx);
    return {};
}

bool is_float(AVSampleFormat f) {
    const AVSampleFormat packed = av_get_packed_sample_fmt(f);
    return packed == AV_SAMPLE_FMT_FLT || packed == AV_SAMPLE_FMT_DBL || packed == AV_SAMPLE_FMT_S32 ||
           packed == AV_SAMPLE_FMT_S64;
}

// What a stream is, probed when the node is made so negotiation knows it.
struct AudioInfo {
    int rate = 0, channels = 0;
    bool float_native = false;
};
struct VideoInfo {
    int width = 0, height = 0;
    engine::Fraction fps{};
    bool rgb_native = false;
    // The decoder's own pixel format when we have it (any: converted), and the stream's colour.
    PixelFormat native = PixelFormat::any;
    engine::ColourMatrix matrix = engine::ColourMatrix::any;
    engine::ColourRange range = engine::ColourRange::any;
    // Decoding straight into pool buffers: the padded layout the decoder needs (0: not possible)
    // and how many pictures it may hold at once (references, reordering, frame threads).
    int direct_stride = 0, direct_rows = 0;
    std::size_t decoder_holds = 0;
};

// Our pixel format for FFmpeg's, or any. The YUVJ formats are their YUV forms in full range.
PixelFormat our_pixel_format(AVPixelFormat f) {
    switch (f) {
        case AV_PIX_FMT_YUV420P:
        case AV_PIX_FMT_YUVJ420P: return PixelFormat::i420;
        case AV_PIX_FMT_YUV422P:
        case AV_PIX_FMT_YUVJ422P: return PixelFormat::i422;
        case AV_PIX_FMT_YUV444P:
        case AV_PIX_FMT_YUVJ444P: return PixelFormat::i444;
        case AV_PIX_FMT_NV12: return PixelFormat::nv12;
        case AV_PIX_FMT_YUYV422: return PixelFormat::yuy2;
        case AV_PIX_FMT_RGB24: return PixelFormat::rgb24;
        case AV_PIX_FMT_RGBA: return PixelFormat::rgba;
        case AV_PIX_FMT_BGRA: return PixelFormat::bgra;
        case AV_PIX_FMT_YUV420P10LE: return PixelFormat::i420p10;
        case AV_PIX_FMT_YUV422P10LE: return PixelFormat::i422p10;
        case AV_PIX_FMT_YUV444P10LE: return PixelFormat::i444p10;
        default: return PixelFormat::any;
    }
}

// Pictures a decoder of `id` keeps as references at most (H.264 and HEVC: a 16-picture DPB).
std::size_t max_reference_pictures(AVCodecID id) {
    switch (id) {
        case AV_CODEC_ID_H264:
        case AV_CODEC_ID_HEVC: return 16;
        case AV_CODEC_ID_VP9:
        case AV_CODEC_ID_AV1: return 8;
        case AV_CODEC_ID_VP8: return 3;
        default: return 2;
    }
}

// Where a decoder can write straight into our pool, the layout it needs: rows of `stride` bytes
// and `rows` rows for the Y plane (chroma at half), from avcodec_align_dimensions2 for a picture
// rounded up to whole 32-pixel blocks (coded sizes such as 1088 for 1080 fit), strides aligned
// for every plane. 0, 0 when the decoder does not honour get_buffer2 or does not make I420.
void direct_layout(const AVCodecParameters* par, int threads, VideoInfo& v) {
    const auto native = AVPixelFormat(par->format);
    const AVCodec* codec = avcodec_find_decoder(par->codec_id);
    if (!codec || !(codec->capabilities & AV_CODEC_CAP_DR1) || (native != AV_PIX_FMT_YUV420P && native != AV_PIX_FMT_YUVJ420P))
        return;
    CodecPtr ctx(avcodec_alloc_context3(codec));
    if (!ctx || avcodec_parameters_to_context(ctx.get(), par) < 0) return;
    int width = FFALIGN(par->width, 32), height = FFALIGN(par->height, 32);
    int linesize_align[AV_NUM_DATA_POINTERS] = {};
    avcodec_align_dimensions2(ctx.get(), &width, &height, linesize_align);
    int align = 64;  // our buffers' alignment: what AVX-512 loads want
    for (int a : linesize_align) align = std::max(align, a);
    v.direct_stride = FFALIGN(width, 2 * align);  // chroma rows take half, still aligned
    v.direct_rows = height + (height & 1);
    // Frame threads each hold the picture they decode.
    v.decoder_holds = max_reference_pictures(par->codec_id) + std::size_t(std::max(par->video_delay, 0)) +
                      std::size_t(threads) + 1;
}

constexpr std::size_t kAudioFramesPerBuffer = 4096;
// Bytes after a picture a decoder's SIMD may read past its last row (FFmpeg pads its own
// buffers alike).
constexpr std::size_t kDecoderOverread = 64;
constexpr std::int64_t kGapTolerance_ns = 20'000'000;  // audio timestamps further off are a gap

class AvSrc final : public Node {
public:
    AvSrc(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        detail::route_ffmpeg_log();
        path_ = r.text("path");
        audio_choice_ = read_stream_choice(r, "audio");
        video_choice_ = read_stream_choice(r, "video");
        start_s_ = r.number("start", 0.0, 1e9);
        threads_ = int(r.integer("threads", 0, 64));
        if (threads_ == 0) threads_ = threads_per_core();
        audio_limit_.num_buffers = video_limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        if (r.ok() && path_.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        if (r.ok()) {
            OpenedFile file;
            if (Status st = open_media(path_, audio_choice_, video_choice_, file); !st) {
                r.fail(st.code(), st.message());
            } else {
                probe(file);
                // Kept for the first start: probing the streams decoded the first packets,
                // which opening the file again would repeat (measured: a tenth of a second on
                // 720p H.264).
                probed_ = std::move(file);
            }
        }
        // A pin for each stream the file has (and the properties pick): a movie gets audio and
        // video, a song audio alone, so `avsrc path=song.flac ! sink` can only mean the audio.
        if (has_audio_) {
            const SampleFormat first = audio_.float_native ? SampleFormat::f32 : SampleFormat::s16;
            const SampleFormat second = audio_.float_native ? SampleFormat::s16 : SampleFormat::f32;
            pin_[kAudio] = add_optional_output("audio", {MediaFormat::audio(audio_.rate, audio_.channels, first),
                                                         MediaFormat::audio(audio_.rate, audio_.channels, second)})
                               .index();
        }
        if (has_video_) {
            // The stream's colour on Y'CbCr offers; RGB is full range, any matrix.
            auto picture = [this](PixelFormat f) {
                MediaFormat m = MediaFormat::video(video_.width, video_.height, f, video_.fps);
                if (!engine::is_rgb(f)) {
                    m.matrix = video_.matrix;
                    m.range = video_.range;
                }
                return m;
            };
            engine::FormatSet offers;
            // First the decoder's own padded pictures, for an input that reads them; then its
            // own pixel format, packed; then I420 and RGBA, converted by libswscale.
            if (video_.direct_stride > 0) {
                MediaFormat direct = picture(PixelFormat::i420);
                direct.stride = video_.direct_stride;
                direct.plane_rows = video_.direct_rows;
                offers.push_back(direct);
            }
            const PixelFormat first = video_.native != PixelFormat::any ? video_.native
                                      : video_.rgb_native                ? PixelFormat::rgba
                                                                         : PixelFormat::i420;
            for (PixelFormat f : {first, PixelFormat::i420, PixelFormat::rgba})
                if (std::none_of(offers.begin(), offers.end(), [&](const MediaFormat& m) { return m.packed() && m.pixel_format == f; }))
                    offers.push_back(picture(f));
            pin_[kVideo] = add_optional_output("video", std::move(offers)).index();
        }
        if (r.ok() && !has_audio_ && !has_video_) {
            const bool audio_wanted = audio_choice_.mode != StreamChoice::Mode::none;
            const bool video_wanted = video_choice_.mode != StreamChoice::Mode::none;
            const std::string kinds = audio_wanted && video_wanted ? "audio or video" : audio_wanted ? "audio" : "video";
            r.fail(make_error_code(engine::GraphErrc::unsupported_format),
                   audio_wanted || video_wanted ? path_ + " has no " + kinds + " stream to play"
                                                : std::string("audio=none and video=none leave nothing to play"));
        }
    }
    std::vector<FileUse> file_uses() const override { return {{path_, false}}; }

    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        // relaxed: statistics.
        return {{"copies", copies_.load(std::memory_order_relaxed)},
                {"decode_errors", decode_errors_.load(std::memory_order_relaxed)},
                {"discontinuities", discontinuities_.load(std::memory_order_relaxed)}};
    }

private:
    // The two kinds of stream, and the output each has (kNoPin when the file has none).
    static constexpr std::size_t kAudio = 0, kVideo = 1, kNoPin = std::size_t(-1);
    bool linked(std::size_t kind) const { return pin_[kind] != kNoPin && output(pin_[kind]).linked(); }
    // Downstream took the decoder's padded pictures: get_buffer2 is ours.
    bool decodes_into_pool() const { return linked(kVideo) && !out(kVideo).format().packed(); }
    const engine::OutputPin& out(std::size_t kind) const { return output(pin_[kind]); }

    void probe(const OpenedFile& file) {
        has_audio_ = file.audio >= 0;
        has_video_ = file.video >= 0;
        if (has_audio_) {
            const AVCodecParameters* p = file.format->streams[file.audio]->codecpar;
            audio_.rate = p->sample_rate;
            audio_.channels = p->ch_layout.nb_channels;
            audio_.float_native = is_float(AVSampleFormat(p->format));
        }
        if (has_video_) {
            AVStream* st = file.format->streams[file.video];
            video_.width = st->codecpar->width;
            video_.height = st->codecpar->height;
            const AVRational rate = av_guess_frame_rate(file.format.get(), st, nullptr);
            video_.fps = rate.num > 0 && rate.den > 0 ? engine::Fraction{rate.num, rate.den} : engine::Fraction{30, 1};
            const auto native = AVPixelFormat(st->codecpar->format);
            const AVPixFmtDescriptor* d = av_pix_fmt_desc_get(native);
            video_.rgb_native = d && (d->flags & AV_PIX_FMT_FLAG_RGB);
            video_.native = our_pixel_format(native);
            // The colour the stream says it has (open when it says nothing: BT.601 limited).
            const AVCodecParameters* p = st->codecpar;
            if (p->color_space == AVCOL_SPC_BT709) video_.matrix = engine::ColourMatrix::bt709;
            else if (p->color_space == AVCOL_SPC_BT470BG || p->color_space == AVCOL_SPC_SMPTE170M)
                video_.matrix = engine::ColourMatrix::bt601;
            const bool jpeg = native == AV_PIX_FMT_YUVJ420P || native == AV_PIX_FMT_YUVJ422P || native == AV_PIX_FMT_YUVJ444P;
            if (p->color_range == AVCOL_RANGE_JPEG || jpeg) video_.range = engine::ColourRange::full;
            else if (p->color_range == AVCOL_RANGE_MPEG) video_.range = engine::ColourRange::limited;
            direct_layout(st->codecpar, threads_, video_);
        }
    }

    Status configure() override {
        if (linked(kAudio) && (audio_.channels < 1 || audio_.channels > 64 || audio_.rate < 1 || audio_.rate > 768000))
            return {engine::GraphErrc::unsupported_format, path_ + ": audio of " + std::to_string(audio_.channels) +
                                                               " channels at " + std::to_string(audio_.rate) +
                                                               " Hz is beyond what avsrc takes (1-64, up to 768 kHz)"};
        if (linked(kVideo) && (video_.width < 1 || video_.height < 1 || video_.width > engine::kMaxVideoDimension ||
                               video_.height > engine::kMaxVideoDimension ||
                               std::int64_t(video_.width) * video_.height > engine::kMaxVideoPixels))
            return {engine::GraphErrc::unsupported_format, path_ + ": pictures of " + std::to_string(video_.width) + "x" +
                                                               std::to_string(video_.height) + " are beyond what avsrc takes"};
        return {};
    }

    engine::BufferNeeds output_buffers(std::size_t o) const override {
        if (o == pin_[kAudio]) return {kAudioFramesPerBuffer * out(kAudio).format().frame_bytes(), 1};
        if (decodes_into_pool()) return {out(kVideo).format().frame_bytes() + kDecoderOverread, video_.decoder_holds};
        return {out(kVideo).format().frame_bytes(), 1};
    }

    Status start() override {
        close_all();
        OpenedFile file = std::move(probed_);
        probed_ = {};
        if (!file.format)
            if (Status st = open_media(path_, audio_choice_, video_choice_, file); !st) return st;
        if ((linked(kAudio) && file.audio < 0) || (linked(kVideo) && file.video < 0))
            return {engine::GraphErrc::corrupt_file, path_ + ": its streams changed since the node was made"};
        format_ = std::move(file.format);
        audio_stream_ = linked(kAudio) ? file.audio : -1;
        video_stream_ = linked(kVideo) ? file.video : -1;
        for (unsigned i = 0; i < format_->nb_streams; ++i)
            format_->streams[i]->discard = (int(i) == audio_stream_ || int(i) == video_stream_) ? AVDISCARD_DEFAULT : AVDISCARD_ALL;
        if (audio_stream_ >= 0) {
            if (Status st = open_decoder(path_, format_->streams[audio_stream_], threads_, audio_codec_, [](AVCodecContext*) {}); !st)
                return st;
            if (Status st = check_audio_unchanged(); !st) return st;
        }
        if (video_stream_ >= 0) {
            if (decodes_into_pool()) {
                // A slot for each buffer of the pool: what the decoder's reference to it holds.
                pool_slots_count_ = output(pin_[kVideo]).allocator().properties().buffers;
                pool_slots_ = std::make_unique<PoolSlot[]>(pool_slots_count_);
                for (std::size_t i = 0; i < pool_slots_count_; ++i) pool_slots_[i].owner = this;
            }
            auto serve_from_pool = [this](AVCodecContext* c) {
                if (!decodes_into_pool()) return;
                c->opaque = this;
                c->get_buffer2 = &AvSrc::get_pool_picture;
            };
            if (Status st = open_decoder(path_, format_->streams[video_stream_], threads_, video_codec_, serve_from_pool); !st)
                return st;
            if (video_codec_->width != video_.width || video_codec_->height != video_.height)
                return {engine::GraphErrc::corrupt_file, path_ + ": its picture size changed since the node was made"};
        }
        packet_.reset(av_packet_alloc());
        frame_.reset(av_frame_alloc());
        if (!packet_ || !frame_) return {engine::GraphErrc::invalid_argument, path_ + ": out of memory"};

        // Media time 0 is the file's start, or `start=` after a seek there.
        origin_ns_ = format_->start_time != AV_NOPTS_VALUE ? av_rescale(format_->start_time, 1'000'000'000, AV_TIME_BASE) : 0;
        if (start_s_ > 0) {
            const std::int64_t target = std::int64_t(std::llround(start_s_ * AV_TIME_BASE)) +
                                        (format_->start_time != AV_NOPTS_VALUE ? format_->start_time : 0);
            if (int e = avformat_seek_file(format_.get(), -1, INT64_MIN, target, target, 0); e < 0)
                return {engine::GraphErrc::io_error, path_ + ": cannot seek to " + std::to_string(start_s_) + " s: " + av_message(e)};
            origin_ns_ += std::int64_t(std::llround(start_s_ * 1e9));
        }
        audio_limit_.produced = video_limit_.produced = 0;
        audio_frames_ = 0;
        min_time_ns_ = 0;
        pool_closed_.store(false, std::memory_order_relaxed);  // relaxed: no streaming thread runs yet
        audio_started_ = false;
        audio_done_ = audio_stream_ < 0;
        video_done_ = video_stream_ < 0;
        draining_ = false;
        pending_discontinuity_[kAudio] = pending_discontinuity_[kVideo] = false;
        return {};
    }

    Status check_audio_unchanged() {
        if (audio_codec_->sample_rate != audio_.rate || audio_codec_->ch_layout.nb_channels != audio_.channels)
            return {engine::GraphErrc::corrupt_file, path_ + ": its audio format changed since the node was made"};
        return {};
    }

    void stop() override { close_all(); }

    // Graph::seek: the demuxer to the key frame at or before `media_ns`, the decoders flushed
    // (their reference pictures go back to the pool); what decodes before `media_ns` is dropped
    // as for start=, and the first samples are flagged discontinuities.
    bool seekable() const override { return true; }
    Status seek(std::int64_t media_ns) override {
        if (!format_) return {engine::GraphErrc::bad_state, path_ + " is not open"};
        const std::int64_t target = av_rescale(origin_ns_ + media_ns, AV_TIME_BASE, 1'000'000'000);
        if (int e = avformat_seek_file(format_.get(), -1, INT64_MIN, target, target, 0); e < 0)
            return {engine::GraphErrc::io_error,
                    path_ + ": cannot seek to " + std::to_string(double(media_ns) / 1e9) + " s: " + av_message(e)};
        if (audio_codec_) avcodec_flush_buffers(audio_codec_.get());
        if (video_codec_) avcodec_flush_buffers(video_codec_.get());
        swr_.reset();
        min_time_ns_ = media_ns;
        audio_frames_ = audio_.rate > 0 ? engine::frames_at_or_after(media_ns, audio_.rate) : 0;
        next_video_ns_ = media_ns;
        audio_started_ = false;
        audio_done_ = audio_stream_ < 0;
        video_done_ = video_stream_ < 0;
        draining_ = false;
        pending_discontinuity_[kAudio] = pending_discontinuity_[kVideo] = true;
        return {};
    }

    void close_all() noexcept {
        swr_.reset();
        sws_.reset();
        audio_codec_.reset();
        video_codec_.reset();  // frees its reference pictures: every pool slot it held
        packet_.reset();
        frame_.reset();
        format_.reset();
        pool_slots_.reset();  // after everything that could hold an AVBuffer of ours
        pool_slots_count_ = 0;
    }

    // The pool buffer an AVBufferRef of the decoder stands for. `owner` is fixed at start.
    struct PoolSlot {
        SampleRef sample;
        AvSrc* owner = nullptr;
    };

    // get_buffer2: a pool buffer laid out as the negotiated format says, when the picture fits
    // it; FFmpeg's own buffer otherwise (the picture is then copied; see push_video). Called on
    // the decoder's threads (frame threads included), concurrently: the allocator is thread-safe,
    // each slot is touched only by whoever holds its buffer.
    static int get_pool_picture(AVCodecContext* c, AVFrame* frame, int flags) noexcept {
        return static_cast<AvSrc*>(c->opaque)->pool_picture(c, frame, flags);
    }

    int pool_picture(AVCodecContext* c, AVFrame* frame, int flags) noexcept {
        const MediaFormat& f = out(kVideo).format();
        int width = frame->width, height = frame->height;
        int linesize_align[AV_NUM_DATA_POINTERS] = {};
        const auto format = AVPixelFormat(frame->format);
        bool fits = format == AV_PIX_FMT_YUV420P || format == AV_PIX_FMT_YUVJ420P;
        if (fits) {
            avcodec_align_dimensions2(c, &width, &height, linesize_align);
            fits = width <= f.stride && height <= f.plane_rows;
            for (int i = 0; i < 3; ++i) fits = fits && linesize_align[i] > 0 && (f.stride / (i ? 2 : 1)) % linesize_align[i] == 0;
        }
        if (!fits) return avcodec_default_get_buffer2(c, frame, flags);
        SampleAllocator& pool = output(pin_[kVideo]).allocator();
        Result<SampleRef> s = pool.try_get_buffer(name().c_str());
        // Empty: wait for downstream to give one back, unless every buffer is one the decoder
        // itself holds (none would ever come back while it waits): then FFmpeg's buffer. Timed
        // waits, so a buffer the decoder's other threads take meanwhile is seen.
        while (!s && s.error() == Errc::would_block) {
            // acquire: pairs with the release in release_pool_picture (the count is exact once read).
            // The decoder's own share of the pool, not the whole: a downstream that gives its
            // buffer back only after the next push cannot, while the decoder waits here.
            if (decoder_held_.load(std::memory_order_acquire) >= std::min(video_.decoder_holds, pool_slots_count_))
                return avcodec_default_get_buffer2(c, frame, flags);
            s = pool.get_buffer(stop_token(), std::chrono::milliseconds(20), name().c_str());
            if (!s && s.error() == Errc::timeout) s = Result<SampleRef>(Errc::would_block);
        }
        if (!s) {
            // The graph is stopping (decommit comes before the stop token): this picture fails,
            // and the streaming thread is told why, not left to count decode errors.
            pool_closed_.store(true, std::memory_order_relaxed);  // relaxed: read after the decoder reports the failure
            return AVERROR_EXIT;
        }
        PoolSlot& slot = pool_slots_[s->index()];
        slot.sample = std::move(*s);
        std::byte* base = slot.sample.data();
        frame->buf[0] = av_buffer_create(reinterpret_cast<std::uint8_t*>(base), slot.sample.capacity(), &release_pool_picture, &slot, 0);
        if (!frame->buf[0]) {
            slot.sample.reset();
            return AVERROR(ENOMEM);
        }
        // relaxed: only counted up here; readers pair with the release decrement.
        decoder_held_.fetch_add(1, std::memory_order_relaxed);
        detail::plane_pointers(f, base, frame->data, frame->linesize);
        frame->extended_data = frame->data;
        return 0;
    }

    static void release_pool_picture(void* opaque, std::uint8_t*) noexcept {
        auto& slot = *static_cast<PoolSlot*>(opaque);
        AvSrc& self = *slot.owner;
        slot.sample.reset();
        // release: a waiter that reads the lower count also sees the slot empty.
        self.decoder_held_.fetch_sub(1, std::memory_order_release);
    }

    // The slot of a picture the decoder wrote into our pool, or nullptr.
    PoolSlot* pool_slot_of(const AVFrame* frame) const noexcept {
        if (!pool_slots_ || !frame->buf[0] || frame->buf[1]) return nullptr;
        const auto p = reinterpret_cast<std::uintptr_t>(av_buffer_get_opaque(frame->buf[0]));
        const auto first = reinterpret_cast<std::uintptr_t>(pool_slots_.get());
        if (p < first || p >= first + pool_slots_count_ * sizeof(PoolSlot)) return nullptr;
        return reinterpret_cast<PoolSlot*>(p);
    }

    // One step: a packet read and decoded, and every frame it gave pushed; at the end of the
    // file the decoders are drained, then the stream ends.
    Flow produce() override {
        if (audio_done_ && video_done_) return Flow::end_of_stream;
        if (!draining_) {
            const int e = av_read_frame(format_.get(), packet_.get());
            if (e == AVERROR_EOF) {
                draining_ = true;
            } else if (e == AVERROR(EAGAIN)) {
                return Flow::ok;  // the demuxer skipped damaged data and has no packet yet: ask again
            } else if (e < 0) {
                return report_error(make_error_code(engine::GraphErrc::io_error), path_ + ": cannot read: " + av_message(e));
            } else {
                const int index = packet_->stream_index;
                Flow flow = Flow::ok;
                if (index == audio_stream_ && !audio_done_) flow = decode(audio_codec_.get(), kAudio, packet_.get());
                else if (index == video_stream_ && !video_done_) flow = decode(video_codec_.get(), kVideo, packet_.get());
                av_packet_unref(packet_.get());
                return flow;
            }
        }
        // End of the file: what the decoders still hold.
        if (!audio_done_) {
            if (Flow f = decode(audio_codec_.get(), kAudio, nullptr); f != Flow::ok) return f;
            audio_done_ = true;
        }
        if (!video_done_) {
            if (Flow f = decode(video_codec_.get(), kVideo, nullptr); f != Flow::ok) return f;
            video_done_ = true;
        }
        return Flow::end_of_stream;
    }

    // Sends a packet (nullptr: drain) and pushes every frame that comes out.
    Flow decode(AVCodecContext* codec, std::size_t kind, const AVPacket* packet) {
        int e = avcodec_send_packet(codec, packet);
        if (e < 0 && e != AVERROR_EOF) {
            if (stopping()) return Flow::stopped;  // a picture failed because the pool closed
            if (e == AVERROR(ENOMEM)) return report_error(make_error_code(Errc::out_of_memory), path_ + ": out of memory");
            note_decode_error(kind);  // a corrupt packet: skipped, the next sample flagged
            return Flow::ok;
        }
        for (;;) {
            e = avcodec_receive_frame(codec, frame_.get());
            if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return Flow::ok;
            if (e < 0) {
                if (stopping()) return Flow::stopped;
                note_decode_error(kind);
                return Flow::ok;
            }
            const Flow flow = kind == kAudio ? push_audio() : push_video();
            av_frame_unref(frame_.get());
            if (flow == Flow::end_of_stream) {
                (kind == kAudio ? audio_done_ : video_done_) = true;
                return Flow::ok;
            }
            if (flow != Flow::ok) return flow;
        }
    }

    // The graph is stopping: its token, or our pool closed under the decoder (decommit).
    bool stopping() const noexcept {
        // relaxed: FFmpeg's own synchronisation (the decoder reported the failure) orders it.
        return stop_token().stop_requested() || pool_closed_.load(std::memory_order_relaxed);
    }

    void note_decode_error(std::size_t kind) noexcept {
        decode_errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        pending_discontinuity_[kind] = true;
    }

    std::int64_t frame_time_ns(const AVStream* stream) const noexcept {
        const std::int64_t pts = frame_->best_effort_timestamp;
        if (pts == AV_NOPTS_VALUE) return kNoTime;
        return av_rescale_q(pts, stream->time_base, AVRational{1, 1'000'000'000}) - origin_ns_;
    }

    Flow push_audio() {
        const AVStream* stream = format_->streams[audio_stream_];
        const SampleFormat out_format = out(kAudio).format().sample_format;
        const int channels = audio_.channels;
        if (frame_->sample_rate != audio_.rate || frame_->ch_layout.nb_channels != channels)
            return report_error(make_error_code(engine::GraphErrc::unsupported_format),
                                path_ + ": the audio format changes mid-stream (" + std::to_string(frame_->ch_layout.nb_channels) +
                                    " channels at " + std::to_string(frame_->sample_rate) + " Hz); avsrc does not follow it yet");
        if (!swr_ || AVSampleFormat(frame_->format) != swr_in_format_) {
            if (Flow f = make_resampler(AVSampleFormat(frame_->format), out_format); f != Flow::ok) return f;
        }
        // Samples before `start=` (the seek lands on a packet at or before it) are dropped.
        std::int64_t skip = 0;
        const std::int64_t t = frame_time_ns(stream);
        if (!audio_started_) {
            // The first samples: where they lie. Before `start=` (a seek lands on a packet at or
            // before it) they are cut; from the file's own start they are kept whatever their
            // time says (priming samples the decoder did not trim), as ffmpeg keeps them.
            // After a seek, samples before its position are cut the same way.
            audio_started_ = true;
            if (t != kNoTime && t < min_time_ns_ && (start_s_ > 0 || min_time_ns_ > 0)) {
                skip = std::min<std::int64_t>(frame_->nb_samples,
                                              std::int64_t(engine::frames_at_or_after(min_time_ns_ - t, audio_.rate)));
                audio_frames_ = engine::frames_at_or_after(min_time_ns_, audio_.rate);
                if (skip == frame_->nb_samples) audio_started_ = false;  // all of it before the start
            } else if (t != kNoTime && t > 0) {
                audio_frames_ = engine::frames_at_or_after(t, audio_.rate);
            }
        } else if (t != kNoTime && t >= 0) {
            const std::int64_t expected = engine::frames_to_ns(audio_frames_, audio_.rate);
            if (std::llabs(t - expected) > kGapTolerance_ns) {  // a gap or a jump: follow the file, say so
                audio_frames_ = engine::frames_at_or_after(t, audio_.rate);
                pending_discontinuity_[kAudio] = true;
                discontinuities_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
            }
        }
        const std::size_t in_bytes = std::size_t(av_get_bytes_per_sample(AVSampleFormat(frame_->format)));
        const bool planar = av_sample_fmt_is_planar(AVSampleFormat(frame_->format));
        const std::size_t frame_bytes = out(kAudio).format().frame_bytes();
        std::int64_t done = skip;
        while (done < frame_->nb_samples) {
            const MediaTime start = engine::frames_to_ns(audio_frames_, audio_.rate);
            if (limit_reached(audio_limit_, start)) return Flow::end_of_stream;
            auto s = get_buffer(pin_[kAudio]);
            if (!s) return buffer_failed(s.error());
            const std::int64_t want = std::min<std::int64_t>(frame_->nb_samples - done, std::int64_t(s->capacity() / frame_bytes));
            // Each chunk of input from `done` on: plane pointers moved past what went before.
            const std::uint8_t* in[64] = {};
            for (int c = 0; c < (planar ? channels : 1); ++c)
                in[c] = frame_->extended_data[c] + std::size_t(done) * in_bytes * (planar ? 1 : std::size_t(channels));
            std::uint8_t* out[1] = {reinterpret_cast<std::uint8_t*>(s->data())};
            const int got = swr_convert(swr_.get(), out, int(want), in, int(want));
            if (got < 0) return report_error(make_error_code(engine::GraphErrc::corrupt_file), path_ + ": cannot convert audio: " + av_message(got));
            (void)s->set_size(std::size_t(got) * frame_bytes);
            audio_frames_ += std::uint64_t(got);
            s->set_times(start, engine::frames_to_ns(audio_frames_, audio_.rate));
            if (pending_discontinuity_[kAudio]) {
                s->add_flags(SampleFlags::discontinuity);
                pending_discontinuity_[kAudio] = false;
            }
            ++audio_limit_.produced;
            done += want;
            if (got == 0) continue;
            if (Flow f = push(pin_[kAudio], std::move(*s)); f != Flow::ok) return f;
        }
        return Flow::ok;
    }

    Flow make_resampler(AVSampleFormat in, SampleFormat out) {
        AVChannelLayout layout{};
        if (frame_->ch_layout.order == AV_CHANNEL_ORDER_UNSPEC) av_channel_layout_default(&layout, audio_.channels);
        else if (av_channel_layout_copy(&layout, &frame_->ch_layout) < 0)
            return report_error(make_error_code(Errc::out_of_memory), path_ + ": out of memory");
        SwrContext* raw = nullptr;
        const AVSampleFormat target = out == SampleFormat::f32 ? AV_SAMPLE_FMT_FLT : AV_SAMPLE_FMT_S16;
        // Same layout and rate in and out: only the sample format and the interleaving change.
        int e = swr_alloc_set_opts2(&raw, &layout, target, audio_.rate, &layout, in, audio_.rate, 0, nullptr);
        av_channel_layout_uninit(&layout);
        swr_.reset(raw);
        if (e >= 0) e = swr_init(raw);
        if (e < 0) return report_error(make_error_code(engine::GraphErrc::unsupported_format), path_ + ": cannot convert its audio: " + av_message(e));
        swr_in_format_ = in;
        return Flow::ok;
    }

    Flow push_video() {
        const AVStream* stream = format_->streams[video_stream_];
        const engine::Fraction fps = video_.fps;
        std::int64_t t = frame_time_ns(stream);
        const std::int64_t duration = std::int64_t(1'000'000'000LL * fps.den / fps.num);
        if (t == kNoTime) t = next_video_ns_;
        if (t < min_time_ns_) return Flow::ok;  // before `start=` or a seek's position: decoded only to reach it
        if (limit_reached(video_limit_, t)) return Flow::end_of_stream;
        if (frame_->width != video_.width || frame_->height != video_.height)
            return report_error(make_error_code(engine::GraphErrc::unsupported_format),
                                path_ + ": the picture size changes mid-stream (" + std::to_string(frame_->width) + "x" +
                                    std::to_string(frame_->height) + "); avsrc does not follow it yet");
        const MediaFormat& f = out(kVideo).format();
        Result<SampleRef> s = direct_sample();
        if (!s) {
            s = get_buffer(pin_[kVideo]);
            if (!s) return buffer_failed(s.error());
            if (Flow flow = copy_picture(f, s->data()); flow != Flow::ok) return flow;
            copies_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        }
        (void)s->set_size(f.frame_bytes());
        s->set_times(t, t + duration);
        next_video_ns_ = t + duration;
        if (frame_->key_frame) s->add_flags(SampleFlags::sync_point);
        // A picture the decoder had to conceal damage in: counted, and flagged.
        if (frame_->decode_error_flags != 0 || (frame_->flags & AV_FRAME_FLAG_CORRUPT) != 0) {
            decode_errors_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
            pending_discontinuity_[kVideo] = true;
        }
        if (pending_discontinuity_[kVideo]) {
            s->add_flags(SampleFlags::discontinuity);
            pending_discontinuity_[kVideo] = false;
        }
        ++video_limit_.produced;
        return push(pin_[kVideo], std::move(*s));
    }

    // The decoded picture as a sample without a copy: the pool buffer the decoder wrote it into,
    // when it did, its planes lie where our layout says (cropping can move them), and nobody
    // downstream still holds it from an earlier push (a decoder may show a reference picture
    // twice; its times must not change under a reader). An error otherwise.
    Result<SampleRef> direct_sample() const noexcept {
        PoolSlot* slot = pool_slot_of(frame_.get());
        if (!slot) return Errc::would_block;
        std::uint8_t* planes[4];
        int strides[4];
        detail::plane_pointers(out(kVideo).format(), slot->sample.data(), planes, strides);
        for (int i = 0; i < 3; ++i)
            if (frame_->data[i] != planes[i] || frame_->linesize[i] != strides[i]) return Errc::would_block;
        if (slot->sample.use_count() != 1) return Errc::would_block;
        // acquire: pairs with the release decrement of the last downstream holder, whose reads
        // of the sample's times come before our writes to them.
        std::atomic_thread_fence(std::memory_order_acquire);
        SampleRef s(slot->sample);
        s.set_flags(SampleFlags::none);  // a picture shown again keeps nothing of its first push
        return s;
    }

    // The decoded picture into `dst`, laid out as `f` says: plane by plane when it is the
    // decoder's own pixel format, else through libswscale (with the stream's colour: its
    // matrix and range in, the same range out for Y'CbCr, full for RGB).
    Flow copy_picture(const MediaFormat& f, std::byte* dst) {
        std::uint8_t* planes[4];
        int strides[4];
        detail::plane_pointers(f, dst, planes, strides);
        const auto source = AVPixelFormat(frame_->format);
        if (our_pixel_format(source) == f.pixel_format) {
            const engine::PictureLayout l = engine::picture_layout(f);
            for (int p = 0; p < l.planes; ++p)
                for (std::size_t y = 0; y < l.plane[p].rows; ++y)
                    std::memcpy(planes[p] + y * l.plane[p].stride, frame_->data[p] + std::ptrdiff_t(y) * frame_->linesize[p],
                                l.plane[p].row_bytes);
            return Flow::ok;
        }
        const AVPixelFormat target = detail::av_pixel_format(f.pixel_format);
        // Our own context, made again only when the decoder's format changes (getCachedContext
        // would remake it for every YUVJ picture, whose format swscale rewrites as it opens).
        if (!sws_ || sws_source_ != source || sws_target_ != target) {
            sws_.reset(sws_getContext(video_.width, video_.height, source, video_.width, video_.height, target,
                                      SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, nullptr, nullptr, nullptr));
            sws_source_ = source;
            sws_target_ = target;
            if (!sws_)
                return report_error(make_error_code(engine::GraphErrc::unsupported_format),
                                    path_ + ": cannot convert pictures from " + av_get_pix_fmt_name(source));
            // A new context: the stream's colour in, kept out (RGB: full range).
            const int space = video_.matrix == engine::ColourMatrix::bt709 ? SWS_CS_ITU709 : SWS_CS_ITU601;
            const bool full_in = video_.range == engine::ColourRange::full || av_pix_fmt_desc_get(source)->flags & AV_PIX_FMT_FLAG_RGB;
            const bool full_out = engine::is_rgb(f.pixel_format) ? true : f.range == engine::ColourRange::full;
            const int* coefficients = sws_getCoefficients(space);
            sws_setColorspaceDetails(sws_.get(), coefficients, full_in, coefficients, full_out, 0, 1 << 16, 1 << 16);
        }
        sws_scale(sws_.get(), frame_->data, frame_->linesize, 0, video_.height, planes, strides);
        return Flow::ok;
    }

    std::string path_;
    StreamChoice audio_choice_, video_choice_;
    double start_s_ = 0;
    int threads_ = 0;
    bool has_audio_ = false, has_video_ = false;
    std::size_t pin_[2] = {kNoPin, kNoPin};
    AudioInfo audio_;
    VideoInfo video_;

    OpenedFile probed_;  // the file as the constructor opened it, until the first start
    FormatPtr format_;
    CodecPtr audio_codec_, video_codec_;
    detail::PacketPtr packet_;
    detail::FramePtr frame_;
    detail::SwrPtr swr_;
    AVSampleFormat swr_in_format_ = AV_SAMPLE_FMT_NONE;
    detail::SwsPtr sws_;
    AVPixelFormat sws_source_ = AV_PIX_FMT_NONE, sws_target_ = AV_PIX_FMT_NONE;  // what sws_ was made for
    int audio_stream_ = -1, video_stream_ = -1;
    std::int64_t origin_ns_ = 0;
    engine::StreamLimit audio_limit_, video_limit_;
    std::uint64_t audio_frames_ = 0;  // audio frames pushed: the next one's time
    std::int64_t next_video_ns_ = 0;
    std::int64_t min_time_ns_ = 0;  // media time 0, or a seek's position: what decodes before it is dropped
    bool audio_started_ = false, audio_done_ = false, video_done_ = false, draining_ = false;
    bool pending_discontinuity_[2] = {false, false};
    std::atomic<std::uint64_t> copies_{0}, decode_errors_{0}, discontinuities_{0};
    std::unique_ptr<PoolSlot[]> pool_slots_;  // decoding into the pool: one per buffer, by index
    std::size_t pool_slots_count_ = 0;
    std::atomic<std::size_t> decoder_held_{0};  // slots holding a buffer for the decoder now
    std::atomic<bool> pool_closed_{false};        // a get_buffer2 found the pool decommitted
};

}  // namespace

NodeSpec avsrc_spec() {
    return {"avsrc", Node::Kind::source,
            "reads a media file through FFmpeg (MP3, AAC, Opus, FLAC, H.264, VP9 ... in MP4, MKV, WebM, Ogg); "
            "pins audio and video",
            {{"path", "", "file to read (required)"},
             {"audio", "auto", "audio stream: auto (the best, as ffmpeg picks), a stream index, or none"},
             {"video", "auto", "video stream: auto, a stream index, or none"},
             {"start", "0", "seconds into the file to start at (seeks there; media time 0 is that point)"},
             {"threads", "0", "decoder threads (0: one per core this process may run on)"},
             detail::num_buffers_property()},
            factory<AvSrc>()};
}

}  // namespace sluice::nodes

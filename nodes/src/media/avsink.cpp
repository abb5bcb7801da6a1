// SPDX-License-Identifier: MIT
// avsink: encodes and muxes through FFmpeg's libraries (libavcodec, libavformat). Input pins
// `audio` and `video`, each optional; the container comes from the file's extension (or
// `format=`), the encoders from `acodec=`/`vcodec=` or a default per container. The file is
// finished (encoders drained, trailer written) at end of stream and on stop, so Ctrl-C leaves a
// file every player reads.
//
// FFmpeg rather than our own writers: encoders and containers are what it exists for. The two
// inputs may be fed by different streaming threads (two sources), and one muxer interleaves
// both, so the encoders and the muxer are used under one mutex: a file render is not a real-time
// callback, and the lock is taken once per buffer.
#include "core/common.hpp"
#include "media/ffmpeg.hpp"
#include "video/picture.hpp"
#include <sluice/nodes/registry.hpp>

extern "C" {
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/audio_fifo.h>
#include <libavutil/avstring.h>
#include <libavutil/channel_layout.h>
#include <libavutil/opt.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <algorithm>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>

namespace sluice::nodes {
namespace {

using detail::av_message;
using engine::Flow;
using engine::MediaFormat;
using engine::PixelFormat;
using engine::SampleFormat;


// The encoders a container gets when acodec=/vcodec= are not given.
struct Defaults {
    const char* audio;
    const char* video;
};
Defaults defaults_for(const std::string& container) {
    static const std::map<std::string, Defaults> table = {
        {"flac", {"flac", nullptr}},        {"ogg", {"libopus", "libtheora"}}, {"opus", {"libopus", nullptr}},
        {"ipod", {"aac", nullptr}},         {"mp4", {"aac", "libx264"}},       {"mov", {"aac", "libx264"}},
        {"matroska", {"flac", "ffv1"}},     {"webm", {"libopus", "libvpx-vp9"}}, {"wav", {"pcm_s16le", nullptr}},
        {"mp3", {"libmp3lame", nullptr}},   {"avi", {"pcm_s16le", "mpeg4"}},   {"adts", {"aac", nullptr}},
    };
    const auto it = table.find(container);
    return it != table.end() ? it->second : Defaults{nullptr, nullptr};
}

// One encoded stream of the file.
struct Track {
    detail::CodecPtr codec;
    AVStream* stream = nullptr;
    detail::FramePtr frame;
    std::int64_t next_pts = 0;
    bool started = false;  // audio: the first sample has set next_pts
    bool ended = false;
    // Audio: our interleaved samples converted to the encoder's format, gathered into frames of
    // the encoder's size.
    detail::SwrPtr swr;
    detail::CPtr<AVAudioFifo, av_audio_fifo_free> fifo;
    // Video: RGBA (or anything not the encoder's format) converted.
    detail::SwsPtr sws;
};

class AvSink final : public Node {
public:
    AvSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
        detail::route_ffmpeg_log();
        path_ = r.text("path");
        format_name_ = r.text("format");
        acodec_ = r.text("acodec");
        vcodec_ = r.text("vcodec");
        acodec_named_ = !acodec_.empty();
        vcodec_named_ = !vcodec_.empty();
        bitrate_ = r.integer("bitrate", 0, 1'000'000'000);
        if (r.ok() && path_.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        if (r.ok()) {
            oformat_ = av_guess_format(format_name_.empty() ? nullptr : format_name_.c_str(), path_.c_str(), nullptr);
            // av_guess_format falls back on the extension when the name matches nothing.
            if (oformat_ && !format_name_.empty() && !av_match_name(format_name_.c_str(), oformat_->name)) oformat_ = nullptr;
            if (!oformat_)
                r.fail(make_error_code(engine::GraphErrc::invalid_argument),
                       format_name_.empty() ? path_ + ": no container for this extension (format= names one, e.g. format=matroska)"
                                            : "format=" + detail::printable(format_name_) + ": FFmpeg has no such container");
        }
        if (r.ok()) {
            const Defaults d = defaults_for(oformat_->name);
            if (acodec_.empty() && d.audio) acodec_ = d.audio;
            if (vcodec_.empty() && d.video) vcodec_ = d.video;
            // Encoders named by the user are checked now; a container's defaults only for the
            // inputs that get linked (configure()), so an audio-only .mp4 does not need libx264.
            for (const std::string* codec : {&acodec_, &vcodec_})
                if (!codec->empty() && (codec == &acodec_ ? acodec_named_ : vcodec_named_) &&
                    !avcodec_find_encoder_by_name(codec->c_str()))
                    r.fail(make_error_code(engine::GraphErrc::unsupported_format),
                           "no encoder named '" + detail::printable(*codec) + "' in this FFmpeg");
        }
        add_optional_input("audio", {MediaFormat::audio(0, 0, SampleFormat::s16), MediaFormat::audio(0, 0, SampleFormat::f32)});
        // Any layout: the encoder takes padded pictures from a decoder's pool as they lie.
        add_optional_input("video", {MediaFormat::video(0, 0, PixelFormat::i420).with_any_layout(),
                                     MediaFormat::video(0, 0, PixelFormat::rgba).with_any_layout()});
    }
    ~AvSink() override { abandon(); }
    std::vector<FileUse> file_uses() const override { return {{path_, true}}; }
    std::vector<std::pair<std::string, std::uint64_t>> extra_stats() const override {
        return {{"packets_written", packets_.load(std::memory_order_relaxed)}};  // relaxed: statistics
    }

private:
    static constexpr std::size_t kAudio = 0, kVideo = 1;

    Status configure() override {
        if (input(kAudio).linked() && acodec_.empty())
            return {engine::GraphErrc::unsupported_format, path_ + ": " + oformat_->name + " files take no audio here (acodec= names an encoder)"};
        if (input(kVideo).linked() && vcodec_.empty())
            return {engine::GraphErrc::unsupported_format, path_ + ": " + oformat_->name + " files take no video here (vcodec= names an encoder)"};
        for (std::size_t i : {kAudio, kVideo}) {
            const std::string& codec = i == kAudio ? acodec_ : vcodec_;
            if (input(i).linked() && !avcodec_find_encoder_by_name(codec.c_str()))
                return {engine::GraphErrc::unsupported_format, path_ + ": this FFmpeg has no '" + codec + "' encoder (" +
                                                                   (i == kAudio ? "acodec" : "vcodec") + "= names another)"};
        }
        return {};
    }

    Status start() override {
        abandon();
        AVFormatContext* raw = nullptr;
        if (int e = avformat_alloc_output_context2(&raw, oformat_, nullptr, path_.c_str()); e < 0)
            return {engine::GraphErrc::io_error, path_ + ": " + av_message(e)};
        muxer_ = raw;
        if (input(kAudio).linked())
            if (Status st = open_audio(); !st) return fail_start(st);
        if (input(kVideo).linked())
            if (Status st = open_video(); !st) return fail_start(st);
        // Opened as every sink opens its file (never blocking on a FIFO), then handed to FFmpeg.
        std::string error;
        const int fd = detail::open_output_file(path_, error);
        if (fd < 0) return fail_start({engine::GraphErrc::io_error, path_ + ": " + error});
        ::close(fd);
        // "file:" so that a name with a colon ("x:1.mkv", "pipe:1") is a file, not a protocol.
        if (int e = avio_open(&muxer_->pb, ("file:" + path_).c_str(), AVIO_FLAG_WRITE); e < 0)
            return fail_start({engine::GraphErrc::io_error, path_ + ": cannot open for writing: " + av_message(e)});
        if (int e = avformat_write_header(muxer_, nullptr); e < 0)
            return fail_start({engine::GraphErrc::unsupported_format, path_ + ": cannot write the header: " + av_message(e)});
        packet_.reset(av_packet_alloc());
        finished_ = false;
        return {};
    }

    Status fail_start(Status st) {
        abandon();
        return st;
    }

    AVCodecContext* new_encoder(const std::string& name, const AVCodec*& codec) {
        codec = avcodec_find_encoder_by_name(name.c_str());
        return codec ? avcodec_alloc_context3(codec) : nullptr;
    }

    Status open_audio() {
        const MediaFormat& f = input(kAudio).format();
        const AVCodec* codec = nullptr;
        Track& t = tracks_[kAudio];
        t.codec.reset(new_encoder(acodec_, codec));
        if (!t.codec) return {engine::GraphErrc::unsupported_format, "no encoder named '" + acodec_ + "'"};
        AVCodecContext* c = t.codec.get();
        av_channel_layout_default(&c->ch_layout, f.channels);
        c->sample_rate = f.rate;
        // The encoder's own sample format closest to ours (the first it lists otherwise).
        const AVSampleFormat ours = f.sample_format == SampleFormat::f32 ? AV_SAMPLE_FMT_FLT : AV_SAMPLE_FMT_S16;
        c->sample_fmt = codec->sample_fmts ? codec->sample_fmts[0] : ours;
        for (const AVSampleFormat* p = codec->sample_fmts; p && *p != AV_SAMPLE_FMT_NONE; ++p)
            if (av_get_packed_sample_fmt(*p) == ours) c->sample_fmt = *p;
        if (codec->supported_samplerates) {
            bool supported = false;
            std::string rates;
            for (const int* p = codec->supported_samplerates; *p; ++p) {
                supported = supported || *p == f.rate;
                rates += (rates.empty() ? "" : ", ") + std::to_string(*p);
            }
            if (!supported)
                return {engine::GraphErrc::unsupported_format, path_ + ": " + acodec_ + " does not take " + std::to_string(f.rate) +
                                                                   " Hz (it takes " + rates + "; put 'audioresample rate=" +
                                                                   std::to_string(codec->supported_samplerates[0]) + "' before it)"};
        }
        c->time_base = AVRational{1, f.rate};
        if (bitrate_ > 0) c->bit_rate = bitrate_;
        if (Status st = open_track(t, codec, acodec_); !st) return st;
        SwrContext* swr = nullptr;
        int e = swr_alloc_set_opts2(&swr, &c->ch_layout, c->sample_fmt, f.rate, &c->ch_layout, ours, f.rate, 0, nullptr);
        t.swr.reset(swr);
        if (e >= 0) e = swr_init(swr);
        if (e < 0) return {engine::GraphErrc::unsupported_format, path_ + ": cannot convert audio for " + acodec_ + ": " + av_message(e)};
        t.fifo.reset(av_audio_fifo_alloc(c->sample_fmt, f.channels, 8192));
        if (!t.fifo) return {engine::GraphErrc::io_error, path_ + ": out of memory"};
        return {};
    }

    Status open_video() {
        const MediaFormat& f = input(kVideo).format();
        const AVCodec* codec = nullptr;
        Track& t = tracks_[kVideo];
        t.codec.reset(new_encoder(vcodec_, codec));
        if (!t.codec) return {engine::GraphErrc::unsupported_format, "no encoder named '" + vcodec_ + "'"};
        AVCodecContext* c = t.codec.get();
        c->width = f.width;
        c->height = f.height;
        c->pix_fmt = codec->pix_fmts ? codec->pix_fmts[0] : AV_PIX_FMT_YUV420P;
        for (const AVPixelFormat* p = codec->pix_fmts; p && *p != AV_PIX_FMT_NONE; ++p)
            if (*p == AV_PIX_FMT_YUV420P) c->pix_fmt = *p;
        c->time_base = AVRational{f.fps.den, f.fps.num};
        c->framerate = AVRational{f.fps.num, f.fps.den};
        if (bitrate_ > 0) c->bit_rate = bitrate_;
        if (Status st = open_track(t, codec, vcodec_); !st) return st;
        return {};
    }

    Status open_track(Track& t, const AVCodec* codec, const std::string& name) {
        AVCodecContext* c = t.codec.get();
        if (muxer_->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
        c->strict_std_compliance = FF_COMPLIANCE_EXPERIMENTAL;
        if (int e = avcodec_open2(c, codec, nullptr); e < 0)
            return {engine::GraphErrc::unsupported_format, path_ + ": cannot open the " + name + " encoder: " + av_message(e)};
        t.stream = avformat_new_stream(muxer_, nullptr);
        if (!t.stream) return {engine::GraphErrc::io_error, path_ + ": out of memory"};
        if (int e = avcodec_parameters_from_context(t.stream->codecpar, c); e < 0)
            return {engine::GraphErrc::unsupported_format, path_ + ": " + av_message(e)};
        t.stream->time_base = c->time_base;
        t.frame.reset(av_frame_alloc());
        t.next_pts = 0;
        t.started = false;
        t.ended = false;
        return {};
    }

    Flow process(std::size_t input, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        std::lock_guard lock(mutex_);
        if (finished_) return Flow::ok;
        const int e = input == kAudio ? add_audio(s) : add_video(s);
        if (e < 0) return report_error(make_error_code(engine::GraphErrc::io_error), path_ + ": encoding failed: " + av_message(e));
        return Flow::ok;
    }

    int add_audio(const SampleRef& s) {
        Track& t = tracks_[kAudio];
        const MediaFormat& f = input(kAudio).format();
        const int frames = int(s.size() / f.frame_bytes());
        // The audio starts where its first sample says (a file's audio may begin after its
        // video, a seek starts elsewhere), and after a discontinuity where that sample says:
        // what the fifo holds goes out first, then the count jumps to the new time.
        if (s.start_time() != kNoTime && (!t.started || s.has(SampleFlags::discontinuity))) {
            if (t.started)
                if (int e = drain_fifo(t, true); e < 0) return e;
            t.next_pts = std::max(t.next_pts, av_rescale_q(s.start_time(), AVRational{1, 1'000'000'000}, t.codec->time_base));
        }
        t.started = true;
        if (av_audio_fifo_space(t.fifo.get()) < frames)
            if (int e = av_audio_fifo_realloc(t.fifo.get(), av_audio_fifo_size(t.fifo.get()) + frames); e < 0) return e;
        // Convert into the fifo's own planes: ask it for room by writing through a frame.
        detail::FramePtr converted(av_frame_alloc());
        converted->format = t.codec->sample_fmt;
        converted->nb_samples = frames;
        av_channel_layout_copy(&converted->ch_layout, &t.codec->ch_layout);
        converted->sample_rate = f.rate;
        if (int e = av_frame_get_buffer(converted.get(), 0); e < 0) return e;
        const std::uint8_t* in[1] = {reinterpret_cast<const std::uint8_t*>(s.data())};
        const int got = swr_convert(t.swr.get(), converted->extended_data, frames, in, frames);
        if (got < 0) return got;
        if (av_audio_fifo_write(t.fifo.get(), reinterpret_cast<void**>(converted->extended_data), got) < got) return AVERROR(ENOMEM);
        return drain_fifo(t, false);
    }

    // Sends the fifo's samples to the encoder in frames of its size; at the end, the rest too.
    int drain_fifo(Track& t, bool at_end) {
        AVCodecContext* c = t.codec.get();
        // Whether a frame may hold fewer samples than frame_size: always, or the last one.
        const bool variable = (c->codec->capabilities & AV_CODEC_CAP_VARIABLE_FRAME_SIZE) != 0 || c->frame_size == 0 ||
                              (at_end && (c->codec->capabilities & AV_CODEC_CAP_SMALL_LAST_FRAME) != 0);
        const int size = c->frame_size > 0 ? c->frame_size : 4096;
        while (av_audio_fifo_size(t.fifo.get()) >= size || (at_end && av_audio_fifo_size(t.fifo.get()) > 0)) {
            const int n = std::min(size, av_audio_fifo_size(t.fifo.get()));
            AVFrame* frame = t.frame.get();
            av_frame_unref(frame);
            frame->format = c->sample_fmt;
            frame->nb_samples = variable ? n : size;  // a fixed-size encoder's last frame is padded with silence
            av_channel_layout_copy(&frame->ch_layout, &c->ch_layout);
            frame->sample_rate = c->sample_rate;
            if (int e = av_frame_get_buffer(frame, 0); e < 0) return e;
            if (n < frame->nb_samples)
                av_samples_set_silence(frame->extended_data, n, frame->nb_samples - n, c->ch_layout.nb_channels, c->sample_fmt);
            if (av_audio_fifo_read(t.fifo.get(), reinterpret_cast<void**>(frame->extended_data), n) < n) return AVERROR(EIO);
            frame->pts = t.next_pts;
            t.next_pts += frame->nb_samples;
            if (int e = encode(t, frame); e < 0) return e;
        }
        return 0;
    }

    int add_video(const SampleRef& s) {
        Track& t = tracks_[kVideo];
        AVCodecContext* c = t.codec.get();
        const MediaFormat& f = input(kVideo).format();
        if (s.size() < f.frame_bytes()) return AVERROR_INVALIDDATA;  // a short picture: never read past it
        AVFrame* frame = t.frame.get();
        av_frame_unref(frame);
        frame->format = c->pix_fmt;
        frame->width = f.width;
        frame->height = f.height;
        std::uint8_t* planes[4];
        int strides[4];
        detail::plane_pointers(f, s.data(), planes, strides);
        if (f.pixel_format == PixelFormat::i420 && c->pix_fmt == AV_PIX_FMT_YUV420P) {
            // Our planes as they lie (packed or padded): the encoder copies a frame it does not
            // own a reference to.
            for (int i = 0; i < 4; ++i) {
                frame->data[i] = planes[i];
                frame->linesize[i] = strides[i];
            }
        } else {
            if (int e = av_frame_get_buffer(frame, 0); e < 0) return e;
            const AVPixelFormat from = f.pixel_format == PixelFormat::i420 ? AV_PIX_FMT_YUV420P : AV_PIX_FMT_RGBA;
            t.sws.reset(sws_getCachedContext(t.sws.release(), f.width, f.height, from, f.width, f.height, c->pix_fmt,
                                             SWS_BICUBIC | SWS_ACCURATE_RND, nullptr, nullptr, nullptr));
            if (!t.sws) return AVERROR(EINVAL);
            sws_scale(t.sws.get(), planes, strides, 0, f.height, frame->data, frame->linesize);
        }
        // The picture's time in frames of the stream's rate, never going backwards.
        std::int64_t pts = s.start_time() == kNoTime
                               ? t.next_pts
                               : av_rescale_q(s.start_time(), AVRational{1, 1'000'000'000}, c->time_base);
        pts = std::max(pts, t.next_pts);
        frame->pts = pts;
        t.next_pts = pts + 1;
        return encode(t, frame);
    }

    // Sends a frame (nullptr: drain) and writes every packet that comes out.
    int encode(Track& t, AVFrame* frame) {
        int e = avcodec_send_frame(t.codec.get(), frame);
        if (e < 0 && !(frame == nullptr && e == AVERROR_EOF)) return e;
        for (;;) {
            e = avcodec_receive_packet(t.codec.get(), packet_.get());
            if (e == AVERROR(EAGAIN) || e == AVERROR_EOF) return 0;
            if (e < 0) return e;
            // A picture lasts one frame interval; encoders do not always say so, and the
            // container's duration is counted from it.
            if (packet_->duration == 0 && t.codec->codec_type == AVMEDIA_TYPE_VIDEO) packet_->duration = 1;
            av_packet_rescale_ts(packet_.get(), t.codec->time_base, t.stream->time_base);
            packet_->stream_index = t.stream->index;
            e = av_interleaved_write_frame(muxer_, packet_.get());  // takes the packet's data
            if (e < 0) return e;
            packets_.fetch_add(1, std::memory_order_relaxed);  // relaxed: statistics
        }
    }

    void end_of_stream(std::size_t input) override {
        {
            std::lock_guard lock(mutex_);
            Track& t = tracks_[input];
            if (!finished_ && t.codec && !t.ended) {
                t.ended = true;
                if (int e = finish_track(t); e < 0)
                    (void)report_error(make_error_code(engine::GraphErrc::io_error), path_ + ": encoding failed: " + av_message(e));
            }
        }
        Node::end_of_stream(input);
    }

    int finish_track(Track& t) {
        if (t.fifo)
            if (int e = drain_fifo(t, true); e < 0) return e;
        return encode(t, nullptr);
    }

    // End of stream or stop (Ctrl-C): every encoder drained, the trailer written, the file closed.
    void stop() override {
        std::lock_guard lock(mutex_);
        if (finished_ || !muxer_) return;
        int e = 0;
        for (Track& t : tracks_)
            if (t.codec && !t.ended && e >= 0) {
                t.ended = true;
                e = finish_track(t);
            }
        if (e >= 0) e = av_write_trailer(muxer_);
        const int closed = avio_closep(&muxer_->pb);
        finished_ = true;
        if (e >= 0) e = closed;
        if (e < 0) (void)report_error(make_error_code(engine::GraphErrc::io_error), path_ + ": finishing the file failed: " + av_message(e));
        abandon();
    }

    // Frees everything without finishing the file (a failed start, or the node destroyed).
    void abandon() noexcept {
        for (Track& t : tracks_) t = Track{};
        if (muxer_) {
            if (muxer_->pb) avio_closep(&muxer_->pb);
            avformat_free_context(muxer_);
            muxer_ = nullptr;
        }
        packet_.reset();
    }

    std::string path_, format_name_, acodec_, vcodec_;
    bool acodec_named_ = false, vcodec_named_ = false;
    std::int64_t bitrate_ = 0;
    const AVOutputFormat* oformat_ = nullptr;
    AVFormatContext* muxer_ = nullptr;
    Track tracks_[2];
    detail::PacketPtr packet_;
    std::mutex mutex_;  // the encoders and the muxer: both inputs may be fed by different threads
    bool finished_ = false;
    std::atomic<std::uint64_t> packets_{0};
};

}  // namespace

NodeSpec avsink_spec() {
    return {"avsink", Node::Kind::render,
            "encodes and writes a media file through FFmpeg (FLAC, Opus, MP3, AAC, H.264, VP9, FFV1 ... in MKV, MP4, "
            "Ogg, WebM); pins audio and video; finished on Ctrl-C too",
            {{"path", "", "file to write (required); its extension picks the container"},
             {"format", "", "container, when the extension does not say (FFmpeg's name: matroska, mp4, ogg ...)"},
             {"acodec", "", "audio encoder (FFmpeg's name); default per container: flac for .mkv/.flac, libopus for .ogg/.opus/.webm, aac for .mp4/.m4a"},
             {"vcodec", "", "video encoder; default per container: ffv1 for .mkv, libx264 for .mp4, libvpx-vp9 for .webm"},
             {"bitrate", "0", "bits per second for each encoder (0: the encoder's default)"}},
            factory<AvSink>()};
}

}  // namespace sluice::nodes

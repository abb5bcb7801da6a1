// SPDX-License-Identifier: MIT
#pragma once

// What every node built on FFmpeg's libraries shares: its error text, its log routed to the
// engine's log handler, and owning pointers for its objects.

extern "C" {
#include <libavcodec/avcodec.h>
#include <libswresample/swresample.h>
#include <libswscale/swscale.h>
}

#include <memory>
#include <string>

namespace sluice::nodes::detail {

// FFmpeg's message for an error code (a negative AVERROR).
std::string av_message(int error);

// FFmpeg writes its log to stderr unless told otherwise, and our libraries never write there:
// its lines go to the engine's log handler at debug level (what matters reaches the user as our
// own one-line error; sluice-play -v prints them). Installed once, process-wide; every FFmpeg
// node calls this when it is made.
void route_ffmpeg_log();

struct AvDeleter {
    void operator()(AVCodecContext* c) const noexcept { avcodec_free_context(&c); }
    void operator()(AVFrame* f) const noexcept { av_frame_free(&f); }
    void operator()(AVPacket* p) const noexcept { av_packet_free(&p); }
    void operator()(SwrContext* s) const noexcept { swr_free(&s); }
    void operator()(SwsContext* s) const noexcept { sws_freeContext(s); }
};
using CodecPtr = std::unique_ptr<AVCodecContext, AvDeleter>;
using FramePtr = std::unique_ptr<AVFrame, AvDeleter>;
using PacketPtr = std::unique_ptr<AVPacket, AvDeleter>;
using SwrPtr = std::unique_ptr<SwrContext, AvDeleter>;
using SwsPtr = std::unique_ptr<SwsContext, AvDeleter>;

}  // namespace sluice::nodes::detail

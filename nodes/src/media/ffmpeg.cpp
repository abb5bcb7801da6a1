// SPDX-License-Identifier: MIT
#include "media/ffmpeg.hpp"

#include <sluice/engine/log.hpp>

extern "C" {
#include <libavutil/error.h>
#include <libavutil/log.h>
}

#include <cstdarg>
#include <mutex>
#include <string_view>

namespace sluice::nodes::detail {

std::string av_message(int error) {
    char text[AV_ERROR_MAX_STRING_SIZE] = {};
    av_strerror(error, text, sizeof text);
    return text;
}

namespace {
// Called from C (FFmpeg's own threads among them): nothing may unwind out of it.
void forward_ffmpeg_log(void* object, int level, const char* format, va_list args) noexcept {
    if (level > av_log_get_level()) return;
    char line[1024];
    int print_prefix = 1;
    av_log_format_line2(object, level, format, args, line, sizeof line, &print_prefix);
    std::string_view text(line);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
    if (text.empty()) return;
    try {
        engine::log_message(engine::LogLevel::debug, std::string("ffmpeg: ").append(text));
    } catch (...) {  // no memory for the line, or the app's handler threw: the line is lost
    }
}
}  // namespace

void route_ffmpeg_log() {
    static std::once_flag once;
    std::call_once(once, [] { av_log_set_callback(forward_ffmpeg_log); });
}

}  // namespace sluice::nodes::detail

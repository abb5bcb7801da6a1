// SPDX-License-Identifier: MIT
#include <sluice/engine/log.hpp>

#include <mutex>

namespace sluice::engine {

namespace {
std::mutex g_mutex;
LogHandler& handler() {
    static LogHandler h;  // empty: say nothing
    return h;
}
}  // namespace

const char* to_string(LogLevel level) noexcept {
    switch (level) {
        case LogLevel::debug: return "debug";
        case LogLevel::info: return "info";
        case LogLevel::warning: return "warning";
        case LogLevel::error: return "error";
    }
    return "?";
}

void set_log_handler(LogHandler h) {
    std::lock_guard lock(g_mutex);
    handler() = std::move(h);
}

void log_message(LogLevel level, std::string_view message) {
    std::lock_guard lock(g_mutex);
    if (handler()) handler()(level, message);
}

}  // namespace sluice::engine

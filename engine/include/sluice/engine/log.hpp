// SPDX-License-Identifier: MIT
#pragma once

// The libraries never write to stdout or stderr. What they must say where no graph bus can carry
// it (a graph being destroyed with samples still held) goes to the app's log handler, if it set
// one; sluice-play prints it.

#include <functional>
#include <string_view>

namespace sluice::engine {

enum class LogLevel { debug, info, warning, error };
const char* to_string(LogLevel level) noexcept;

using LogHandler = std::function<void(LogLevel, std::string_view message)>;

// Sets (or, with an empty function, removes) the process-wide handler. Any thread; locks.
void set_log_handler(LogHandler handler);
// Hands `message` to the handler, if any. Any thread; locks; never from a streaming hot path.
void log_message(LogLevel level, std::string_view message);

}  // namespace sluice::engine

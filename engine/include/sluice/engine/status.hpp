// SPDX-License-Identifier: MIT
#pragma once

// Status: the outcome of a setup-path call (building, linking, starting a graph): a
// std::error_code plus a one-line human message naming the culprit (the pin, the file and byte
// offset, the token). Hot paths return bare codes instead; this allocates a string.

#include <sluice/allocators/result.hpp>

#include <string>
#include <system_error>
#include <utility>

namespace sluice {

namespace engine {
// Errors of graphs, pipelines, nodes and files: a category of their own ("sluice.graph"), apart
// from the allocator's. Compare directly: `if (st.code() == engine::GraphErrc::not_linked)`.
enum class GraphErrc {
    invalid_argument = 1,  // a bad property, name or argument
    parse_error,           // a pipeline string that does not parse
    not_linked,            // pins cannot be connected (no common format, none free...)
    bad_state,             // not allowed in the current state (or a node threw)
    io_error,              // a file or socket could not be read or written
    corrupt_file,          // a file whose contents lie or are truncated
    starvation,            // a pool too small for the samples its graph may hold at once
    unsupported_format,    // media we have no decoder or conversion for
    timeout,               // a control operation did not complete in time (a flush)
    samples_held,          // stop found samples still held by nodes or the app
    end_of_stream,         // an app pulled from a stream that has ended (appsink)
};
// The category of GraphErrc. Any thread. Never allocates.
const std::error_category& graph_category() noexcept;
inline std::error_code make_error_code(GraphErrc e) noexcept { return {static_cast<int>(e), graph_category()}; }
}  // namespace engine

class [[nodiscard]] Status {
public:
    Status() = default;  // success
    Status(std::error_code code, std::string message) : code_(code), message_(std::move(message)) {}
    Status(Errc code, std::string message) : Status(make_error_code(code), std::move(message)) {}
    Status(engine::GraphErrc code, std::string message) : Status(make_error_code(code), std::move(message)) {}

    // true on success.
    explicit operator bool() const noexcept { return !code_; }
    bool ok() const noexcept { return !code_; }
    std::error_code code() const noexcept { return code_; }
    // The one-line message; the code's own text when none was given.
    std::string message() const { return message_.empty() && code_ ? code_.message() : message_; }

private:
    std::error_code code_;
    std::string message_;
};

}  // namespace sluice

template <>
struct std::is_error_code_enum<sluice::engine::GraphErrc> : std::true_type {};

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

class [[nodiscard]] Status {
public:
    Status() = default;  // success
    Status(std::error_code code, std::string message) : code_(code), message_(std::move(message)) {}
    Status(Errc code, std::string message) : Status(make_error_code(code), std::move(message)) {}

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

// SPDX-License-Identifier: MIT
#pragma once

// Helpers shared by the node implementations.

#include <sluice/engine/node.hpp>
#include <sluice/nodes/registry.hpp>

#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::nodes::detail {

using engine::Flow;

// An object of a C library, owned: freed by that library's own function when the pointer goes
// (CPtr<snd_pcm_t, snd_pcm_close>). Whatever the function returns is of no use by then.
template <auto free_function>
struct FreeWith {
    template <class T>
    void operator()(T* p) const noexcept { (void)free_function(p); }
};
template <class T, auto free_function>
using CPtr = std::unique_ptr<T, FreeWith<free_function>>;

// Property lists joined, for NodeSpecs that share some of theirs with other nodes.
inline std::vector<PropertySpec> with(std::vector<PropertySpec> a, const std::vector<PropertySpec>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

// The property every source takes.
inline PropertySpec num_buffers_property() {
    return {"num-buffers", "-1", "samples to produce before end of stream (-1: no limit)"};
}

// The mailbox of a live property (Node::set_property): the control thread stores a new value, the
// streaming thread loads it at its next buffer. One lock-free word: no lock, no allocation.
template <class T>
class Live {
    static_assert(std::atomic<T>::is_always_lock_free);

public:
    explicit Live(T initial = {}) noexcept : value_(initial) {}
    // relaxed, both: the value is the whole message (nothing else is published with it), and
    // "at the next buffer" tolerates seeing it one buffer later.
    void set(T v) noexcept { value_.store(v, std::memory_order_relaxed); }
    T get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<T> value_;
};

// A number as a pipeline would write it: the shortest text that reads back the same ("-12").
inline std::string number_text(double v) {
    char text[32];
    const auto end = std::to_chars(text, text + sizeof text, v).ptr;
    return std::string(text, end);
}

// The monotonic clock in nanoseconds, for time-outs (not the graph's clock, which pauses).
inline std::int64_t steady_now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

// Opens `path` for reading without ever blocking in open() (a FIFO nobody writes to would hang
// it), and refuses what is not a regular file: a stream must be a file whose size is known.
// Returns the descriptor, blocking again for reads, or -1 with `error` set to the reason (the
// caller names the file). Control thread.
int open_regular_file(const std::string& path, std::string& error);

// Opens `path` for writing (created, truncated) without ever blocking in open() (a FIFO nobody
// reads would hang it), and refuses FIFOs and sockets: a file we write must be finished (a WAV
// header rewritten at the end), which a pipe cannot be. Regular files and devices (/dev/null) are
// fine. Returns the descriptor, blocking again for writes, or -1 with `error` set to the reason
// (the caller names the file). Control thread.
int open_output_file(const std::string& path, std::string& error);

// Writes `text` as the whole of `path` (opened as open_output_file does). Errors name `what`
// and the file ("sdp out.sdp: No space left on device"). Control thread.
Status write_text_file(const std::string& path, std::string_view text, const char* what);

// Reads `n` bytes of `fd` into `dst`, resuming after short reads and EINTR: from the file
// position, or from `offset` when it is >= 0 (pread). Returns how many were read (fewer only at
// the end of the file), or -errno.
std::int64_t read_fully(int fd, void* dst, std::size_t n, std::int64_t offset = -1) noexcept;

// `text` with control characters and non-ASCII bytes written as \xNN, so that a message quoting
// what a user typed (or a file held) prints as one harmless line.
inline std::string printable(std::string_view text) {
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (const char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7F) {
            out += c;
        } else {
            out += "\\x";
            out += kHex[u >> 4];
            out += kHex[u & 15];
        }
    }
    return out;
}

// File errors name the file and, where it applies, the byte offset.
inline std::string at_offset(const std::string& path, std::uint64_t offset) {
    return path + ": byte " + std::to_string(offset) + ": ";
}

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
// Closing a device that may never answer (alsasink, alsasrc, jacksink, jacksrc).
//
// A JACK client, or alsa-lib's JACK plugin, asks its server to deactivate it when it closes, and
// waits for the answer for ever: a frozen server hangs the close, and with it the graph's stop.
// Such a close runs on a thread of its own and is waited for a while; if it has not returned by
// then, the device is left to that thread (which finishes the close should the server come back)
// and the graph stops all the same. The thread is never joined: it may wait for good.
//
// libjack's state is the process's, shared by every client (alsa-lib's plugin holds one too): a
// later jack_client_open touches what a finished closing thread's calls touched (ThreadSanitizer
// saw the next open close a dead server's socket that an abandoned client's deactivate had
// read). A join would order them; instead each closing thread counts itself done (release) and
// an open reads the count first (acquire, after_finished_closers()), which orders the calls of
// every closing thread whose count that read sees before the open. A thread still closing is not
// ordered: it is still waiting on its server.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <future>
#include <memory>
#include <thread>

namespace sluice::nodes::detail {

inline std::atomic<std::uint64_t> closers_done{0};

// Before opening a device that a closing thread's library calls may have touched.
inline void after_finished_closers() noexcept {
    (void)closers_done.load(std::memory_order_acquire);  // acquire: see the top of this file
}

// Runs `close` (which must not throw) on a thread of its own and waits `wait` for it. Whether it
// returned in time; false: it is left to that thread. Without a thread (none can be made, no
// memory), `close` runs here, unbounded.
template <class Close>
bool close_within(Close close, std::chrono::milliseconds wait) noexcept {
    const auto close_and_count = [close]() noexcept {
        close();
        closers_done.fetch_add(1, std::memory_order_release);  // release: see the top of this file
    };
    bool handed = false;  // the thread has it
    try {
        auto closed = std::make_shared<std::promise<void>>();
        std::future<void> done = closed->get_future();
        std::thread([close_and_count, closed] {
            close_and_count();
            closed->set_value();
        }).detach();
        handed = true;
        return done.wait_for(wait) == std::future_status::ready;
    } catch (...) {  // no thread or no memory for one (or the wait failed, once the thread has it)
    }
    if (handed) return false;
    close_and_count();
    return true;
}

}  // namespace sluice::nodes::detail

// SPDX-License-Identifier: MIT
#pragma once

// The housekeeping thread that unmaps the memory of retired pools (rule 10 of the allocator
// contract): the last release of a decommitted pool happens on some streaming thread, which must
// not call into the OS allocator, so it hands the mapping over here and returns at once.
//
// One per process, started by the first commit, never stopped (it sleeps in a futex when idle;
// at process exit the OS reclaims what is left).

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::detail {

class Reclaimer {
public:
    static Reclaimer& instance() noexcept;

    // Starts the thread if it is not running. Control thread; allocates once per process.
    void ensure_started();

    // Queues the mapping [base, base+size) for munmap. The first bytes of the mapping are reused
    // as the queue node, so this never allocates. Any thread; lock-free; one futex wake.
    void hand_over(void* base, std::size_t size) noexcept;

    // Waits until every mapping handed over before this call has been unmapped. Control thread.
    void flush() noexcept;

private:
    struct Node {
        Node* next;
        std::size_t size;
    };
    void run() noexcept;

    std::atomic<Node*> queue_{nullptr};
    std::atomic<std::uint32_t> queued_{0};  // tickets handed out; futex word for the worker
    std::atomic<std::uint32_t> done_{0};    // tickets unmapped; futex word for flush()
    std::atomic<bool> started_{false};
};

}  // namespace sluice::detail

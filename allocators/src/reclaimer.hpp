// SPDX-License-Identifier: MIT
#pragma once

// The housekeeping thread that unmaps the memory of retired pools (rule 10 of
// docs/allocator-contract.md): the last release of a decommitted pool happens on some streaming
// thread, which must not call into the OS allocator, so it hands the mapping over here and
// returns at once.
//
// One per process, started by the first commit, never stopped (it sleeps when idle; at process
// exit the OS reclaims what is left). Immortal, so a release during static destruction finds it.

#include <sluice/allocators/event_count.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace sluice::detail {

class Reclaimer {
public:
    static Reclaimer& instance() noexcept;

    // Starts the thread if it is not running. Control thread; allocates once per process.
    void ensure_started();

    // Queues the mapping [base, base+size) for munmap; after the unmap, `live` is decremented
    // (release) and wait_until_zero() callers are woken. The first bytes of the mapping are reused
    // as the queue node, so this never allocates. Any thread; lock-free; one futex wake while the
    // thread sleeps.
    void hand_over(void* base, std::size_t size, std::atomic<std::uint32_t>* live) noexcept;

    // Waits until `live` is 0 (acquire). Control thread; blocks.
    void wait_until_zero(const std::atomic<std::uint32_t>& live) noexcept;

private:
    struct Node {
        Node* next;
        std::size_t size;
        std::atomic<std::uint32_t>* live;
    };
    void run() noexcept;

    std::atomic<Node*> queue_{nullptr};
    EventCount work_;  // notified by hand_over
    EventCount done_;  // notified after every batch of unmaps
};

}  // namespace sluice::detail

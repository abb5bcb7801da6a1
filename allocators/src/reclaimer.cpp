// SPDX-License-Identifier: MIT
#include "reclaimer.hpp"

#include <sluice/allocators/detail/futex.hpp>
#include "memory.hpp"

#include <mutex>
#include <new>
#include <thread>

namespace sluice::detail {

Reclaimer& Reclaimer::instance() noexcept {
    // Immortal: never destroyed, so a release during static destruction still finds it.
    static Reclaimer* const reclaimer = new Reclaimer();
    return *reclaimer;
}

void Reclaimer::ensure_started() {
    static std::once_flag once;
    std::call_once(once, [this] {
        std::thread(&Reclaimer::run, this).detach();
        // relaxed: informational; call_once already orders the start for later callers.
        started_.store(true, std::memory_order_relaxed);
    });
}

void Reclaimer::hand_over(void* base, std::size_t size) noexcept {
    Node* node = ::new (base) Node{nullptr, size};
    Node* head = queue_.load(std::memory_order_relaxed);
    do {
        node->next = head;
        // release: publishes the node's fields to the worker's acquire exchange.
    } while (!queue_.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
    // seq_cst: the ticket is taken after the push, so a worker that reads this count before
    // swapping the queue finds this node in its batch (or an earlier one).
    queued_.fetch_add(1, std::memory_order_seq_cst);
    futex_wake(&queued_, 1);
}

void Reclaimer::flush() noexcept {
    // acquire: pairs with nothing in particular; the ticket count only bounds the wait.
    const std::uint32_t target = queued_.load(std::memory_order_acquire);
    for (;;) {
        // acquire: pairs with the worker's release store, so the munmaps are complete.
        const std::uint32_t done = done_.load(std::memory_order_acquire);
        if (static_cast<std::int32_t>(done - target) >= 0) return;
        futex_wait(&done_, done, -1);
    }
}

void Reclaimer::run() noexcept {
    for (;;) {
        // seq_cst: read before the swap below; see hand_over.
        const std::uint32_t tickets = queued_.load(std::memory_order_seq_cst);
        // acquire: pairs with hand_over's release CAS; the nodes' fields are visible.
        Node* batch = queue_.exchange(nullptr, std::memory_order_acquire);
        while (batch != nullptr) {
            Node* next = batch->next;
            unmap_memory(batch, batch->size);
            batch = next;
        }
        // release: flush() callers see the unmaps done.
        done_.store(tickets, std::memory_order_release);
        futex_wake_all(&done_);
        // Sleep until a new ticket is taken (a hand_over between the load and here makes the
        // counter differ, so the wait returns at once).
        futex_wait(&queued_, tickets, -1);
    }
}

}  // namespace sluice::detail

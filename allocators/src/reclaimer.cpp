// SPDX-License-Identifier: MIT
#include "reclaimer.hpp"

#include "memory.hpp"

#include <mutex>
#include <new>
#include <thread>

namespace sluice::detail {

Reclaimer& Reclaimer::instance() noexcept {
    static Reclaimer* const reclaimer = new Reclaimer();
    return *reclaimer;
}

void Reclaimer::ensure_started() {
    static std::once_flag once;
    std::call_once(once, [this] { std::thread(&Reclaimer::run, this).detach(); });
}

void Reclaimer::hand_over(void* base, std::size_t size, std::atomic<std::uint32_t>* live) noexcept {
    static_assert(sizeof(Node) <= 64, "the node must fit the bytes a pool mapping reserves for it");
    Node* node = ::new (base) Node{nullptr, size, live};
    // relaxed: a first guess for the CAS.
    Node* head = queue_.load(std::memory_order_relaxed);
    do {
        node->next = head;
        // release: publishes the node's fields to the worker's acquire exchange.
    } while (!queue_.compare_exchange_weak(head, node, std::memory_order_release, std::memory_order_relaxed));
    work_.notify_one();
}

void Reclaimer::wait_until_zero(const std::atomic<std::uint32_t>& live) noexcept {
    for (;;) {
        const std::uint32_t ticket = done_.prepare_wait();
        // acquire: pairs with the release decrement after the unmap.
        if (live.load(std::memory_order_acquire) == 0) return;
        done_.wait(ticket);
    }
}

void Reclaimer::run() noexcept {
    for (;;) {
        const std::uint32_t ticket = work_.prepare_wait();
        // acquire: pairs with hand_over's release CAS; the nodes' fields are visible.
        Node* batch = queue_.exchange(nullptr, std::memory_order_acquire);
        if (batch == nullptr) {
            work_.wait(ticket);
            continue;
        }
        while (batch != nullptr) {
            const Node node = *batch;  // the node lives in the memory about to go
            unmap_memory(batch, node.size);
            // release: wait_until_zero's caller sees the unmap done.
            node.live->fetch_sub(1, std::memory_order_release);
            batch = node.next;
        }
        done_.notify_all();
    }
}

}  // namespace sluice::detail

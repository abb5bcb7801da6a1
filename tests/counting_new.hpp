// SPDX-License-Identifier: MIT
#pragma once

// Replaces the global operator new of the test binary that includes this (once) with one that
// counts, so tests can assert that a code path allocates nothing.

#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

// The replaced operator new takes its memory from malloc and delete gives it back with free: a
// matched pair that GCC, seeing free() inlined where a delete was written, cannot tell apart.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

namespace test {
// Allocations through operator new so far.
inline std::atomic<std::size_t> g_news{0};
// Allocations made by the calling thread so far (a streaming thread reads its own in a node).
inline thread_local std::size_t t_news = 0;
inline std::size_t allocations() noexcept {
    // relaxed: compared across a window by the thread that reads it; the code measured runs
    // before (same thread) or is synchronised with the read by the test.
    return g_news.load(std::memory_order_relaxed);
}
}  // namespace test

void* operator new(std::size_t n) {
    // relaxed: a counter; see test::allocations().
    test::g_news.fetch_add(1, std::memory_order_relaxed);
    ++test::t_news;
    if (void* p = std::malloc(n ? n : 1)) return p;
    throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

// SPDX-License-Identifier: MIT
#pragma once

// The pools compared in bench/, in report order, and scenario 1's unit of work. Shared by the
// Google Benchmark binary and sluice-count-scenario1, so callgrind counts exactly the code the
// benchmark times.

#include "baselines/common.hpp"
#include "baselines/glibc_alloc.hpp"
#include "baselines/mimalloc_alloc.hpp"
#include "baselines/moodycamel_pool.hpp"
#include "baselines/mutex_pool.hpp"
#include "baselines/sluice_pool.hpp"
#include "baselines/treiber_stack.hpp"

#include <sys/single_threaded.h>  // __libc_single_threaded (glibc 2.32+)

#include <cstdio>
#include <cstdlib>
#include <thread>
#include <tuple>
#include <utility>

namespace sluice::bench {

// The mutex pool comes first: every ratio is against it.
template <class F>
void for_each_pool(F&& f) {
    f.template operator()<MutexPool>();
    f.template operator()<MoodycamelPool>();
    f.template operator()<MimallocAlloc>();
    f.template operator()<GlibcAlloc>();
    f.template operator()<SluicePool>();
    f.template operator()<TreiberStack>();
}

// The pools that can decommit, which scenario 4 measures together, in report order.
using DecommittablePools = std::tuple<MutexPool, MoodycamelPool, SluicePool>;

// A media engine is multi-threaded, and glibc takes shortcuts in a process that has never started
// a thread: pthread_mutex_lock skips the LOCK prefix, malloc skips its arena lock. Starting one
// thread ends them for good, so no baseline is measured in a mode it would never run in.
// Call first thing in main(). Allocates (the thread).
inline void leave_single_threaded_mode() {
    std::thread([] {}).join();
    if (__libc_single_threaded) {
        std::fputs("glibc still believes the process is single-threaded\n", stderr);
        std::abort();
    }
}

// Scenario 1's pair: take a buffer, give it back, on one thread. The validity test is what real
// code does too; it costs every pool the same compare and branch.
template <Pool P>
inline void one_pair(P& pool) noexcept {
    auto b = pool.get();
    if (!P::valid(b)) [[unlikely]] {
        std::fputs("get() failed on a committed pool\n", stderr);
        std::abort();
    }
    pool.release(std::move(b));
}

}  // namespace sluice::bench

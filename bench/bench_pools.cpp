// SPDX-License-Identifier: MIT
// Issue #5: SampleAllocator against the designs it replaces, side by side in one run.
//
//   s1_one_thread/<pool>         one thread: get, release. CPU time per pair.
//   s2_handoff/<pool>            producer gets and hands the buffer through an SPSC ring to a
//                                consumer that releases it; pool of 8, so the producer waits.
//                                Time per buffer, from the first get to the last release;
//                                counter waits_per_buffer: gets that found the pool empty.
//   s2_handoff/null              the same without any allocator: the floor of s2.
//   s3_contention/<pool>         two threads, each n pairs on one pool of 64. Time per pair per
//                                thread: wall time from both starting to both done, over n.
//   s4_decommit/<pool>/waiters:W W threads blocked in get() on an empty pool of 64; time from
//                                the decommit() call until the last waiter has returned, over
//                                200 repetitions. Time column: the median; counters: median_us,
//                                max_us, call_median_us (the decommit() call alone).
//
// Heap baselines have no limit, so in s2 their producer waits (spinning, then yielding) when the
// ring (8 slots, like the pool) is full, and s4 does not apply. The Treiber stack cannot sleep:
// s1 and s3 only.

#include "baselines/null_pool.hpp"
#include "pools.hpp"
#include "spsc_ring.hpp"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <sys/types.h>
#include <unistd.h>  // gettid

namespace sluice::bench {
namespace {

constexpr int kDecommitReps = 200;

inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
}

// Waits for `done` in the two-thread scenarios. Pure spinning would be fastest on an idle
// machine, but on two cores shared with a build the awaited thread is often not running, and a
// spinner would burn the rest of its time slice before it could run: after a short spin, yield.
template <class F>
void spin_until(F&& done) noexcept {
    constexpr int kSpinsBeforeYield = 256;
    for (int i = 0; !done(); ++i) {
        if (i < kSpinsBeforeYield) cpu_relax();
        else std::this_thread::yield();
    }
}

std::int64_t now_ns() noexcept {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
}

[[noreturn]] void fail(const char* why) {
    std::fprintf(stderr, "sluice-bench: %s\n", why);
    std::abort();
}

// ---- Scenario 1

template <Pool P>
void one_thread(benchmark::State& state) {
    P pool(kBuffers);
    one_pair(pool);  // first-use costs (moodycamel's implicit producer, a heap's first page) stay untimed
    for (auto _ : state) one_pair(pool);
}

// What two threads share in scenarios 2 and 3, on the heap and on cache lines of its own. On a
// thread's stack, the pool (a MutexPool's mutex, say) could share a line with that thread's
// spilled temporaries and return addresses, written on every pair, and the line would bounce
// between the cores for reasons that have nothing to do with the pool.
template <class P>
struct alignas(kCacheLineSize) Shared {
    explicit Shared(std::size_t buffers) : pool(buffers) {}
    P pool;
    SpscRing<typename P::Buffer, kHandoffBuffers> ring;  // scenario 2 only
    alignas(kCacheLineSize) std::atomic<bool> started{false};
    alignas(kCacheLineSize) std::atomic<bool> finished{false};
};

// ---- Scenario 2

template <Pool P>
void handoff(benchmark::State& state) {
    auto shared = std::make_unique<Shared<P>>(kHandoffBuffers);
    P& pool = shared->pool;
    const benchmark::IterationCount n = state.max_iterations;
    std::thread consumer([s = shared.get(), n] {
        // relaxed: a start signal only; the pool and ring were published by the thread start.
        s->started.store(true, std::memory_order_relaxed);
        typename P::Buffer b{};
        for (benchmark::IterationCount i = 0; i < n; ++i) {
            spin_until([&] { return s->ring.try_pop(b); });
            s->pool.release(std::move(b));
        }
        // relaxed: only stops the clock; join() below orders the consumer's work before teardown.
        s->finished.store(true, std::memory_order_relaxed);
    });
    // relaxed: as above. Waiting keeps thread start-up out of the timing.
    spin_until([&] { return shared->started.load(std::memory_order_relaxed); });
    benchmark::IterationCount i = 0;
    for (auto _ : state) {
        auto b = pool.get();
        if (!P::valid(b)) [[unlikely]]
            fail("handoff: get() failed on a committed pool");
        spin_until([&] { return shared->ring.try_push(std::move(b)); });
        if (++i == n) [[unlikely]]
            // The last buffers' releases belong to the measured work. relaxed: as above.
            spin_until([&] { return shared->finished.load(std::memory_order_relaxed); });
    }
    consumer.join();
    if constexpr (requires { pool.waits(); })
        state.counters["waits_per_buffer"] = double(pool.waits()) / double(n);
}

// ---- Scenario 3

template <Pool P>
void contention(benchmark::State& state) {
    auto shared = std::make_unique<Shared<P>>(kBuffers);
    P& pool = shared->pool;
    one_pair(pool);
    const benchmark::IterationCount n = state.max_iterations;
    std::thread rival([s = shared.get(), n] {
        one_pair(s->pool);
        // relaxed: a start signal; nothing is published through it.
        spin_until([&] { return s->started.load(std::memory_order_relaxed); });
        for (benchmark::IterationCount i = 0; i < n; ++i) one_pair(s->pool);
        // relaxed: only stops the clock; join() orders the rest.
        s->finished.store(true, std::memory_order_relaxed);
    });
    benchmark::IterationCount i = 0;
    // relaxed: as above.
    shared->started.store(true, std::memory_order_relaxed);
    for (auto _ : state) {
        one_pair(pool);
        // Both threads do n pairs, so a thread that hogs the pool cannot flatter the figure: the
        // clock runs until the slower one is done. relaxed: as above.
        if (++i == n) [[unlikely]]
            spin_until([&] { return shared->finished.load(std::memory_order_relaxed); });
    }
    rival.join();
}

// ---- Scenario 4

// Whether the thread sleeps (state S in /proc). A waiter that has announced itself and sleeps is
// asleep inside get(): the pools' only sleeps are their waits (a thread that blocks on a mutex
// while another holds it is only possible if the holder runs, which shows as R).
bool sleeping(pid_t tid) {
    char path[64];
    std::snprintf(path, sizeof path, "/proc/self/task/%d/stat", int(tid));
    std::FILE* f = std::fopen(path, "r");
    if (f == nullptr) return false;
    char line[512];
    const bool ok = std::fgets(line, sizeof line, f) != nullptr;
    std::fclose(f);
    if (!ok) return false;
    const char* close = std::strrchr(line, ')');  // the command name may contain spaces
    return close != nullptr && close[1] == ' ' && close[2] == 'S';
}

struct DecommitTiming {
    std::int64_t all_returned_ns = 0;  // decommit() called -> last waiter back from get()
    std::int64_t call_ns = 0;          // decommit() called -> decommit() returned
};

template <DecommittablePool P>
DecommitTiming decommit_once(std::size_t waiters) {
    P pool(kBuffers);
    std::vector<typename P::Buffer> held;
    held.reserve(kBuffers);
    for (std::size_t i = 0; i < kBuffers; ++i) {
        held.push_back(pool.get());
        if (!P::valid(held.back())) fail("decommit: get() failed on a committed pool");
    }

    std::vector<pid_t> tids(waiters, 0);
    std::vector<std::int64_t> returned_ns(waiters, 0);
    std::atomic<std::size_t> arrived{0};
    std::vector<std::thread> threads;
    threads.reserve(waiters);
    for (std::size_t w = 0; w < waiters; ++w)
        threads.emplace_back([&, w] {
            tids[w] = ::gettid();
            // release: publishes tids[w] to the acquire load below.
            arrived.fetch_add(1, std::memory_order_release);
            auto b = pool.get();
            returned_ns[w] = now_ns();
            if (P::valid(b)) fail("decommit: a waiter got a buffer from an empty pool");
        });
    // acquire: pairs with the waiters' release increments; every tid is written.
    while (arrived.load(std::memory_order_acquire) != waiters) std::this_thread::yield();
    const std::int64_t give_up = now_ns() + 10'000'000'000;
    for (;;) {
        bool all = true;
        for (pid_t tid : tids) all = all && sleeping(tid);
        if (all) break;
        if (now_ns() > give_up) fail("decommit: waiters did not fall asleep within 10 s");
        std::this_thread::sleep_for(std::chrono::microseconds(50));
    }

    const std::int64_t start = now_ns();
    pool.decommit();
    const std::int64_t called = now_ns();
    for (auto& t : threads) t.join();  // join() publishes returned_ns
    for (auto& b : held) pool.release(std::move(b));
    return {*std::max_element(returned_ns.begin(), returned_ns.end()) - start, called - start};
}

double median(std::vector<std::int64_t>& v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? double(v[n / 2]) : (double(v[n / 2 - 1]) + double(v[n / 2])) / 2;
}

template <DecommittablePool P>
void decommit(benchmark::State& state) {
    const auto waiters = static_cast<std::size_t>(state.range(0));
    std::vector<std::int64_t> returned, called;
    for (auto _ : state) {
        returned.clear();
        called.clear();
        for (int rep = 0; rep < kDecommitReps; ++rep) {
            const DecommitTiming t = decommit_once<P>(waiters);
            returned.push_back(t.all_returned_ns);
            called.push_back(t.call_ns);
        }
        state.SetIterationTime(median(returned) * 1e-9);
    }
    state.counters["median_us"] = median(returned) / 1e3;
    state.counters["max_us"] = double(returned.back()) / 1e3;  // sorted by median()
    state.counters["call_median_us"] = median(called) / 1e3;
    state.counters["reps"] = kDecommitReps;
}

void register_all() {
    for_each_pool([]<class P>() {
        // CPU time: one thread, so it equals wall time on a quiet machine and ignores preemption
        // on a busy one.
        benchmark::RegisterBenchmark(("s1_one_thread/" + std::string(P::kName)).c_str(), one_thread<P>);
    });
    for_each_pool([]<class P>() {
        if constexpr (P::kKind != PoolKind::spinning_pool)
            benchmark::RegisterBenchmark(("s2_handoff/" + std::string(P::kName)).c_str(), handoff<P>)
                ->UseRealTime();
    });
    // The harness alone: the floor every s2 figure stands on.
    benchmark::RegisterBenchmark("s2_handoff/null", handoff<NullPool>)->UseRealTime();
    for_each_pool([]<class P>() {
        benchmark::RegisterBenchmark(("s3_contention/" + std::string(P::kName)).c_str(), contention<P>)
            ->UseRealTime();
    });
    for_each_pool([]<class P>() {
        if constexpr (DecommittablePool<P>)
            benchmark::RegisterBenchmark(("s4_decommit/" + std::string(P::kName)).c_str(), decommit<P>)
                ->ArgName("waiters")
                ->Arg(4)
                ->Arg(64)
                ->Iterations(1)
                ->Repetitions(1)
                ->UseManualTime()
                ->Unit(benchmark::kMicrosecond);
    });
}

}  // namespace
}  // namespace sluice::bench

int main(int argc, char** argv) {
    sluice::bench::leave_single_threaded_mode();
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 2;
    sluice::bench::register_all();
    benchmark::RunSpecifiedBenchmarks();
    benchmark::Shutdown();
    return 0;
}

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
//                                204 rounds in which every pool takes its turn (see
//                                decommit_round). Time column: the median; counters: median_us,
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
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include <sys/types.h>
#include <unistd.h>  // gettid

namespace sluice::bench {
namespace {


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

// One window: `waiters` threads block in get() on `pool`, whose buffers are all held; once every
// one sleeps, decommit() runs and the threads are joined.
template <DecommittablePool P>
DecommitTiming decommit_window(P& pool, std::size_t waiters) {
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
    return {*std::max_element(returned_ns.begin(), returned_ns.end()) - start, called - start};
}

struct DecommitSamples {
    std::vector<std::int64_t> returned, called;
};

// The pools are measured together, round by round, and not one after the other. On this VM the
// wake-ups that make up the window take longer after the CPUs have been busy (300 us of spinning
// before the threads started made a condition variable's broadcast 1.5-1.7x slower), so a pool whose
// set-up costs more CPU, or that simply ran while someone else's build did, would be judged by
// something other than its decommit. So every round builds and fills every pool, then gives each
// its window (decommitting it there) in the round's `order`, then hands all the held buffers back.
// The rounds go through every order equally often, so each pool follows the set-up and each other
// pool's window equally often.
template <std::size_t... I>
void decommit_round(std::size_t waiters, const std::vector<std::size_t>& order, std::vector<DecommitSamples>& out,
                    std::index_sequence<I...>) {
    using Pools = DecommittablePools;
    std::tuple<std::tuple_element_t<I, Pools>...> pools((void(I), kBuffers)...);
    std::tuple<std::vector<typename std::tuple_element_t<I, Pools>::Buffer>...> held;
    auto fill = [](auto& pool, auto& buffers) {
        buffers.reserve(kBuffers);
        for (std::size_t i = 0; i < kBuffers; ++i) {
            buffers.push_back(pool.get());
            if (!std::remove_reference_t<decltype(pool)>::valid(buffers.back()))
                fail("decommit: get() failed on a committed pool");
        }
    };
    (fill(std::get<I>(pools), std::get<I>(held)), ...);
    auto measure = [waiters](auto& pool, DecommitSamples& samples) {
        const DecommitTiming t = decommit_window(pool, waiters);
        samples.returned.push_back(t.all_returned_ns);
        samples.called.push_back(t.call_ns);
    };
    for (const std::size_t which : order) ((which == I ? measure(std::get<I>(pools), out[I]) : void()), ...);
    auto empty = [](auto& pool, auto& buffers) {  // every pool was decommitted in its window
        for (auto& b : buffers) pool.release(std::move(b));
    };
    (empty(std::get<I>(pools), std::get<I>(held)), ...);
}

// Every order of the pools, and the number of rounds: at least 200, a whole number of cycles
// through the orders (3 pools: 6 orders, 204 rounds).
std::vector<std::vector<std::size_t>> decommit_orders() {
    std::vector<std::size_t> order(std::tuple_size_v<DecommittablePools>);
    for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::vector<std::vector<std::size_t>> orders;
    do orders.push_back(order);
    while (std::next_permutation(order.begin(), order.end()));
    return orders;
}
constexpr std::size_t kMinDecommitRounds = 200;

// With SLUICE_BENCH_S4_ROUNDS=FILE set, every round's figures are appended to FILE, a line each:
// waiters, pool, round, ns to the last return, ns of the decommit() call (tab-separated). bench/
// run.sh keeps them as results/latest-s4-rounds.tsv and plots them with plot_decommit.py.
template <std::size_t... I>
void write_rounds(std::size_t waiters, const std::vector<DecommitSamples>& samples, std::index_sequence<I...>) {
    const char* path = std::getenv("SLUICE_BENCH_S4_ROUNDS");
    if (path == nullptr || *path == '\0') return;
    std::FILE* f = std::fopen(path, "a");
    if (f == nullptr) fail("decommit: cannot open the file SLUICE_BENCH_S4_ROUNDS names");
    const std::string_view names[] = {std::tuple_element_t<I, DecommittablePools>::kName...};
    for (std::size_t p = 0; p < sizeof...(I); ++p)
        for (std::size_t r = 0; r < samples[p].returned.size(); ++r)
            std::fprintf(f, "%zu\t%.*s\t%zu\t%lld\t%lld\n", waiters, int(names[p].size()), names[p].data(), r,
                         static_cast<long long>(samples[p].returned[r]), static_cast<long long>(samples[p].called[r]));
    if (std::fclose(f) != 0) fail("decommit: cannot write the file SLUICE_BENCH_S4_ROUNDS names");
}

// Every pool's windows with `waiters` waiters, measured once (by whichever pool's benchmark asks
// first) and shared by the benchmarks of all pools.
const std::vector<DecommitSamples>& decommit_study(std::size_t waiters) {
    static std::vector<std::pair<std::size_t, std::vector<DecommitSamples>>> studies;
    for (const auto& [w, samples] : studies)
        if (w == waiters) return samples;
    constexpr std::size_t n = std::tuple_size_v<DecommittablePools>;
    const auto orders = decommit_orders();
    const std::size_t rounds = (kMinDecommitRounds + orders.size() - 1) / orders.size() * orders.size();
    std::vector<DecommitSamples> samples(n);
    for (std::size_t round = 0; round < rounds; ++round)
        decommit_round(waiters, orders[round % orders.size()], samples, std::make_index_sequence<n>{});
    write_rounds(waiters, samples, std::make_index_sequence<n>{});
    return studies.emplace_back(waiters, std::move(samples)).second;
}

template <class P, std::size_t I = 0>
constexpr std::size_t decommittable_index() {
    if constexpr (I == std::tuple_size_v<DecommittablePools>) return I;
    else if constexpr (std::is_same_v<P, std::tuple_element_t<I, DecommittablePools>>) return I;
    else return decommittable_index<P, I + 1>();
}

template <class T>
double median(std::vector<T> v) {
    std::sort(v.begin(), v.end());
    const std::size_t n = v.size();
    return n % 2 ? double(v[n / 2]) : (double(v[n / 2 - 1]) + double(v[n / 2])) / 2;
}

template <DecommittablePool P>
void decommit(benchmark::State& state) {
    constexpr std::size_t index = decommittable_index<P>();
    static_assert(index < std::tuple_size_v<DecommittablePools>, "list the pool in DecommittablePools");
    const DecommitSamples& s = decommit_study(static_cast<std::size_t>(state.range(0)))[index];
    const double returned = median(s.returned);
    for (auto _ : state) state.SetIterationTime(returned * 1e-9);
    state.counters["median_us"] = returned / 1e3;
    state.counters["max_us"] = double(*std::max_element(s.returned.begin(), s.returned.end())) / 1e3;
    state.counters["call_median_us"] = median(s.called) / 1e3;
    state.counters["reps"] = double(s.returned.size());
    static_assert(std::is_same_v<std::tuple_element_t<0, DecommittablePools>, MutexPool>,
                  "the mutex pool is every ratio's 1.00");
    if constexpr (index != 0) {
        // Round by round against the mutex pool, which ran in the same round: the median of the
        // ratios with its distribution-free 95 % interval (the order statistics n/2 -+ 0.98 sqrt(n)),
        // and the share of rounds this pool's last waiter was back first.
        const DecommitSamples& base = decommit_study(static_cast<std::size_t>(state.range(0)))[0];
        std::vector<double> ratios;
        std::size_t sooner = 0;
        for (std::size_t r = 0; r < s.returned.size(); ++r) {
            ratios.push_back(double(s.returned[r]) / double(base.returned[r]));
            sooner += s.returned[r] < base.returned[r];
        }
        state.counters["paired_ratio_median"] = median(ratios);
        std::sort(ratios.begin(), ratios.end());
        const double n = double(ratios.size()), half_width = 0.98 * std::sqrt(n);
        const auto low = std::size_t(std::max(1.0, std::floor(n / 2 - half_width)));   // 1-based ranks
        const auto high = std::size_t(std::min(n, std::ceil(n / 2 + 1 + half_width)));
        state.counters["paired_ratio_ci95_low"] = ratios[low - 1];
        state.counters["paired_ratio_ci95_high"] = ratios[high - 1];
        state.counters["rounds_sooner_pct"] = 100.0 * double(sooner) / double(ratios.size());
    }
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

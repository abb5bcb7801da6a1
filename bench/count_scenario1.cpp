// SPDX-License-Identifier: MIT
// sluice-count-scenario1 <pool> <pairs>: scenario 1 (one thread, get then release) for `pairs`
// pairs on a 64-buffer pool, for tools that count: `valgrind --tool=callgrind` (instructions)
// and `strace -f -c` (system calls). Run it with two pair counts and subtract: set-up, warm-up
// and exit cost the same in both runs and cancel out. The pair is pools.hpp's one_pair(), the
// very code the benchmark times.
//
// Built a second time as sluice-count-allocs (SLUICE_BENCH_COUNT_ALLOCS), linked with
// -Wl,--wrap for the malloc family, mimalloc's entry points and dlsym, and with a replaced
// global operator new. It prints how many allocations and frees the measured pairs made. The
// wraps see every call made from this program and the static sluice library; a call made inside
// another shared library (libstdc++, libc) straight to malloc is not seen, which is why operator
// new is replaced here rather than wrapped. The benchmark binary cannot count this way: linking
// libmimalloc.so already replaces malloc process-wide.
//
// Exit status: 0, or 2 for a bad command line.

#include "baselines/null_pool.hpp"
#include "pools.hpp"

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#if SLUICE_BENCH_COUNT_ALLOCS
#include <atomic>
#include <new>

namespace {
// relaxed everywhere: counters read on the measuring thread after its own loop; other threads
// (the allocator's housekeeping thread) do not allocate in between.
std::atomic<std::uint64_t> g_allocs{0};
std::atomic<std::uint64_t> g_frees{0};
void note_alloc() noexcept { g_allocs.fetch_add(1, std::memory_order_relaxed); }
void note_free(void* p) noexcept {
    if (p != nullptr) g_frees.fetch_add(1, std::memory_order_relaxed);
}

using AlignedAllocFn = void* (*)(std::size_t, std::size_t);
using FreeFn = void (*)(void*);
AlignedAllocFn g_libc_aligned_alloc = nullptr;
FreeFn g_libc_free = nullptr;
// GlibcAlloc reaches glibc through dlsym; hand it these counting trampolines instead.
void* counting_libc_aligned_alloc(std::size_t alignment, std::size_t size) {
    note_alloc();
    return g_libc_aligned_alloc(alignment, size);
}
void counting_libc_free(void* p) {
    note_free(p);
    g_libc_free(p);
}
}  // namespace

extern "C" {
void* __real_malloc(std::size_t);
void* __real_calloc(std::size_t, std::size_t);
void* __real_realloc(void*, std::size_t);
void* __real_aligned_alloc(std::size_t, std::size_t);
int __real_posix_memalign(void**, std::size_t, std::size_t);
void* __real_memalign(std::size_t, std::size_t);
void __real_free(void*);
void* __real_mi_malloc(std::size_t);
void* __real_mi_malloc_aligned(std::size_t, std::size_t);
void* __real_mi_zalloc_aligned(std::size_t, std::size_t);
void __real_mi_free(void*);
void* __real_dlsym(void*, const char*);

void* __wrap_malloc(std::size_t n) { note_alloc(); return __real_malloc(n); }
void* __wrap_calloc(std::size_t n, std::size_t s) { note_alloc(); return __real_calloc(n, s); }
void* __wrap_realloc(void* p, std::size_t n) { note_alloc(); note_free(p); return __real_realloc(p, n); }
void* __wrap_aligned_alloc(std::size_t a, std::size_t n) { note_alloc(); return __real_aligned_alloc(a, n); }
int __wrap_posix_memalign(void** p, std::size_t a, std::size_t n) { note_alloc(); return __real_posix_memalign(p, a, n); }
void* __wrap_memalign(std::size_t a, std::size_t n) { note_alloc(); return __real_memalign(a, n); }
void __wrap_free(void* p) { note_free(p); __real_free(p); }
void* __wrap_mi_malloc(std::size_t n) { note_alloc(); return __real_mi_malloc(n); }
void* __wrap_mi_malloc_aligned(std::size_t n, std::size_t a) { note_alloc(); return __real_mi_malloc_aligned(n, a); }
void* __wrap_mi_zalloc_aligned(std::size_t n, std::size_t a) { note_alloc(); return __real_mi_zalloc_aligned(n, a); }
void __wrap_mi_free(void* p) { note_free(p); __real_mi_free(p); }
void* __wrap_dlsym(void* handle, const char* name) {
    void* f = __real_dlsym(handle, name);
    if (f != nullptr && std::strcmp(name, "aligned_alloc") == 0) {
        g_libc_aligned_alloc = reinterpret_cast<AlignedAllocFn>(f);
        return reinterpret_cast<void*>(&counting_libc_aligned_alloc);
    }
    if (f != nullptr && std::strcmp(name, "free") == 0) {
        g_libc_free = reinterpret_cast<FreeFn>(f);
        return reinterpret_cast<void*>(&counting_libc_free);
    }
    return f;
}
}  // extern "C"

// operator new lives in libstdc++.so, whose malloc calls the wraps cannot see: replace it, on top
// of the (wrapped, so counted) malloc family.
namespace {
void* checked(void* p) {
    if (p == nullptr) throw std::bad_alloc();
    return p;
}
std::size_t round_up(std::size_t n, std::align_val_t a) {
    const auto al = static_cast<std::size_t>(a);
    return (n + al - 1) / al * al;
}
}  // namespace
void* operator new(std::size_t n) { return checked(std::malloc(n ? n : 1)); }
void* operator new[](std::size_t n) { return checked(std::malloc(n ? n : 1)); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept { return std::malloc(n ? n : 1); }
void* operator new(std::size_t n, std::align_val_t a) {
    return checked(std::aligned_alloc(std::size_t(a), round_up(n ? n : 1, a)));
}
void* operator new[](std::size_t n, std::align_val_t a) {
    return checked(std::aligned_alloc(std::size_t(a), round_up(n ? n : 1, a)));
}
void* operator new(std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return std::aligned_alloc(std::size_t(a), round_up(n ? n : 1, a));
}
void* operator new[](std::size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
    return std::aligned_alloc(std::size_t(a), round_up(n ? n : 1, a));
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept { std::free(p); }
#endif  // SLUICE_BENCH_COUNT_ALLOCS

namespace {

using namespace sluice::bench;

constexpr int kWarmupPairs = 1000;  // first-use costs happen here, in both runs alike

template <Pool P>
void run(std::uint64_t pairs) {
#if SLUICE_BENCH_COUNT_ALLOCS
    // relaxed: see the counters' declaration.
    const std::uint64_t at_start = g_allocs.load(std::memory_order_relaxed);
#endif
    P pool(kBuffers);
    for (int i = 0; i < kWarmupPairs; ++i) one_pair(pool);
#if SLUICE_BENCH_COUNT_ALLOCS
    // relaxed: as above.
    const std::uint64_t allocs = g_allocs.load(std::memory_order_relaxed);
    const std::uint64_t frees = g_frees.load(std::memory_order_relaxed);
#endif
    for (std::uint64_t i = 0; i < pairs; ++i) one_pair(pool);
#if SLUICE_BENCH_COUNT_ALLOCS
    // setup_allocs proves the counting sees this pool's allocation paths: the pools allocate
    // while they are built (the heaps during warm-up), so it is never 0.
    std::printf("pool=%s pairs=%llu allocs=%llu frees=%llu setup_allocs=%llu\n", P::kName.data(),
                (unsigned long long)pairs, (unsigned long long)(g_allocs.load(std::memory_order_relaxed) - allocs),
                (unsigned long long)(g_frees.load(std::memory_order_relaxed) - frees),
                (unsigned long long)(allocs - at_start));
#else
    std::printf("pool=%s pairs=%llu\n", P::kName.data(), (unsigned long long)pairs);
#endif
}

int usage() {
    std::fputs("usage: sluice-count-scenario1 <pool> <pairs>\n  pools:", stderr);
    for_each_pool([]<class P>() { std::fprintf(stderr, " %s", P::kName.data()); });
    std::fprintf(stderr, " %s (no allocator: the harness alone)\n", NullPool::kName.data());
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 3) return usage();
    leave_single_threaded_mode();
    const std::string_view name = argv[1];
    char* end = nullptr;
    const unsigned long long pairs = std::strtoull(argv[2], &end, 10);
    if (end == argv[2] || *end != '\0' || argv[2][0] == '-') {
        std::fprintf(stderr, "sluice-count-scenario1: '%s' is not a pair count\n", argv[2]);
        return usage();
    }
    bool found = false;
    auto pick = [&]<class P>() {
        if (name == P::kName) {
            found = true;
            run<P>(pairs);
        }
    };
    for_each_pool(pick);
    pick.template operator()<NullPool>();  // the harness alone
    if (!found) {
        std::fprintf(stderr, "sluice-count-scenario1: unknown pool '%s'\n", argv[1]);
        return usage();
    }
    return 0;
}

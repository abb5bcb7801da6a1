// SPDX-License-Identifier: MIT
// The SampleAllocator contract, rule by rule (numbered as in docs/allocator-contract.md).
#include "../support.hpp"
#include "layout_probe.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <numaif.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <unistd.h>

using namespace std::chrono_literals;
using sluice::AllocatorProperties;
using sluice::Errc;
using sluice::SampleAllocator;
using sluice::SampleRef;
using test::eventually;

namespace {

AllocatorProperties props(std::size_t buffers, std::size_t bytes = 4096) {
    return {.buffers = buffers, .buffer_bytes = bytes, .alignment = 64, .prefix = 16, .numa_node = -1};
}

// Commits `a` with `p`, failing the test on any error.
void commit(SampleAllocator& a, const AllocatorProperties& p) {
    REQUIRE(a.set_properties(p));
    REQUIRE(a.commit() == std::error_code{});
}


// Whether the page holding `p` is mapped in this process (mincore fails with ENOMEM otherwise).
bool mapped(const void* p) {
    const auto page = std::uintptr_t(p) & ~std::uintptr_t(::sysconf(_SC_PAGESIZE) - 1);
    unsigned char v;
    return ::mincore(reinterpret_cast<void*>(page), 1, &v) == 0;
}

// The line of /proc/self/maps whose mapping holds `p` ("" when none does). Once a pool's memory is
// unmapped its address may be mapped again by someone else (ThreadSanitizer's runtime does so at
// once), so "the mapping that held it is gone" is the sound test, not "nothing is mapped there".
std::string mapping_of(const void* p) {
    std::ifstream maps("/proc/self/maps");
    for (std::string line; std::getline(maps, line);) {
        unsigned long long lo = 0, hi = 0;
        if (std::sscanf(line.c_str(), "%llx-%llx", &lo, &hi) == 2 && std::uintptr_t(p) >= lo && std::uintptr_t(p) < hi)
            return line;
    }
    return "";
}

}  // namespace

TEST_CASE("Errc.Category.ComparesAndNames") {
    std::error_code ec = Errc::not_committed;
    CHECK(ec == Errc::not_committed);
    CHECK(ec != Errc::timeout);
    CHECK(std::string(ec.category().name()) == "sluice.allocator");
    CHECK(ec.message() == "allocator not committed");
    // Graph and file errors are another category: never equal to an allocator error.
    const std::error_code graph = sluice::engine::GraphErrc::not_linked;
    CHECK(std::string(graph.category().name()) == "sluice.graph");
    CHECK(graph != Errc::not_committed);
    CHECK(graph.value() == int(Errc::would_block));  // the same number, another category and meaning
    CHECK(graph != Errc::would_block);
    // A get's Result holds allocator errors; it says what it holds either way.
    sluice::Result<sluice::SampleRef> refused = Errc::not_committed;
    CHECK_FALSE(refused);
    CHECK(refused.error() == Errc::not_committed);
    sluice::Result<int> r = sluice::unexpected(Errc::timeout);
    CHECK_FALSE(r);
    CHECK(r.error() == Errc::timeout);
    CHECK_THROWS_AS((void)r.value(), std::system_error);
    sluice::Result<int> ok = 7;
    CHECK(ok);
    CHECK(*ok == 7);
}

// Rule 1: validation, and what set_properties grants.
TEST_CASE("SampleAllocator.SetProperties.RejectsImpossible") {
    SampleAllocator a;
    CHECK(a.commit() == Errc::size_not_set);
    CHECK(a.set_properties({.buffers = 0, .buffer_bytes = 64}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = SampleAllocator::kMaxBuffers + 1, .buffer_bytes = 64}).error() ==
          Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 1, .buffer_bytes = 0}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 1, .buffer_bytes = 64, .alignment = 0}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 1, .buffer_bytes = 64, .alignment = 48}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 8, .buffer_bytes = std::size_t(1) << 50}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 65536, .buffer_bytes = SIZE_MAX / 2}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 2, .buffer_bytes = SIZE_MAX}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 2, .buffer_bytes = 64, .prefix = SIZE_MAX}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 1, .buffer_bytes = 64, .numa_node = 4095}).error() == Errc::invalid_properties);
    CHECK(a.set_properties({.buffers = 1, .buffer_bytes = 64, .numa_node = -2}).error() == Errc::invalid_properties);
    // Still uncommitted and usable after all those refusals.
    CHECK(a.commit() == Errc::size_not_set);
    CHECK(a.try_get_buffer().error() == Errc::not_committed);
}

TEST_CASE("SampleAllocator.SetProperties.GrantsAtLeastWanted") {
    SampleAllocator a;
    auto g = a.set_properties({.buffers = 3, .buffer_bytes = 100, .alignment = 8, .prefix = 5});
    REQUIRE(g);
    CHECK(g->buffers == 3);
    CHECK(g->alignment == 64);  // never below a cache line
    CHECK(g->buffer_bytes >= 100);
    CHECK(g->prefix == 5);
    CHECK(a.properties().buffer_bytes == g->buffer_bytes);
}

TEST_CASE("SampleAllocator.SetProperties.RefusedWhileCommittedOrOutstanding") {
    SampleAllocator a;
    commit(a, props(2));
    CHECK(a.set_properties(props(4)).error() == Errc::already_committed);
    auto s = a.get_buffer();
    REQUIRE(s);
    REQUIRE(a.decommit() == std::error_code{});
    CHECK(a.set_properties(props(4)).error() == Errc::buffers_outstanding);
    s->reset();
    CHECK(a.set_properties(props(4)));
}

// Rule 1 and 6: alignment and prefix for odd sizes; buffers never overlap.
TEST_CASE("SampleAllocator.Layout.AlignmentAndPrefixForOddSizes") {
    for (std::size_t alignment : {std::size_t(1), std::size_t(64), std::size_t(128), std::size_t(4096), std::size_t(1) << 16})
        for (std::size_t bytes : {std::size_t(1), std::size_t(3), std::size_t(1000), std::size_t(4097)})
            for (std::size_t prefix : {std::size_t(0), std::size_t(7), std::size_t(16), std::size_t(100)}) {
                CAPTURE(alignment);
                CAPTURE(bytes);
                CAPTURE(prefix);
                SampleAllocator a;
                auto g = a.set_properties({.buffers = 5, .buffer_bytes = bytes, .alignment = alignment, .prefix = prefix});
                REQUIRE(g);
                REQUIRE(a.commit() == std::error_code{});
                std::vector<SampleRef> held;
                for (int i = 0; i < 5; ++i) held.push_back(*a.get_buffer());
                std::vector<std::pair<std::uintptr_t, std::uintptr_t>> ranges;
                for (auto& s : held) {
                    CHECK(std::uintptr_t(s.data()) % g->alignment == 0);
                    CHECK(s.capacity() == g->buffer_bytes);
                    CHECK(s.capacity() >= bytes);
                    CHECK(s.prefix().size() == prefix);
                    CHECK(s.prefix().data() + prefix == s.data());
                    CHECK(s.size() == 0);
                    // Every byte of prefix and payload is ours to write.
                    std::memset(s.prefix().data(), 0x5A, prefix + s.capacity());
                    ranges.emplace_back(std::uintptr_t(s.prefix().data()), std::uintptr_t(s.data() + s.capacity()));
                }
                std::sort(ranges.begin(), ranges.end());
                for (std::size_t i = 1; i < ranges.size(); ++i) CHECK(ranges[i - 1].second <= ranges[i].first);
                CHECK(a.try_get_buffer().error() == Errc::would_block);
            }
}

// Rule 6: cache-line layout of the allocator's hot words and of the sample headers.

TEST_CASE("SampleAllocator.Layout.HotWordsOnTheirOwnLines") {
    static_assert(alignof(sluice::detail::SampleHeader) == 64);
    static_assert(sizeof(sluice::detail::SampleHeader) % 64 == 0);
    static_assert(alignof(SampleAllocator) >= 64);
    SampleAllocator a;
    commit(a, props(4));
    sluice::detail::LayoutProbe::check(a);
}

// Rule 2 and the basics of SampleRef.
TEST_CASE("SampleRef.Counting.CopyMoveReset") {
    SampleAllocator a;
    commit(a, props(1));
    SampleRef empty;
    CHECK_FALSE(empty);
    CHECK(empty.use_count() == 0);
    auto r = a.get_buffer();
    REQUIRE(r);
    SampleRef s = std::move(*r);
    CHECK(s.use_count() == 1);
    {
        SampleRef copy = s;
        CHECK(s.use_count() == 2);
        SampleRef moved = std::move(copy);
        CHECK_FALSE(copy);
        CHECK(s.use_count() == 2);
    }
    CHECK(s.use_count() == 1);
    CHECK(a.try_get_buffer().error() == Errc::would_block);
    CHECK(s.set_size(s.capacity() + 1) == Errc::invalid_argument);
    CHECK(s.set_size(10) == std::error_code{});
    CHECK(s.size() == 10);
    s.set_times(1'000, 2'000);
    s.set_flags(sluice::SampleFlags::sync_point | sluice::SampleFlags::end_of_stream);
    CHECK(s.start_time() == 1'000);
    CHECK(s.stop_time() == 2'000);
    CHECK(s.has(sluice::SampleFlags::end_of_stream));
    CHECK_FALSE(s.has(sluice::SampleFlags::preroll));
    CHECK(a.stats().outstanding == 1);
    s.reset();
    CHECK(a.stats().outstanding == 0);
    auto again = a.try_get_buffer();
    REQUIRE(again);
    CHECK(again->size() == 0);  // metadata starts fresh for every get
    CHECK(again->flags() == sluice::SampleFlags::none);
    CHECK(again->start_time() == sluice::kNoTime);
    CHECK(a.stats().gets == 2);
}

TEST_CASE("SampleAllocator.Timeouts.TryAndTimedGet") {
    SampleAllocator a;
    commit(a, props(1));
    auto held = a.get_buffer();
    REQUIRE(held);
    CHECK(a.try_get_buffer().error() == Errc::would_block);
    const auto t0 = std::chrono::steady_clock::now();
    auto t = a.get_buffer(std::chrono::milliseconds(5));
    CHECK(t.error() == Errc::timeout);
    CHECK(std::chrono::steady_clock::now() - t0 >= 5ms);
    CHECK(a.get_buffer(0ms).error() == Errc::timeout);
    CHECK(a.stats().timeouts == 2);
    held->reset();
    CHECK(a.get_buffer(5ms));
}

// Rule 3: decommit wakes every waiter with not_committed, 1 and 64 of them.
TEST_CASE("SampleAllocator.Decommit.WakesAllWaiters" * doctest::timeout(60)) {
    for (int waiters : {1, 64}) {
        CAPTURE(waiters);
        SampleAllocator a;
        commit(a, props(1));
        auto held = a.get_buffer();
        REQUIRE(held);
        std::atomic<int> not_committed{0}, other{0};
        std::vector<std::thread> threads;
        for (int i = 0; i < waiters; ++i)
            threads.emplace_back([&] {
                auto r = a.get_buffer();
                (r.error() == Errc::not_committed ? not_committed : other).fetch_add(1);
            });
        REQUIRE(eventually([&] { return a.stats().waiters == std::size_t(waiters); }));
        REQUIRE(a.decommit() == std::error_code{});
        for (auto& t : threads) t.join();
        CHECK(not_committed == waiters);
        CHECK(other == 0);
        CHECK(a.stats().waiters == 0);
        // The held sample is unaffected.
        std::memset(held->data(), 1, held->capacity());
        CHECK(held->use_count() == 1);
    }
}

TEST_CASE("SampleAllocator.Decommit.GetFailsUntilRecommit") {
    SampleAllocator a;
    commit(a, props(2));
    CHECK(a.committed());
    REQUIRE(a.decommit() == std::error_code{});
    CHECK_FALSE(a.committed());
    CHECK(a.decommit() == std::error_code{});  // twice is a no-op
    CHECK(a.get_buffer().error() == Errc::not_committed);
    CHECK(a.get_buffer(1ms).error() == Errc::not_committed);
    CHECK(a.try_get_buffer().error() == Errc::not_committed);
    CHECK(a.stats().refused == 3);
    REQUIRE(a.commit() == std::error_code{});
    CHECK(a.commit() == std::error_code{});  // twice is a no-op
    auto s = a.get_buffer();
    CHECK(s);
    CHECK(a.stats().epoch == 2);
}

// Rule 3: held samples stay valid; the pool's memory goes once the last is back.
TEST_CASE("SampleAllocator.Decommit.HeldSamplesSurviveThenMemoryIsFreed" * doctest::timeout(30)) {
    SampleAllocator a;
    commit(a, props(4));
    auto s1 = *a.get_buffer();
    auto s2 = *a.get_buffer();
    std::memset(s1.data(), 0x11, s1.capacity());
    const void* where = s1.data();
    REQUIRE(a.decommit() == std::error_code{});
    auto st = a.stats();
    CHECK(st.outstanding == 2);
    CHECK(st.retired_pools == 1);
    CHECK(st.bytes_mapped > 0);
    // Still valid and writable.
    CHECK(std::all_of(s1.data(), s1.data() + s1.capacity(), [](std::byte b) { return b == std::byte{0x11}; }));
    std::memset(s2.data(), 0x22, s2.capacity());
    SampleRef s1_copy = s1;
    s1.reset();
    s2.reset();
    CHECK(mapped(where));  // s1_copy keeps it
    const std::string pool_mapping = mapping_of(where);
    REQUIRE(!pool_mapping.empty());
    s1_copy.reset();
    st = a.stats();
    CHECK(st.outstanding == 0);
    CHECK(st.retired_pools == 0);
    CHECK(st.bytes_mapped == 0);
    CHECK(eventually([&] { return mapping_of(where) != pool_mapping; }));
}

TEST_CASE("SampleAllocator.Decommit.FreesAtOnceWhenNothingIsOut") {
    SampleAllocator a;
    commit(a, props(4));
    const void* where = (*a.get_buffer()).data();  // taken and returned at once
    CHECK(mapped(where));
    REQUIRE(a.decommit() == std::error_code{});
    CHECK_FALSE(mapped(where));
    CHECK(a.stats().bytes_mapped == 0);
}

// Rule 4: the destructor waits for a sample released late on another thread.
TEST_CASE("SampleAllocator.Destructor.WaitsForLateRelease" * doctest::timeout(30)) {
    std::atomic<bool> released{false};
    std::thread late;
    const void* where = nullptr;
    {
        SampleAllocator a;
        commit(a, props(2));
        auto s = *a.get_buffer();
        where = s.data();
        late = std::thread([&released, s = std::move(s)]() mutable {
            std::this_thread::sleep_for(100ms);
            released = true;
            s.reset();
        });
    }  // ~SampleAllocator blocks here until the thread's reset()
    CHECK(released);
    CHECK_FALSE(mapped(where));  // and everything is unmapped by the time it returns
    late.join();
}

// Rule 5: a release into a pool with waiters wakes one; no wake-up is ever lost.
TEST_CASE("SampleAllocator.Wake.ReleaseWakesAWaiter" * doctest::timeout(30)) {
    SampleAllocator a;
    commit(a, props(1));
    auto held = *a.get_buffer();
    std::atomic<int> got{0};
    std::vector<std::thread> threads;
    std::vector<SampleRef> results(3);
    for (int i = 0; i < 3; ++i)
        threads.emplace_back([&, i] {
            auto r = a.get_buffer(10s);
            if (r) {
                got.fetch_add(1);
                results[i] = std::move(*r);
            }
        });
    REQUIRE(eventually([&] { return a.stats().waiters == 3; }));
    held.reset();
    REQUIRE(eventually([&] { return got.load() == 1; }));
    // Exactly one can hold the only buffer; the others keep waiting.
    std::this_thread::sleep_for(20ms);
    CHECK(got.load() == 1);
    CHECK(a.stats().waiters == 2);
    a.decommit();
    for (auto& t : threads) t.join();
    CHECK(got.load() == 1);
}

TEST_CASE("SampleAllocator.Wake.NoLostWakeupsUnderHandoff" * doctest::timeout(120)) {
    // One buffer, four threads taking turns with blocking gets: a lost wake-up hangs the test.
    SampleAllocator a;
    commit(a, props(1, 64));
    constexpr int kRounds = 20'000;
    std::vector<std::thread> threads;
    std::atomic<int> failures{0};
    for (int t = 0; t < 4; ++t)
        threads.emplace_back([&] {
            for (int i = 0; i < kRounds; ++i) {
                auto s = a.get_buffer();
                if (!s) {
                    failures.fetch_add(1);
                    return;
                }
            }
        });
    for (auto& t : threads) t.join();
    CHECK(failures == 0);
    CHECK(a.stats().gets == 4u * kRounds);
    CHECK(a.stats().outstanding == 0);
}

// Rule 7: every page of the pool lies on the requested node.
TEST_CASE("SampleAllocator.Numa.PagesOnRequestedNode") {
    const long page = ::sysconf(_SC_PAGESIZE);
    for (int node : {-1, 0}) {
        CAPTURE(node);
        SampleAllocator a;
        auto g = a.set_properties({.buffers = 16, .buffer_bytes = 10000, .alignment = 64, .prefix = 0, .numa_node = node});
        REQUIRE(g);
        REQUIRE(a.commit() == std::error_code{});
        const int bound = a.stats().numa_node;
        REQUIRE(bound >= 0);
        if (node >= 0) CHECK(bound == node);
        std::vector<SampleRef> held;
        for (int i = 0; i < 16; ++i) held.push_back(*a.get_buffer());
        int pages = 0;
        for (auto& s : held)
            for (auto p = std::uintptr_t(s.data()) & ~std::uintptr_t(page - 1); p < std::uintptr_t(s.data() + s.capacity());
                 p += page) {
                int where = -1;
                REQUIRE(::get_mempolicy(&where, nullptr, 0, reinterpret_cast<void*>(p), MPOL_F_NODE | MPOL_F_ADDR) == 0);
                CHECK(where == bound);
                ++pages;
            }
        CHECK(pages >= 16 * 3);
    }
}

// A pool of 2 MiB or more asks for transparent huge pages (a 720p decoder's pictures then cost a
// handful of page faults at commit instead of thousands, and fewer TLB misses while decoding).
namespace {

std::string first_line(const char* path) {
    std::ifstream f(path);
    std::string line;
    std::getline(f, line);
    return line;
}

// Why this process cannot have transparent huge pages at all, or "" when it can.
std::string why_no_huge_pages() {
    const std::string enabled = first_line("/sys/kernel/mm/transparent_hugepage/enabled");  // "always [madvise] never"
    if (enabled.empty() || enabled.find("[never]") != std::string::npos) return "THP " + (enabled.empty() ? "absent" : enabled);
    if (first_line("/sys/kernel/mm/transparent_hugepage/hugepages-2048kB/enabled").find("[never]") != std::string::npos)
        return "2 MiB THP set to never";
    if (::prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1) return "THP disabled for this process (prctl)";
    return "";
}

long vmstat(const char* name) {
    std::ifstream f("/proc/vmstat");
    std::string key;
    long value = 0;
    while (f >> key >> value)
        if (key == name) return value;
    return -1;
}

// AnonHugePages of the mapping that holds `p`, in KiB, as /proc/self/smaps says (-1: not found).
long huge_kib_at(const void* p) {
    const auto addr = reinterpret_cast<std::uintptr_t>(p);
    std::ifstream smaps("/proc/self/smaps");
    std::string line;
    bool inside = false;
    while (std::getline(smaps, line)) {
        unsigned long lo = 0, hi = 0;
        // A mapping's first line ("lo-hi perms ..."); its fields ("Name:   N kB") follow.
        if (std::sscanf(line.c_str(), "%lx-%lx", &lo, &hi) == 2 && line.find("kB") == std::string::npos)
            inside = addr >= lo && addr < hi;
        else if (inside && line.rfind("AnonHugePages:", 0) == 0)
            return std::atol(line.c_str() + 14);
    }
    return -1;
}

// Commits an 8 MiB pool and checks that huge pages back it (or says why they could not).
void check_large_pool_on_huge_pages() {
    if (const std::string why = why_no_huge_pages(); !why.empty()) {
        MESSAGE("no transparent huge pages here (" << why << "): the pool keeps 4 KiB pages");
        return;
    }
    const long fallbacks = vmstat("thp_fault_fallback");
    SampleAllocator a;
    commit(a, props(8, 1 << 20));
    auto s = a.get_buffer();
    REQUIRE(s);
    const long huge_kib = huge_kib_at((*s).data());
    CAPTURE(huge_kib);
    REQUIRE(huge_kib >= 0);
    if (huge_kib == 0 && vmstat("thp_fault_fallback") > fallbacks) {
        MESSAGE("the kernel had no free 2 MiB page (thp_fault_fallback rose): 4 KiB pages this time");
        return;
    }
    CHECK(huge_kib >= 2048);
}

}  // namespace

TEST_CASE("SampleAllocator.Memory.LargePoolOnHugePages") { check_large_pool_on_huge_pages(); }

// The same with all memory locked, as sluice-play --rt-priority and real-time apps run: under
// mlockall(MCL_FUTURE) mmap itself faults a readable mapping in (with 4 KiB pages, before any
// advice), so the pool is mapped inaccessible, advised, bound, and only then opened. Runs in a
// child process of its own (this test binary, this test case, SLUICE_TEST_MLOCKALL set), whose
// memory only it locks.
TEST_CASE("SampleAllocator.Memory.LargePoolOnHugePagesWithMemoryLocked") {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    MESSAGE("not under a sanitizer: its shadow memory spans terabytes, which mlockall would fault in");
#else
    if (std::getenv("SLUICE_TEST_MLOCKALL") != nullptr) {
        if (::mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
            MESSAGE("cannot lock memory here (mlockall: " << std::strerror(errno) << ")");
            return;
        }
        check_large_pool_on_huge_pages();
        return;
    }
    const auto r = test::run("SLUICE_TEST_MLOCKALL=1 /proc/" + std::to_string(::getpid()) +
                             "/exe -tc=SampleAllocator.Memory.LargePoolOnHugePagesWithMemoryLocked -s");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("test cases: 1 | 1 passed") != std::string::npos);
#endif
}

// Rule 8: a stop_token cancels one waiter without touching the pool.
TEST_CASE("SampleAllocator.Cancel.StopTokenCancelsOneWaiter" * doctest::timeout(30)) {
    SampleAllocator a;
    commit(a, props(1));
    auto held = *a.get_buffer();
    std::stop_source cancel_me;
    std::atomic<int> cancelled{0}, served{0};
    std::thread victim([&] {
        if (a.get_buffer(cancel_me.get_token()).error() == Errc::cancelled) cancelled = 1;
    });
    std::thread bystander([&] {
        if (a.get_buffer(std::stop_token{}, 10s)) served = 1;
    });
    REQUIRE(eventually([&] { return a.stats().waiters == 2; }));
    cancel_me.request_stop();
    victim.join();
    CHECK(cancelled == 1);
    CHECK(a.committed());
    // The stop callback woke every waiter; the bystander goes back to sleep.
    CHECK(eventually([&] { return a.stats().waiters == 1; }));
    held.reset();
    bystander.join();
    CHECK(served == 1);
    CHECK(a.stats().cancels == 1);
    std::stop_source already;
    already.request_stop();
    auto busy = *a.get_buffer();
    CHECK(a.get_buffer(already.get_token()).error() == Errc::cancelled);
}

// Rule 9: samples of an older epoch never enter the new pool.
TEST_CASE("SampleAllocator.Epoch.OldSamplesNeverMixIntoNewPool") {
    SampleAllocator a;
    commit(a, props(2));
    auto old = *a.get_buffer();
    CHECK(old.epoch() == 1);
    const void* old_data = old.data();
    REQUIRE(a.decommit() == std::error_code{});
    REQUIRE(a.commit() == std::error_code{});  // commit again while an old sample is out
    auto n1 = *a.get_buffer();
    auto n2 = *a.get_buffer();
    CHECK(n1.epoch() == 2);
    CHECK(n2.epoch() == 2);
    CHECK(a.stats().retired_pools == 1);
    CHECK(a.stats().outstanding == 3);
    old.reset();  // released after recommit: freed, not pushed into epoch 2's pool
    CHECK(a.try_get_buffer().error() == Errc::would_block);
    CHECK(a.stats().retired_pools == 0);
    CHECK(a.stats().buffers == 2);
    n1.reset();
    auto n3 = *a.get_buffer();
    CHECK(n3.epoch() == 2);
    CHECK(n3.data() != old_data);
}

TEST_CASE("SampleAllocator.Epoch.ManyCommitsWhileSamplesHeld") {
    SampleAllocator a;
    commit(a, props(3));
    std::vector<SampleRef> kept;
    for (int e = 0; e < 5; ++e) {  // five epochs, one sample of each still held
        kept.push_back(*a.get_buffer());
        REQUIRE(a.decommit() == std::error_code{});
        REQUIRE(a.commit() == std::error_code{});
    }
    CHECK(a.stats().retired_pools == 5);
    for (std::size_t i = 0; i < kept.size(); ++i) CHECK(kept[i].epoch() == i + 1);
    kept.clear();
    CHECK(a.stats().retired_pools == 0);
    std::vector<SampleRef> all;
    for (int i = 0; i < 3; ++i) all.push_back(*a.try_get_buffer());
    CHECK(a.try_get_buffer().error() == Errc::would_block);
}

// Rule 11: the ownership ledger.
TEST_CASE("SampleAllocator.Ledger.RecordsHolderAndAge") {
    SampleAllocator a;
    a.set_ledger_enabled(true);
    CHECK(a.ledger_enabled());
    commit(a, props(4));
    auto s = *a.get_buffer("render");
    auto t = *a.get_buffer("tee");
    std::this_thread::sleep_for(20ms);
    auto u = *a.get_buffer();
    t.set_holder("wavsink");
    auto entries = a.ledger();
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].holder == "render");  // longest held first
    CHECK(entries[0].held_for >= 20ms);
    CHECK(entries[0].epoch == 1);
    CHECK(entries[1].holder == "wavsink");
    CHECK(entries[2].holder == "?");
    CHECK(entries[2].held_for < entries[1].held_for);
    a.set_ledger_enabled(false);
    entries = a.ledger();
    REQUIRE(entries.size() == 3);
    CHECK(entries[0].holder == "?");
}

// Rule 12: a discarded buffer wakes a waiter just like a returned one.
TEST_CASE("SampleAllocator.Discard.WakesAWaiter" * doctest::timeout(30)) {
    SampleAllocator a;
    commit(a, props(1));
    auto held = *a.get_buffer();
    (void)held.set_size(100);
    held.add_flags(sluice::SampleFlags::discontinuity);
    std::atomic<bool> got{false};
    std::thread waiter([&] {
        auto r = a.get_buffer(10s);
        got = bool(r) && r->size() == 0 && r->flags() == sluice::SampleFlags::none;
    });
    REQUIRE(eventually([&] { return a.stats().waiters == 1; }));
    held.discard();
    waiter.join();
    CHECK(got);
    CHECK(a.stats().discards == 1);
}

// Checked mode (for sluice-stress): overruns and writes after release are counted.
TEST_CASE("SampleAllocator.Checked.DetectsOverrunAndUseAfterRelease") {
    SampleAllocator a;
    commit(a, {.buffers = 1, .buffer_bytes = 256, .alignment = 64, .prefix = 0, .numa_node = -1, .checked = true});
    {
        auto s = *a.get_buffer();
        std::memset(s.data(), 1, s.capacity());  // in bounds: fine
    }
    CHECK(a.stats().corruptions == 0);
    std::byte* dangling = nullptr;
    {
        auto s = *a.get_buffer();
        s.data()[s.capacity()] = std::byte{0};  // one past the end: lands in the guard
        dangling = s.data();
    }
    CHECK(a.stats().corruptions == 1);
    dangling[3] = std::byte{7};  // write after release
    auto s = *a.get_buffer();
    CHECK(a.stats().corruptions == 2);
}

// Randomised churn: get/addref/release/decommit/commit from several threads; no buffer is ever
// handed out twice and none is lost.
TEST_CASE("SampleAllocator.Churn.NoBufferLostOrDuplicated" * doctest::timeout(300)) {
    constexpr std::size_t kBuffers = 6;
    constexpr int kMaxEpochs = 400;
    SampleAllocator a;
    a.set_ledger_enabled(false);  // so that releases park samples in debug builds too
    commit(a, props(kBuffers, 256));
    // taken[epoch][index]: set while someone holds the sample.
    static std::array<std::array<std::atomic<bool>, kBuffers>, kMaxEpochs + 2> taken{};
    std::atomic<int> duplicates{0}, foreign{0}, corrupted{0};
    std::atomic<bool> stop{false};
    auto worker = [&](unsigned seed) {
        std::mt19937 rng(seed);
        std::vector<SampleRef> mine;
        while (!stop.load(std::memory_order_relaxed)) {
            const int op = int(rng() % 10);
            if (op < 4) {
                auto r = (op == 0) ? a.try_get_buffer() : a.get_buffer(std::chrono::microseconds(200));
                if (!r) continue;
                const auto e = r->epoch(), i = r->index();
                if (e > kMaxEpochs + 1 || i >= kBuffers) {
                    foreign.fetch_add(1);
                    continue;
                }
                if (taken[e][i].exchange(true)) duplicates.fetch_add(1);
                std::memcpy(r->data(), &seed, sizeof seed);  // our mark
                mine.push_back(std::move(*r));
            } else if (op < 6 && !mine.empty()) {
                mine.push_back(mine[rng() % mine.size()]);  // add a reference
            } else if (!mine.empty()) {
                const std::size_t k = rng() % mine.size();
                SampleRef s = std::move(mine[k]);
                mine.erase(mine.begin() + std::ptrdiff_t(k));
                unsigned mark;
                std::memcpy(&mark, s.data(), sizeof mark);
                if (mark != seed) corrupted.fetch_add(1);
                const bool last = std::none_of(mine.begin(), mine.end(), [&](const SampleRef& o) {
                    return o.data() == s.data();
                });
                if (last) taken[s.epoch()][s.index()].store(false);
            }
        }
        for (auto& s : mine) taken[s.epoch()][s.index()].store(false);
    };
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < 4; ++t) threads.emplace_back(worker, 1234 + t);
    std::mt19937 rng(99);
    for (int cycle = 1; cycle < kMaxEpochs; ++cycle) {
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 500));
        REQUIRE(a.decommit() == std::error_code{});
        std::this_thread::sleep_for(std::chrono::microseconds(rng() % 100));
        REQUIRE(a.commit() == std::error_code{});
    }
    stop = true;
    for (auto& t : threads) t.join();
    CHECK(duplicates == 0);
    CHECK(foreign == 0);
    CHECK(corrupted == 0);
    auto st = a.stats();
    CHECK(st.outstanding == 0);
    CHECK(st.retired_pools == 0);
    CHECK(st.epoch == kMaxEpochs);
    // Every buffer of the current pool is there: take them all.
    std::vector<SampleRef> all;
    for (std::size_t i = 0; i < kBuffers; ++i) {
        auto r = a.try_get_buffer();
        REQUIRE(r);
        all.push_back(std::move(*r));
    }
    CHECK(a.try_get_buffer().error() == Errc::would_block);
}

// The per-thread caches: a sample parked by one thread's release is still free for everyone.
namespace {
// Threads share cache slot 0 until they first collide; these tests put a thread on its own
// slot at once, so that what it finds elsewhere it must steal.
void use_cache_slot(std::uintptr_t slot) { sluice::detail::cache_offset = slot * 64; }
}  // namespace

TEST_CASE("SampleAllocator.Cache.ParkedSampleIsFreeForOtherThreads" * doctest::timeout(30)) {
    SampleAllocator a;
    a.set_ledger_enabled(false);  // with it on (debug builds) nothing stays parked
    commit(a, props(1));
    (void)*a.get_buffer();  // taken and released: parked in this thread's cache
    CHECK(a.stats().outstanding == 0);
    // Another thread finds the pool's free list empty: try_get and get must both look in the caches.
    std::thread([&] {
        use_cache_slot(3);
        auto s = a.try_get_buffer();
        REQUIRE(s);
        s->reset();  // parked in that thread's cache now
    }).join();
    std::thread([&] {
        use_cache_slot(4);
        CHECK(a.get_buffer(1s));
    }).join();
    CHECK(a.get_buffer(1s));  // and back to this one
    CHECK(a.stats().gets == 4);  // every get counted, whichever path it took
}

TEST_CASE("SampleAllocator.Cache.WaiterGetsASampleParkedWhileItSlept" * doctest::timeout(30)) {
    SampleAllocator a;
    a.set_ledger_enabled(false);  // with it on (debug builds) nothing stays parked
    commit(a, props(1));
    auto held = *a.get_buffer();
    std::atomic<bool> got{false};
    std::thread waiter([&] {
        auto s = a.get_buffer(10s);
        got.store(s.has_value());
    });
    REQUIRE(eventually([&] { return a.stats().waiters == 1; }));
    held.reset();  // this thread's cache is empty: the release parks, sees the waiter, pushes, wakes
    waiter.join();
    CHECK(got.load());
}

TEST_CASE("SampleAllocator.Cache.DecommitCountsParkedSamplesAsFree") {
    SampleAllocator a;
    a.set_ledger_enabled(false);  // with it on (debug builds) nothing stays parked
    commit(a, props(2));
    const void* where = (*a.get_buffer()).data();  // parked
    std::thread([&] {
        use_cache_slot(5);
        auto s = *a.get_buffer();
        CHECK(s.data() != where);
    }).join();  // parked in that thread's cache
    REQUIRE(a.decommit() == std::error_code{});
    CHECK_FALSE(mapped(where));
    CHECK(a.stats().bytes_mapped == 0);
    CHECK(a.set_properties(props(3)));  // nothing counts as outstanding
    REQUIRE(a.commit() == std::error_code{});
    auto s = a.get_buffer();  // the cache holds nothing of the old pool
    REQUIRE(s);
    CHECK(s->epoch() == 2);
}

TEST_CASE("SampleAllocator.Cache.LedgerSwitchedOnRecordsAParkedSample") {
    SampleAllocator a;
    a.set_ledger_enabled(false);
    commit(a, props(1));
    (void)*a.get_buffer();  // parked while the ledger is off
    a.set_ledger_enabled(true);
    auto s = *a.get_buffer("render");
    auto entries = a.ledger();
    REQUIRE(entries.size() == 1);
    CHECK(entries[0].holder == "render");
}

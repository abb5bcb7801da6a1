// SPDX-License-Identifier: MIT
// Rule 5 and 10, counted rather than assumed: the hot path (get, add_ref, release) allocates
// nothing and makes no system call while buffers are free; the last release of a decommitted
// pool does not unmap memory on the releasing thread.
#include "../counting_new.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <thread>

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace std::chrono_literals;


namespace {

sluice::AllocatorProperties pool64() {
    return {.buffers = 64, .buffer_bytes = 4096, .alignment = 64, .prefix = 0, .numa_node = -1};
}

void churn(sluice::SampleAllocator& a, int pairs) {
    for (int i = 0; i < pairs; ++i) {
        auto s = a.get_buffer();
        auto t = a.try_get_buffer();
        if (!s || !t) std::abort();
        sluice::SampleRef copy = *s;  // add_ref
        copy.reset();
    }
}

// ---- seccomp: trap every system call with SIGSYS and count the traps.
volatile sig_atomic_t g_trapped_syscalls = 0;
[[maybe_unused]] void on_sigsys(int, siginfo_t*, void*) { g_trapped_syscalls = g_trapped_syscalls + 1; }

[[maybe_unused]] bool trap_all_syscalls_but_exit() {
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_rt_sigreturn, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_TRAP),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
    return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
}

}  // namespace

// With the ledger on (the free-list path: the ledger must not allocate either) and off (the
// per-thread cache, the default fast path of release builds).
TEST_CASE("SampleAllocator.HotPath.NoHeapAllocation") {
    for (const bool ledger : {true, false}) {
        CAPTURE(ledger);
        sluice::SampleAllocator a;
        a.set_ledger_enabled(ledger);
        REQUIRE(a.set_properties(pool64()));
        REQUIRE(a.commit() == std::error_code{});
        churn(a, 100);  // warm up
        const std::size_t before = test::allocations();
        churn(a, 10'000);
        CHECK(test::allocations() - before == 0);
        CHECK(a.stats().gets == 2 * 10'100);
    }
}

#if !defined(__SANITIZE_THREAD__) && !defined(__SANITIZE_ADDRESS__)
// The sanitizer runtimes make system calls of their own inside intercepted functions and do not
// deliver SIGSYS synchronously, so this one runs in the plain build only.
TEST_CASE("SampleAllocator.HotPath.NoSystemCalls" * doctest::timeout(60)) {
  for (const bool ledger : {true, false}) {  // the free-list path and the per-thread cache
    CAPTURE(ledger);
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        // Child: one thread. Set everything up, then forbid system calls and run the hot path.
        sluice::SampleAllocator* a = new sluice::SampleAllocator();
        a->set_ledger_enabled(ledger);
        if (!a->set_properties(pool64()) || a->commit()) ::_exit(100);
        churn(*a, 100);
        struct sigaction sa = {};
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        ::sigaction(SIGSYS, &sa, nullptr);
        if (!trap_all_syscalls_but_exit()) ::_exit(101);
        churn(*a, 10'000);
        ::syscall(SYS_exit_group, g_trapped_syscalls > 99 ? 99 : int(g_trapped_syscalls));
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);  // the number of system calls the hot path made
  }
}

TEST_CASE("SampleAllocator.HotPath.SeccompCountsSystemCalls") {
    // The probe above must be able to fail: the same child making one getpid() reports 1.
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
        struct sigaction sa = {};
        sa.sa_sigaction = on_sigsys;
        sa.sa_flags = SA_SIGINFO;
        ::sigaction(SIGSYS, &sa, nullptr);
        if (!trap_all_syscalls_but_exit()) ::_exit(101);
        ::syscall(SYS_getpid);
        ::syscall(SYS_exit_group, int(g_trapped_syscalls));
    }
    int status = 0;
    REQUIRE(::waitpid(child, &status, 0) == child);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 1);
}
#endif

// Rule 10: the releasing thread of a decommitted pool's last sample must not unmap it. That
// thread gets a seccomp filter refusing munmap of exactly the pool's mapping; if the allocator
// unmapped there, the memory would stay mapped and the wait below would fail.
TEST_CASE("SampleAllocator.Release.LastReleaseDoesNotUnmapOnCaller" * doctest::timeout(30)) {
    sluice::SampleAllocator a;
    REQUIRE(a.set_properties(pool64()));
    REQUIRE(a.commit() == std::error_code{});
    auto s = *a.get_buffer();
    std::byte* data = s.data();
    REQUIRE(a.decommit() == std::error_code{});

    std::atomic<bool> filtered{false};
    std::thread releaser([&, s = std::move(s)]() mutable {
        // Refuse (EPERM) munmap of exactly the pool's mapping on this thread. With prefix 0 and
        // alignment 64, the mapping starts 64 bytes (the reclaimer's node) before buffer 0, the
        // first sample handed out. Nothing else is refused, so sanitizer runtimes are unaffected.
        const auto base = std::uint64_t(std::uintptr_t(data)) - 64;
        struct sock_filter filter[] = {
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_munmap, 0, 5),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0]) + 4),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, std::uint32_t(base >> 32), 0, 3),
            BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
            BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, std::uint32_t(base), 0, 1),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
            BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
        filtered = ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
                   ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;
        s.reset();  // the last reference of a decommitted pool
    });
    releaser.join();
    REQUIRE(filtered);
    CHECK(a.stats().bytes_mapped == 0);
    const auto page = std::uintptr_t(data) & ~std::uintptr_t(::sysconf(_SC_PAGESIZE) - 1);
    unsigned char v;
    const auto until = std::chrono::steady_clock::now() + 10s;
    bool unmapped = false;
    while (!(unmapped = ::mincore(reinterpret_cast<void*>(page), 1, &v) != 0) && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(1ms);
    CHECK(unmapped);  // the housekeeping thread did it
}

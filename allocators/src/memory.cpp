// SPDX-License-Identifier: MIT
#include "memory.hpp"

#include <sluice/allocators/numa.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <new>
#include <string>

#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>


namespace sluice::detail {

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t physical_memory_bytes() noexcept {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    return pages > 0 ? static_cast<std::size_t>(pages) * page_size() : std::size_t(1) << 32;
}

namespace {

constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();

// The first number in `path`, or kUnlimited when the file is missing or says "max".
std::size_t read_bytes(const std::string& path) noexcept {
    std::FILE* f = std::fopen(path.c_str(), "re");
    if (f == nullptr) return kUnlimited;
    unsigned long long v = 0;
    const int n = std::fscanf(f, "%llu", &v);
    std::fclose(f);
    return n == 1 ? static_cast<std::size_t>(v) : kUnlimited;
}

// limit - usage of the cgroup at `dir` and of every ancestor below `root`.
std::size_t cgroup_headroom(const std::string& root, std::string path, const char* limit_file,
                            const char* usage_file) noexcept {
    std::size_t headroom = kUnlimited;
    for (;;) {
        const std::string dir = root + path;
        const std::size_t limit = read_bytes(dir + "/" + limit_file);
        if (limit != kUnlimited) {
            const std::size_t usage = read_bytes(dir + "/" + usage_file);
            const std::size_t used = usage == kUnlimited ? 0 : usage;
            headroom = std::min(headroom, limit > used ? limit - used : 0);
        }
        if (path.empty() || path == "/") return headroom;
        const std::size_t slash = path.find_last_of('/');
        path.resize(slash == std::string::npos ? 0 : slash);
    }
}

}  // namespace

std::size_t memory_headroom_bytes() noexcept {
    std::size_t headroom = kUnlimited;
    // The system: MemAvailable counts free memory plus what the kernel can reclaim at once.
    if (std::FILE* f = std::fopen("/proc/meminfo", "re")) {
        char line[256];
        while (std::fgets(line, sizeof line, f) != nullptr) {
            unsigned long long kb = 0;
            if (std::sscanf(line, "MemAvailable: %llu kB", &kb) == 1) {
                headroom = std::min<std::size_t>(headroom, kb * 1024);
                break;
            }
        }
        std::fclose(f);
    }
    // Memory cgroups: "N:memory:/path" (v1) or "0::/path" (v2), one line each.
    if (std::FILE* f = std::fopen("/proc/self/cgroup", "re")) {
        char line[4096];
        while (std::fgets(line, sizeof line, f) != nullptr) {
            line[std::strcspn(line, "\n")] = '\0';
            const char* first = std::strchr(line, ':');
            const char* second = first != nullptr ? std::strchr(first + 1, ':') : nullptr;
            if (second == nullptr) continue;
            const std::string controllers(first + 1, second);
            const std::string path(second + 1);
            if (controllers == "memory")
                headroom = std::min(headroom, cgroup_headroom("/sys/fs/cgroup/memory", path, "memory.limit_in_bytes",
                                                              "memory.usage_in_bytes"));
            else if (controllers.empty())
                headroom = std::min(headroom, cgroup_headroom("/sys/fs/cgroup", path, "memory.max", "memory.current"));
        }
        std::fclose(f);
    }
    // Address space: RLIMIT_AS minus what is mapped already.
    rlimit as{};
    if (::getrlimit(RLIMIT_AS, &as) == 0 && as.rlim_cur != RLIM_INFINITY) {
        std::size_t mapped = 0;
        if (std::FILE* f = std::fopen("/proc/self/statm", "re")) {
            unsigned long long pages = 0;
            if (std::fscanf(f, "%llu", &pages) == 1) mapped = pages * page_size();
            std::fclose(f);
        }
        headroom = std::min<std::size_t>(headroom, as.rlim_cur > mapped ? as.rlim_cur - mapped : 0);
    }
    return headroom;
}

int current_numa_node() noexcept {
    if (::numa_available() < 0) return 0;
    const int cpu = ::sched_getcpu();
    const int node = cpu >= 0 ? ::numa_node_of_cpu(cpu) : -1;
    return node >= 0 ? node : 0;
}

bool numa_node_exists(int node) noexcept {
    if (node < 0) return false;
    if (::numa_available() < 0) return node == 0;
    return node <= ::numa_max_node() && ::numa_bitmask_isbitset(numa_all_nodes_ptr, unsigned(node));
}

namespace {

constexpr std::size_t kHugePage = std::size_t(2) << 20;  // x86-64's and arm64's (4 KiB granule) PMD page

bool bind(std::byte* base, std::size_t size, int node) noexcept {
    bool bound = false;
    if (::numa_available() >= 0 && node >= 0) {
        // One mask word covers 64 nodes; larger systems need the libnuma bitmask form.
        struct bitmask* mask = ::numa_bitmask_alloc(unsigned(::numa_max_possible_node() + 1));
        if (mask != nullptr) {
            ::numa_bitmask_setbit(mask, unsigned(node));
            bound = ::mbind(base, size, MPOL_BIND, mask->maskp, mask->size + 1,
                            MPOL_MF_STRICT | MPOL_MF_MOVE) == 0;
            ::numa_bitmask_free(mask);
        }
    }
    return bound;
}

// Touch every page now: the first write faults the page in on the bound node, here on the
// control thread, instead of on a streaming thread's first get.
void touch(std::byte* base, std::size_t size) noexcept {
    const std::size_t step = page_size();
    for (std::size_t off = 0; off < size; off += step)
        reinterpret_cast<volatile unsigned char*>(base)[off] = 0;
}

}  // namespace

bool bind_and_touch(std::byte* base, std::size_t size, int node) noexcept {
    const bool bound = bind(base, size, node);
    touch(base, size);
    return bound;
}

Result<Mapping> map_memory(std::size_t size, int node, bool reserve_only) noexcept {
    if (reserve_only) {
        void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) return unexpected(Errc::out_of_memory);
        return Mapping{static_cast<std::byte*>(p), size, -1};
    }
    // Mapped inaccessible first: under mlockall(MCL_FUTURE) (sluice-play --rt-priority, any
    // real-time app) the kernel faults a readable mapping in whole inside mmap, before it could
    // be aligned, advised or bound. An inaccessible one is faulted in by the mprotect below.
    // A pool of 2 MiB or more starts on a huge-page boundary (the slack on either side given
    // back) and asks for transparent huge pages: a pool of video pictures then costs a few
    // faults instead of thousands, and the decoder writing them fewer TLB misses.
    std::size_t slack = size >= kHugePage ? kHugePage - page_size() : 0;
    void* p = ::mmap(nullptr, size + slack, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED && slack != 0) {  // no room for the slack (RLIMIT_AS): unaligned then
        slack = 0;
        p = ::mmap(nullptr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    }
    if (p == MAP_FAILED) return unexpected(Errc::out_of_memory);
    auto* base = static_cast<std::byte*>(p);
    if (slack != 0) {
        const auto addr = reinterpret_cast<std::uintptr_t>(base);
        const std::size_t head = ((addr + kHugePage - 1) & ~(std::uintptr_t(kHugePage) - 1)) - addr;
        if (head != 0) ::munmap(base, head);
        if (slack - head != 0) ::munmap(base + head + size, slack - head);
        base += head;
        // Advice only: where transparent huge pages are off, the pool keeps 4 KiB pages.
        (void)::madvise(base, size, MADV_HUGEPAGE);
    }
    const int target = node >= 0 ? node : current_numa_node();
    const bool bound = bind(base, size, target);
    if (!bound && node >= 0 && ::numa_available() >= 0) {
        // An explicit node that the kernel will not bind to is as good as unknown.
        ::munmap(base, size);
        return unexpected(Errc::invalid_properties);
    }
    if (::mprotect(base, size, PROT_READ | PROT_WRITE) != 0) {
        ::munmap(base, size);
        return unexpected(Errc::out_of_memory);
    }
    touch(base, size);
    return Mapping{base, size, bound ? target : -1};
}

void unmap_memory(void* base, std::size_t size) noexcept {
    if (base != nullptr) ::munmap(base, size);
}

void release_pages(std::byte* base, std::size_t size) noexcept { ::madvise(base, size, MADV_DONTNEED); }

void* control_alloc(std::size_t size) noexcept { return ::operator new(size, std::align_val_t(64), std::nothrow); }

void control_free(void* p) noexcept { ::operator delete(p, std::align_val_t(64)); }

}  // namespace sluice::detail

namespace sluice {
int numa_node_of_cpu(int cpu) noexcept {
    if (cpu < 0) return -1;
    if (::numa_available() < 0) return 0;
    return ::numa_node_of_cpu(cpu);
}
}  // namespace sluice

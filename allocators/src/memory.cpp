// SPDX-License-Identifier: MIT
#include "memory.hpp"

#include <sluice/allocators/sample_allocator.hpp>

#include <cstdint>
#include <new>

#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#if SLUICE_USE_MIMALLOC
#include <mimalloc.h>
#endif

namespace sluice::detail {

std::size_t page_size() noexcept {
    static const std::size_t size = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return size;
}

std::size_t physical_memory_bytes() noexcept {
    const long pages = ::sysconf(_SC_PHYS_PAGES);
    return pages > 0 ? static_cast<std::size_t>(pages) * page_size() : std::size_t(1) << 32;
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

bool bind_and_touch(std::byte* base, std::size_t size, int node) noexcept {
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
    // Touch every page now: the first write faults the page in on the bound node, here on the
    // control thread, instead of on a streaming thread's first get.
    const std::size_t step = page_size();
    for (std::size_t off = 0; off < size; off += step)
        reinterpret_cast<volatile unsigned char*>(base)[off] = 0;
    return bound;
}

Result<Mapping> map_memory(std::size_t size, int node, bool reserve_only) noexcept {
    const int flags = MAP_PRIVATE | MAP_ANONYMOUS | (reserve_only ? MAP_NORESERVE : 0);
    void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
    if (p == MAP_FAILED) return unexpected(Errc::out_of_memory);
    Mapping m{static_cast<std::byte*>(p), size, -1};
    if (reserve_only) return m;
    const int target = node >= 0 ? node : current_numa_node();
    if (bind_and_touch(m.base, size, target)) {
        m.node = target;
    } else if (node >= 0 && ::numa_available() >= 0) {
        // An explicit node that the kernel will not bind to is as good as unknown.
        ::munmap(p, size);
        return unexpected(Errc::invalid_properties);
    }
    return m;
}

void unmap_memory(void* base, std::size_t size) noexcept {
    if (base != nullptr) ::munmap(base, size);
}

void release_pages(std::byte* base, std::size_t size) noexcept { ::madvise(base, size, MADV_DONTNEED); }

void* control_alloc(std::size_t size) noexcept {
#if SLUICE_USE_MIMALLOC
    return ::mi_zalloc_aligned(size, 64);
#else
    return ::operator new(size, std::align_val_t(64), std::nothrow);
#endif
}

void control_free(void* p) noexcept {
#if SLUICE_USE_MIMALLOC
    ::mi_free(p);
#else
    ::operator delete(p, std::align_val_t(64));
#endif
}

}  // namespace sluice::detail

namespace sluice {
int numa_node_of_cpu(int cpu) noexcept {
    if (cpu < 0) return -1;
    if (::numa_available() < 0) return 0;
    return ::numa_node_of_cpu(cpu);
}
}  // namespace sluice

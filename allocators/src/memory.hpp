// SPDX-License-Identifier: MIT
#pragma once

// Page-level memory for pools: mapped with mmap, bound to a NUMA node with mbind, every page
// touched at map time so no page fault (and no allocation) happens on the hot path later; a
// mapping of 2 MiB or more starts on a 2 MiB boundary and asks for transparent huge pages.

#include <sluice/allocators/result.hpp>

#include <cstddef>

namespace sluice::detail {

std::size_t page_size() noexcept;
std::size_t physical_memory_bytes() noexcept;
// How much more memory this process may fault in before something kills or refuses it: the
// least of the system's available memory, the headroom of every memory cgroup it is in (v1 and
// v2, up to the root) and what RLIMIT_AS leaves. Control path: reads /proc and /sys.
std::size_t memory_headroom_bytes() noexcept;

// The NUMA node of the CPU the calling thread runs on (0 when the system has no NUMA support).
int current_numa_node() noexcept;
// Whether `node` names a node this system has memory on.
bool numa_node_exists(int node) noexcept;

struct Mapping {
    std::byte* base = nullptr;
    std::size_t size = 0;
    int node = -1;  // node every page is bound to; -1 when the kernel refused binding
};

// Maps `size` bytes (a multiple of the page size) on `node` (-1: the calling thread's node) and
// touches every page. Errors: out_of_memory; invalid_properties when an explicit node cannot be
// bound. With `reserve_only`, maps without touching or binding (address space for the arena).
Result<Mapping> map_memory(std::size_t size, int node, bool reserve_only = false) noexcept;
void unmap_memory(void* base, std::size_t size) noexcept;

// Binds already-mapped pages to `node`, moving any already touched (best effort), then touches
// them. Returns whether the binding took.
bool bind_and_touch(std::byte* base, std::size_t size, int node) noexcept;

// Gives pages back to the OS while keeping the mapping readable (reads see zeros).
void release_pages(std::byte* base, std::size_t size) noexcept;

// Small control allocations (pool records): the host's operator new, cache-line aligned (64
// bytes). Never throws; nullptr on failure.
void* control_alloc(std::size_t size) noexcept;
void control_free(void* p) noexcept;

}  // namespace sluice::detail

// SPDX-License-Identifier: MIT
#pragma once

// NUMA placement helpers for choosing AllocatorProperties::numa_node.

namespace sluice {

// The NUMA node of `cpu` (for placing a pool near the thread that will fill it); -1 when the
// CPU is unknown, 0 on a system without NUMA. Any thread; never allocates.
int numa_node_of_cpu(int cpu) noexcept;

}  // namespace sluice

// SPDX-License-Identifier: MIT
#pragma once

// Everything an app needs from Sluice, in one include.

#include <sluice/allocators/result.hpp>
#include <sluice/allocators/sample.hpp>
#include <sluice/allocators/numa.hpp>
#include <sluice/allocators/event_count.hpp>
#include <sluice/allocators/sample_allocator.hpp>

#include <sluice/engine/clock.hpp>
#include <sluice/engine/format.hpp>
#include <sluice/engine/graph.hpp>
#include <sluice/engine/log.hpp>
#include <sluice/engine/node.hpp>
#include <sluice/engine/status.hpp>
#include <sluice/nodes/app.hpp>
#include <sluice/nodes/pipeline.hpp>
#include <sluice/nodes/plugin.hpp>
#include <sluice/nodes/registry.hpp>

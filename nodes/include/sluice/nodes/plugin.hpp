// SPDX-License-Identifier: MIT
#pragma once

// Plugins: node types in a shared object of their own, loaded at run time, as GStreamer loads a
// plugin (GST_PLUGIN_DEFINE) or PipeWire an SPA handle factory. A plugin is a .so with one entry
// point, made with SLUICE_PLUGIN:
//
//   sluice::Status register_my_nodes() {
//       return sluice::nodes::register_node_type({"invert", sluice::engine::Node::Kind::transform,
//                                                 "inverts audio", {}, sluice::nodes::factory<Invert>()});
//   }
//   SLUICE_PLUGIN(register_my_nodes)
//
// The entry records the plugin ABI it was built against and the registry it registers into; a
// plugin of another ABI, one that would register into a Sluice other than the program's (a
// program linked statically against Sluice: build it and its plugins against the shared
// libraries), or a file that is not a plugin, is refused with a one-line message naming the file. A plugin's types either
// all register or none does.

#include <sluice/engine/status.hpp>
#include <sluice/version.hpp>

#include <cstdint>
#include <string>

namespace sluice::nodes {

// Changes whenever what a plugin compiles against changes shape (Node, NodeSpec, PropertyReader,
// the allocator's inline paths, MediaFormat, PluginEntry): the major version, and a revision
// within it. Revision 2: MediaFormat gained its colour matrix and range. Revision 3: the entry
// names the registry the plugin registers into; Node's host-driven methods became public and the
// pins share a Pin base (another layout). Revision 4: BufferNeeds gained `exact` (24 bytes,
// returned through memory where its 16 came back in registers). Revision 5: Node gained
// owns_streaming_thread() and forget_end_of_stream() (every later slot of its vtable moved).
inline constexpr std::uint32_t kPluginAbi = (std::uint32_t(SLUICE_VERSION_MAJOR) << 16) | 5;

namespace detail {
// The registry that code calling register_node_type() registers into, as that code's linking
// resolved it. A plugin and the program that loads it must share one. They do not when the
// program links Sluice statically (its Sluice is not visible to what it loads) and the plugin
// brings a Sluice of its own (the shared libraries, or a static copy); the plugin would then
// register into its own copy, where no pipeline of the program looks, so load_plugin() refuses
// it. Any thread; the first call makes the registry (allocates).
const void* registry_identity();
}  // namespace detail

struct PluginEntry {
    std::uint32_t abi;                        // kPluginAbi as the plugin saw it
    const char* sluice_version;               // SLUICE_VERSION_STRING as the plugin saw it
    Status (*register_types)();               // registers the plugin's node types
    const void* (*registry_identity)();  // detail::registry_identity as the plugin linked it
};

// Loads the plugin at `path` and registers its node types (their origin is the path). Errors:
// not loadable, not a Sluice plugin, another ABI, a Sluice of its own, a type name already taken
// (nothing of the plugin is registered then). A plugin is never unloaded. Control thread; locks; allocates.
Status load_plugin(const std::string& path);

// Loads every *.so in the folders of `path_list` (colon-separated, as SLUICE_PLUGIN_PATH is),
// in name order; stops at the first failure. Control thread.
Status load_plugins_from(const std::string& path_list);

}  // namespace sluice::nodes

// Defines the plugin's entry point. Use once per plugin, at namespace scope.
#define SLUICE_PLUGIN(register_function)                                                              \
    extern "C" __attribute__((visibility("default"))) const ::sluice::nodes::PluginEntry sluice_plugin_entry{ \
        ::sluice::nodes::kPluginAbi, SLUICE_VERSION_STRING, &(register_function),                   \
        &::sluice::nodes::detail::registry_identity}

// SPDX-License-Identifier: MIT
// What load_plugin() sees of a plugin that carries a Sluice of its own (linked statically against
// Sluice's libraries): an entry of the right ABI whose registry is not the program's. A static
// copy of the whole engine would show the same to the loader and cost a second build of the
// libraries; this file stands for it, for the test of that refusal. Nobody would write one.
#include <sluice/nodes/plugin.hpp>

namespace {
sluice::Status register_nothing() { return {}; }
int own_registry;  // the copy's registry, as its registry_identity() would answer
const void* own_registry_identity() noexcept { return &own_registry; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const sluice::nodes::PluginEntry sluice_plugin_entry{
    sluice::nodes::kPluginAbi, SLUICE_VERSION_STRING, &register_nothing, &own_registry_identity};

// SPDX-License-Identifier: MIT
// A plugin built against another plugin ABI than this Sluice's: load_plugin() refuses it. (The
// test of that refusal builds it; nobody would write one.)
#include <sluice/nodes/plugin.hpp>

namespace {
sluice::Status register_nothing() { return {}; }
}  // namespace

extern "C" __attribute__((visibility("default"))) const sluice::nodes::PluginEntry sluice_plugin_entry{
    sluice::nodes::kPluginAbi + 0x10000, "99.0.0", &register_nothing, nullptr};

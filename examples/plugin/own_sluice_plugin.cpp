// SPDX-License-Identifier: MIT
// What load_plugin() sees of a plugin that would register into a Sluice other than the program's
// (a program linked statically against Sluice, loading a plugin that brings its own): an entry of
// the right ABI whose registry is not the program's. A static build of the whole engine would
// show the loader the same and cost a second build of the libraries; this file stands for it, for
// the test of that refusal. Nobody would write one.
#include <sluice/nodes/plugin.hpp>
#include <sluice/nodes/registry.hpp>

namespace {

// Registers a type (into the program's registry, since this plugin links the shared library),
// so that the test sees it if load_plugin() ever let this plugin's registration through.
class Unseen final : public sluice::engine::Node {
public:
    Unseen(std::string name, sluice::nodes::PropertyReader&) : Node(std::move(name), Kind::render) { add_input("sink", {}); }
};
sluice::Status register_unseen() {
    return sluice::nodes::register_node_type(
        {"own-sluice-unseen", sluice::engine::Node::Kind::render, "never registered", {}, sluice::nodes::factory<Unseen>()});
}

int own_registry;  // the other Sluice's registry, as its registry_identity() would answer
const void* own_registry_identity() { return &own_registry; }

}  // namespace

extern "C" __attribute__((visibility("default"))) const sluice::nodes::PluginEntry sluice_plugin_entry{
    sluice::nodes::kPluginAbi, SLUICE_VERSION_STRING, &register_unseen, &own_registry_identity};

// SPDX-License-Identifier: MIT
#pragma once

// The node registry: every node type by name ("tone", "wavsink", ..., and an app's or a plugin's
// own), its properties with defaults and help, and a factory that builds a node from key=value
// properties, answering bad values with a one-line message that names the node and the property.
// A type registered here works in build_pipeline strings exactly as the built-in ones do.
//
// Threading: any thread; the registry takes its own lock. Allocates.

#include <sluice/engine/node.hpp>
#include <sluice/engine/status.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace sluice::nodes {

using engine::Node;

struct PropertySpec {
    // A name with `%u` in it is a template, as GStreamer's pad templates are: `sink_%u::db`
    // stands for `sink_0::db`, `sink_1::db`... (a property of each input of a node whose inputs
    // are made by links, like mix's). A template has no value of its own until one is given.
    std::string name;
    std::string default_value;  // as it would be written in a pipeline
    std::string help;
    // May change while the graph runs (Graph::set_property): the node's set_property takes it.
    bool live = false;

    // Whether `key` names this property (`name` itself, or an instance of the template).
    bool matches(std::string_view key) const;
};

using Properties = std::map<std::string, std::string, std::less<>>;

class PropertyReader;

struct NodeSpec {
    std::string type;
    Node::Kind kind;
    std::string help;
    std::vector<PropertySpec> properties;
    // Builds the node; reads properties through `reader`, which records the first bad value.
    std::function<std::unique_ptr<Node>(std::string name, PropertyReader& reader)> make;
    // Where the type comes from: "built-in", "app", or a plugin's file. Set by the registry.
    std::string origin = {};
};

// The `make` of a node class whose constructor takes (std::string name, PropertyReader&).
template <class N>
auto factory() {
    return [](std::string name, PropertyReader& reader) -> std::unique_ptr<Node> {
        return std::make_unique<N>(std::move(name), reader);
    };
}

// Adds a node type; from then on build_pipeline and create_node know it. Errors: a type name
// that is already registered (built-in or not), an empty name, no factory.
Status register_node_type(NodeSpec spec);

// Every registered node type: the built-in ones in the order --list shows them, then the others
// in the order they were registered. A snapshot.
std::vector<NodeSpec> node_specs();
// The registered type `type`, or nullptr. The pointer stays valid for the life of the process.
const NodeSpec* find_node_spec(std::string_view type);

// Builds a node of `type` named `name`. Errors: unknown type, unknown property, bad value.
Status create_node(std::string_view type, std::string name, const Properties& properties,
                   std::unique_ptr<Node>& out);

// Typed access to a node's properties with range checks; remembers the first error.
class PropertyReader {
public:
    PropertyReader(const NodeSpec& spec, std::string node_name, const Properties& values);

    double number(std::string_view key, double min, double max);
    std::int64_t integer(std::string_view key, std::int64_t min, std::int64_t max);
    std::string text(std::string_view key);
    // Whether the pipeline gave `key` (rather than the default standing in).
    bool given(std::string_view key) const { return values_.find(key) != values_.end(); }
    // Every key the pipeline gave, in sorted order (for a template's instances: `sink_%u::db`).
    std::vector<std::string> given_keys() const {
        std::vector<std::string> keys;
        for (const auto& [key, value] : values_) keys.push_back(key);
        return keys;
    }
    // One of `choices`; returns its index.
    std::size_t choice(std::string_view key, const std::vector<std::string>& choices);
    bool flag(std::string_view key);

    // Reads one new value of a live property, with the same checks and messages as when the node
    // was made: `read` calls number(), choice()... on the reader. For Node::set_property.
    template <class Read>
    static Status read_live(const Node& node, std::string_view key, std::string_view value, Read&& read) {
        const Properties values{{std::string(key), std::string(value)}};
        const NodeSpec* spec = find_node_spec(node.type_name());
        const NodeSpec none{};
        PropertyReader reader(spec ? *spec : none, node.name(), values);
        read(reader);
        return reader.status();
    }

    // A failure found by the node itself (a missing file...).
    void fail(std::error_code code, std::string message);
    bool ok() const noexcept { return status_.ok(); }
    const Status& status() const noexcept { return status_; }
    const std::string& node_name() const noexcept { return node_name_; }

private:
    std::string raw(std::string_view key) const;
    void bad(std::string_view key, const std::string& value, const std::string& why);

    const NodeSpec& spec_;
    std::string node_name_;
    const Properties& values_;
    Status status_;
};

}  // namespace sluice::nodes

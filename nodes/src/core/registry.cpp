// SPDX-License-Identifier: MIT
#include <sluice/nodes/registry.hpp>
#include <sluice/nodes/plugin.hpp>  // detail::registry_identity

#include "core/common.hpp"
#include "core/registry_impl.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <type_traits>

namespace sluice::nodes {

std::vector<NodeSpec> builtin_node_specs();  // builtin_nodes.cpp, generated

namespace detail {

Registry& Registry::instance() {
    static Registry* const registry = [] {
        auto* r = new Registry();  // immortal: plugins' code outlives static destruction anyway
        for (NodeSpec& spec : builtin_node_specs()) {
            spec.origin = "built-in";
            r->specs_.push_back(std::move(spec));
        }
        return r;
    }();
    return *registry;
}

const void* registry_identity() { return &Registry::instance(); }

Status Registry::check(const NodeSpec& spec) const {
    if (spec.type.empty()) return {engine::GraphErrc::invalid_argument, "a node type needs a name"};
    if (!spec.make) return {engine::GraphErrc::invalid_argument, "node type '" + printable(spec.type) + "' has no factory"};
    auto taken = [&](const NodeSpec& s) { return s.type == spec.type; };
    const auto same = std::find_if(specs_.begin(), specs_.end(), taken);
    if (same != specs_.end())
        return {engine::GraphErrc::invalid_argument, "node type '" + printable(spec.type) + "' is already registered (" +
                                            printable(same->origin) + ")"};
    if (staging_ != nullptr && std::any_of(staging_->begin(), staging_->end(), taken))
        return {engine::GraphErrc::invalid_argument, "node type '" + printable(spec.type) + "' is registered twice"};
    return {};
}

Status Registry::add(NodeSpec spec) {
    std::lock_guard lock(mutex_);
    if (Status st = check(spec); !st) return st;
    if (staging_ != nullptr) {  // a plugin's: all of them or none, see load_plugin
        spec.origin = staging_origin_;
        staging_->push_back(std::move(spec));
        return {};
    }
    if (spec.origin.empty()) spec.origin = "app";
    specs_.push_back(std::move(spec));
    return {};
}

std::vector<NodeSpec> Registry::all() const {
    std::lock_guard lock(mutex_);
    return {specs_.begin(), specs_.end()};
}

const NodeSpec* Registry::find(std::string_view type) const {
    std::lock_guard lock(mutex_);
    for (const NodeSpec& s : specs_)
        if (s.type == type) return &s;
    return nullptr;
}

}  // namespace detail

Status register_node_type(NodeSpec spec) { return detail::Registry::instance().add(std::move(spec)); }
std::vector<NodeSpec> node_specs() { return detail::Registry::instance().all(); }
const NodeSpec* find_node_spec(std::string_view type) { return detail::Registry::instance().find(type); }

Status create_node(std::string_view type, std::string name, const Properties& properties, std::unique_ptr<Node>& out) {
    const NodeSpec* spec = find_node_spec(type);
    if (spec == nullptr) return {engine::GraphErrc::invalid_argument, "unknown node '" + detail::printable(type) + "'"};
    for (const auto& [key, value] : properties) {
        bool known = key == "name";
        for (const auto& p : spec->properties) known = known || p.matches(key);
        if (!known) {
            std::string names;
            for (const auto& p : spec->properties) names += (names.empty() ? "" : ", ") + p.name;
            return {engine::GraphErrc::invalid_argument, detail::printable(name) + ": " + spec->type + " has no property '" +
                                                detail::printable(key) + "' (it has: " + (names.empty() ? "none" : names) + ")"};
        }
    }
    PropertyReader reader(*spec, name, properties);
    std::unique_ptr<Node> node = spec->make(std::move(name), reader);
    if (!reader.ok()) return reader.status();
    if (node == nullptr) return {engine::GraphErrc::invalid_argument, spec->type + ": its factory made no node"};
    node->set_type_name(spec->type);
    Node::PropertyValues made_with;
    for (const auto& p : spec->properties) {
        if (p.name.find("%u") != std::string::npos) {  // a template: the instances given
            for (const auto& [key, value] : properties)
                if (p.matches(key)) made_with.emplace_back(key, value);
            continue;
        }
        auto it = properties.find(p.name);
        made_with.emplace_back(p.name, it != properties.end() ? it->second : p.default_value);
    }
    node->set_made_with(std::move(made_with));
    out = std::move(node);
    return {};
}

PropertyReader::PropertyReader(const NodeSpec& spec, std::string node_name, const Properties& values)
    : spec_(spec), node_name_(std::move(node_name)), values_(values) {}

std::string PropertyReader::raw(std::string_view key) const {
    if (auto it = values_.find(key); it != values_.end()) return it->second;
    for (const auto& p : spec_.properties)
        if (p.matches(key)) return p.default_value;
    return {};
}

bool PropertySpec::matches(std::string_view key) const {
    const auto at = name.find("%u");
    if (at == std::string::npos) return key == name;
    const std::string_view head = std::string_view(name).substr(0, at);
    const std::string_view tail = std::string_view(name).substr(at + 2);
    if (key.size() <= head.size() + tail.size() || !key.starts_with(head) || !key.ends_with(tail)) return false;
    const std::string_view digits = key.substr(head.size(), key.size() - head.size() - tail.size());
    // A plain decimal number, no leading zero but "0" itself: one spelling per input.
    if (digits.size() > 1 && digits[0] == '0') return false;
    return std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void PropertyReader::bad(std::string_view key, const std::string& value, const std::string& why) {
    if (status_.ok())
        status_ = Status(engine::GraphErrc::invalid_argument, detail::printable(node_name_) + ": property " + std::string(key) + "='" +
                                                     detail::printable(value) + "' " + why);
}

void PropertyReader::fail(std::error_code code, std::string message) {
    if (status_.ok()) status_ = Status(code, node_name_ + ": " + message);
}

// Numbers are written plainly: decimal digits, an optional '-', a fraction and an exponent; no
// spaces, no hexadecimal (strtod would take " 5" and "0x10"), no inf or nan.
namespace {

// Reads all of `v` into `out` and checks it lies in [min, max]; says why not, or nothing.
template <class T, class... Form>
std::optional<std::string> parse_in_range(const std::string& v, T& out, T min, T max, const char* not_a, Form... form) {
    const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), out, form...);
    bool finite = true;
    if constexpr (std::is_floating_point_v<T>) finite = std::isfinite(out);
    if (v.empty() || end != v.data() + v.size() || ec != std::errc() || !finite) return std::string(not_a);
    if (out < min || out > max) return "is out of range [" + std::to_string(min) + ", " + std::to_string(max) + "]";
    return std::nullopt;
}

}  // namespace

double PropertyReader::number(std::string_view key, double min, double max) {
    const std::string v = raw(key);
    double d = 0;
    if (auto why = parse_in_range(v, d, min, max, "is not a number", std::chars_format::general)) {
        bad(key, v, *why);
        return min;
    }
    return d;
}

std::int64_t PropertyReader::integer(std::string_view key, std::int64_t min, std::int64_t max) {
    const std::string v = raw(key);
    std::int64_t n = 0;
    if (auto why = parse_in_range(v, n, min, max, "is not an integer", 10)) {
        bad(key, v, *why);
        return min;
    }
    return n;
}

std::string PropertyReader::text(std::string_view key) { return raw(key); }

std::size_t PropertyReader::choice(std::string_view key, const std::vector<std::string>& choices) {
    const std::string v = raw(key);
    for (std::size_t i = 0; i < choices.size(); ++i)
        if (choices[i] == v) return i;
    std::string all;
    for (const auto& c : choices) all += (all.empty() ? "" : "|") + c;
    bad(key, v, "is not one of " + all);
    return 0;
}

bool PropertyReader::flag(std::string_view key) {
    const std::string v = raw(key);
    if (v == "true" || v == "1" || v == "yes") return true;
    if (v == "false" || v == "0" || v == "no") return false;
    bad(key, v, "is not true or false");
    return false;
}

}  // namespace sluice::nodes

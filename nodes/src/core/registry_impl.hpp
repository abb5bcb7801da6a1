// SPDX-License-Identifier: MIT
#pragma once

// The registry's state, shared by registry.cpp and plugin.cpp.

#include <sluice/nodes/registry.hpp>

#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace sluice::nodes::detail {

class Registry {
public:
    static Registry& instance();

    Status add(NodeSpec spec);
    std::vector<NodeSpec> all() const;
    const NodeSpec* find(std::string_view type) const;

    // While a plugin registers its types, they gather here (with the plugin's file as their
    // origin) and join the registry only if every one of them was accepted. Control thread;
    // serialised by the caller (load_plugin holds plugin_mutex).
    template <class F>
    Status staged(const std::string& origin, F&& register_types) {
        std::vector<NodeSpec> staged;
        {
            std::lock_guard lock(mutex_);
            staging_ = &staged;
            staging_origin_ = origin;
        }
        Status st = register_types();
        std::lock_guard lock(mutex_);
        staging_ = nullptr;
        if (!st) return st;
        for (NodeSpec& spec : staged) specs_.push_back(std::move(spec));
        return {};
    }

    std::mutex plugin_mutex;  // one plugin loads at a time

private:
    Registry() = default;
    Status check(const NodeSpec& spec) const;

    mutable std::mutex mutex_;
    std::deque<NodeSpec> specs_;  // a deque: find()'s pointers stay valid as types are added
    std::vector<NodeSpec>* staging_ = nullptr;
    std::string staging_origin_;
};

}  // namespace sluice::nodes::detail

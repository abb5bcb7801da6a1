// SPDX-License-Identifier: MIT
#include <sluice/nodes/plugin.hpp>

#include "core/common.hpp"
#include "core/registry_impl.hpp"

#include <algorithm>
#include <filesystem>
#include <vector>

#include <dlfcn.h>

namespace sluice::nodes {

Status load_plugin(const std::string& path) {
    detail::Registry& registry = detail::Registry::instance();
    std::lock_guard lock(registry.plugin_mutex);
    const std::string name = detail::printable(path);
    // RTLD_LOCAL: a plugin's own symbols stay its own; it finds Sluice's in the libraries loaded.
    void* handle = ::dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (handle == nullptr) {
        const char* why = ::dlerror();
        return {engine::GraphErrc::invalid_argument, "plugin " + name + " cannot be loaded: " + detail::printable(why ? why : "?")};
    }
    const auto* entry = static_cast<const PluginEntry*>(::dlsym(handle, "sluice_plugin_entry"));
    if (entry == nullptr) {
        ::dlclose(handle);
        return {engine::GraphErrc::invalid_argument, name + " is not a Sluice plugin (it has no sluice_plugin_entry)"};
    }
    if (entry->abi != kPluginAbi || entry->register_types == nullptr) {
        // Read before dlclose(): the entry lives in the plugin.
        const std::string built = entry->sluice_version ? detail::printable(entry->sluice_version) : "?";
        const std::uint32_t abi = entry->abi;
        ::dlclose(handle);
        return {engine::GraphErrc::invalid_argument, "plugin " + name + " was built for plugin ABI " +
                                            std::to_string(abi >> 16) + "." + std::to_string(abi & 0xFFFF) +
                                            " (Sluice " + built + "); this is ABI " + std::to_string(kPluginAbi >> 16) +
                                            "." + std::to_string(kPluginAbi & 0xFFFF) + " (Sluice " + version() + ")"};
    }
    // Its registry is ours only if it resolved Sluice to the libraries this program uses. It
    // stays loaded: its code (and a static copy's constructors) ran.
    if (entry->registry_identity == nullptr || entry->registry_identity() != detail::registry_identity())
        return {engine::GraphErrc::invalid_argument,
                "plugin " + name + " registers into a Sluice of its own, not this program's (one of the two links "
                                   "Sluice statically; build both against the shared libsluice_nodes)"};
    Status st = registry.staged(path, [&] {
        try {
            return entry->register_types();
        } catch (const std::exception& e) {
            return Status{engine::GraphErrc::bad_state, std::string("it threw: ") + e.what()};
        } catch (...) {
            return Status{engine::GraphErrc::bad_state, "it threw"};
        }
    });
    if (!st) {
        // Its types are not registered, but code of it may have run: it stays loaded.
        return {st.code(), "plugin " + name + ": " + st.message()};
    }
    return {};
}

Status load_plugins_from(const std::string& path_list) {
    std::size_t begin = 0;
    while (begin <= path_list.size()) {
        const std::size_t end = std::min(path_list.find(':', begin), path_list.size());
        const std::string folder = path_list.substr(begin, end - begin);
        begin = end + 1;
        if (folder.empty()) continue;
        std::error_code ec;
        std::vector<std::filesystem::path> files;
        for (const auto& entry : std::filesystem::directory_iterator(folder, ec))
            if (entry.path().extension() == ".so") files.push_back(entry.path());
        if (ec) return {engine::GraphErrc::io_error, "plugin folder " + detail::printable(folder) + ": " + ec.message()};
        std::sort(files.begin(), files.end());
        for (const auto& f : files)
            if (Status st = load_plugin(f.string()); !st) return st;
    }
    return {};
}

}  // namespace sluice::nodes

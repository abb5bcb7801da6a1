// SPDX-License-Identifier: MIT
// Graph::to_dot(): the graph as Graphviz sees it, as GStreamer's pipeline dumps show a pipeline.
// Built from the public view of the graph (nodes, pins, formats, pools), so it shows what an
// app could find out for itself, on one page.
#include <sluice/engine/graph.hpp>

#include <cstdio>
#include <string>
#include <string_view>

namespace sluice::engine {
namespace {

// `text` as the inside of a DOT string: quotes and backslashes escaped, newlines as DOT's \n,
// other control bytes dropped (a node name comes from the user).
std::string escaped(std::string_view text) {
    std::string out;
    for (const char c : text) {
        if (c == '"' || c == '\\') out += '\\', out += c;
        else if (c == '\n') out += "\\n";
        else if (static_cast<unsigned char>(c) >= 0x20) out += c;
    }
    return out;
}

const char* kind_name(Node::Kind k) {
    switch (k) {
        case Node::Kind::source: return "source";
        case Node::Kind::transform: return "transform";
        case Node::Kind::render: return "render";
    }
    return "?";
}

// "24 x 1.4 MB": a pool's size as prepare() made it (empty before).
std::string pool_text(const OutputPin& out) {
    const AllocatorProperties p = out.allocator().properties();
    if (p.buffers == 0) return {};
    const double bytes = double(p.buffer_bytes);
    char size[32];
    if (bytes >= 1e6) std::snprintf(size, sizeof size, "%.1f MB", bytes / 1e6);
    else if (bytes >= 1e3) std::snprintf(size, sizeof size, "%.1f kB", bytes / 1e3);
    else std::snprintf(size, sizeof size, "%.0f B", bytes);
    return "pool " + std::to_string(p.buffers) + " x " + size;
}

}  // namespace

std::string Graph::to_dot() const {
    const std::vector<Node*> all = nodes();
    std::string dot = "digraph sluice {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"sans\"];\n"
                      "  edge [fontname=\"sans\", fontsize=10];\n";
    auto id = [&](const Node* n) {
        for (std::size_t i = 0; i < all.size(); ++i)
            if (all[i] == n) return "n" + std::to_string(i);
        return std::string("n?");
    };
    for (const Node* n : all) {
        std::string label = n->name() + "\n" + (n->type_name().empty() ? std::string(kind_name(n->kind())) : n->type_name());
        dot += "  " + id(n) + " [label=\"" + escaped(label) + "\"];\n";
    }
    for (const Node* n : all)
        for (std::size_t o = 0; o < n->output_count(); ++o) {
            const OutputPin& out = n->output(o);
            if (!out.linked()) continue;
            const InputPin& in = *out.peer();
            std::string label = out.format().fixed() ? out.format().to_string() : std::string("(not negotiated yet)");
            if (const std::string pool = pool_text(out); !pool.empty()) label += "\n" + pool;
            dot += "  " + id(n) + " -> " + id(&in.node()) + " [label=\"" + escaped(label) + "\", taillabel=\"" +
                   escaped(out.name()) + "\", headlabel=\"" + escaped(in.name()) + "\"];\n";
        }
    return dot + "}\n";
}

}  // namespace sluice::engine

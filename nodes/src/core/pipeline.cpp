// SPDX-License-Identifier: MIT
#include <sluice/nodes/pipeline.hpp>

#include <sluice/nodes/registry.hpp>

#include "core/common.hpp"

#include <cctype>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace sluice::nodes {
namespace {

struct Word {
    std::string text;     // unquoted
    std::size_t column;   // 1-based position of its first character
};

Status error_at(const Word& w, const std::string& what) {
    return {engine::GraphErrc::parse_error, what + " at character " + std::to_string(w.column) + " ('" + detail::printable(w.text) + "')"};
}

// Splits on whitespace; double or single quotes group, backslash escapes inside double quotes.
Status split(std::string_view text, std::vector<Word>& words) {
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
        if (i >= text.size()) break;
        Word w{{}, i + 1};
        // `!` is a word of its own even when glued to its neighbours: "a!b".
        if (text[i] == '!') {
            words.push_back({"!", i + 1});
            ++i;
            continue;
        }
        while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i])) && text[i] != '!') {
            const char c = text[i];
            if (c == '"' || c == '\'') {
                const std::size_t open = i++;
                while (i < text.size() && text[i] != c) {
                    if (c == '"' && text[i] == '\\' && i + 1 < text.size()) ++i;
                    w.text += text[i++];
                }
                if (i >= text.size())
                    return {engine::GraphErrc::parse_error, "unterminated quote at character " + std::to_string(open + 1)};
                ++i;
            } else {
                w.text += c;
                ++i;
            }
        }
        words.push_back(std::move(w));
    }
    return {};
}

struct Element {
    std::string type;
    Properties properties;
    Word word;                 // where it was written, for errors
    std::string name;          // final name
    engine::Node* node = nullptr;
};

// One end of a link: an element written in place, or a reference `name.` or `name.pin`.
struct End {
    std::optional<std::size_t> element;
    std::string reference;
    std::string pin;  // empty: the next free pin whose media fits
    Word word;
};

struct Link {
    End from, to;
    Word bang;
};

bool is_name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; }

}  // namespace

Status build_pipeline(engine::Graph& graph, std::string_view text, const PipelineOptions& options) {
    if (text.size() > (1u << 20)) return {engine::GraphErrc::parse_error, "pipeline longer than 1 MiB"};
    std::vector<Word> words;
    if (Status st = split(text, words); !st) return st;
    if (words.empty()) return {engine::GraphErrc::parse_error, "empty pipeline"};

    std::vector<Element> elements;
    std::vector<Link> links;
    std::optional<End> previous;          // what a following `!` links from
    std::optional<Word> pending_bang;     // a `!` waiting for its right-hand side
    constexpr std::size_t kNone = std::size_t(-1);
    std::size_t current = kNone;          // the element that takes key=value words

    for (const Word& w : words) {
        if (w.text == "!") {
            if (!previous) return error_at(w, "'!' with nothing to link from");
            if (pending_bang) return error_at(w, "two '!' in a row");
            pending_bang = w;
            current = kNone;
            continue;
        }
        // Caps ("audio/x-raw,rate=44100") are a node of their own, a capsfilter.
        if (w.text.starts_with("audio/") || w.text.starts_with("video/")) {
            End end;
            end.word = w;
            elements.push_back({"capsfilter", {{"caps", w.text}}, w, {}, nullptr});
            end.element = elements.size() - 1;
            current = kNone;  // caps take no properties
            if (pending_bang) links.push_back({*previous, end, *pending_bang});
            pending_bang.reset();
            previous = end;
            continue;
        }
        const auto eq = w.text.find('=');
        if (eq != std::string::npos) {
            if (current == kNone) return error_at(w, "property '" + detail::printable(w.text) + "' does not follow a node");
            const std::string key = w.text.substr(0, eq);
            if (key.empty()) return error_at(w, "property without a name");
            if (elements[current].properties.count(key))
                return error_at(w, "property '" + detail::printable(key) + "' given twice");
            elements[current].properties[key] = w.text.substr(eq + 1);
            continue;
        }
        End end;
        end.word = w;
        if (const auto dot = w.text.find('.'); dot != std::string::npos && dot > 0) {
            end.reference = w.text.substr(0, dot);
            end.pin = w.text.substr(dot + 1);
            for (char c : end.reference)
                if (!is_name_char(c)) return error_at(w, "bad node reference");
            for (char c : end.pin)
                if (!is_name_char(c)) return error_at(w, "bad pin name in a node reference (name.pin)");
            current = kNone;
        } else {
            for (char c : w.text)
                if (!is_name_char(c)) return error_at(w, "unexpected '" + detail::printable(std::string(1, c)) + "'");
            elements.push_back({w.text, {}, w, {}, nullptr});
            end.element = elements.size() - 1;
            current = elements.size() - 1;
        }
        if (pending_bang) links.push_back({*previous, end, *pending_bang});
        pending_bang.reset();
        previous = end;
    }
    if (pending_bang) return error_at(*pending_bang, "'!' with nothing to link to");

    // Names: explicit ones first, then type + counter for the rest.
    std::map<std::string, std::size_t> by_name;
    for (std::size_t i = 0; i < elements.size(); ++i) {
        auto it = elements[i].properties.find("name");
        if (it == elements[i].properties.end()) continue;
        if (it->second.empty()) return error_at(elements[i].word, "empty name");
        if (!by_name.emplace(it->second, i).second)
            return error_at(elements[i].word, "two nodes are named '" + detail::printable(it->second) + "'");
        elements[i].name = it->second;
        elements[i].properties.erase(it);
    }
    std::map<std::string, int> counters;
    for (auto& e : elements) {
        if (!e.name.empty()) continue;
        do e.name = e.type + std::to_string(counters[e.type]++);
        while (by_name.count(e.name));
        by_name.emplace(e.name, std::size_t(&e - elements.data()));
    }

    for (auto& e : elements) {
        const NodeSpec* spec = find_node_spec(e.type);
        if (options.num_buffers >= 0 && spec && spec->kind == engine::Node::Kind::source &&
            !e.properties.count("num-buffers"))
            e.properties["num-buffers"] = std::to_string(options.num_buffers);
        std::unique_ptr<engine::Node> node;
        if (Status st = create_node(e.type, e.name, e.properties, node); !st)
            return {st.code(), st.message() + " at character " + std::to_string(e.word.column) + " ('" +
                                   detail::printable(e.word.text) + "')"};
        e.node = &graph.add(std::move(node));
    }

    auto resolve = [&](const End& end, engine::Node*& out) -> Status {
        if (end.element) {
            out = elements[*end.element].node;
            return {};
        }
        auto it = by_name.find(end.reference);
        if (it == by_name.end()) return error_at(end.word, "no node named '" + detail::printable(end.reference) + "'");
        out = elements[it->second].node;
        return {};
    };
    for (const Link& l : links) {
        engine::Node* from = nullptr;
        engine::Node* to = nullptr;
        if (Status st = resolve(l.from, from); !st) return st;
        if (Status st = resolve(l.to, to); !st) return st;
        if (Status st = graph.connect(*from, l.from.pin, *to, l.to.pin); !st) return error_at(l.bang, st.message());
    }
    graph.set_format_advisor(converter_advice);
    return graph.prepare();
}

std::string converter_advice(const engine::MediaFormat& offered, const engine::FormatSet& accepted) {
    using engine::MediaKind;
    std::string best, impossible;
    std::size_t best_steps = SIZE_MAX;
    for (const engine::MediaFormat& a : accepted) {
        if (a.kind != offered.kind) continue;
        std::vector<std::string> steps;
        std::string cannot;
        if (offered.kind == MediaKind::audio) {
            if (a.rate != 0 && offered.rate != 0 && a.rate != offered.rate)
                steps.push_back("audioresample rate=" + std::to_string(a.rate));
            // One audioconvert does both the sample format and the channel count.
            std::string convert;
            if (a.sample_format != engine::SampleFormat::any && offered.sample_format != engine::SampleFormat::any &&
                a.sample_format != offered.sample_format)
                convert += std::string(" format=") + engine::to_string(a.sample_format);
            if (a.channels != 0 && offered.channels != 0 && a.channels != offered.channels)
                convert += " channels=" + std::to_string(a.channels);
            if (!convert.empty()) steps.push_back("audioconvert" + convert);
        } else {
            std::string convert;  // videoconvert's properties, when it is needed
            if (a.pixel_format != engine::PixelFormat::any && offered.pixel_format != engine::PixelFormat::any &&
                a.pixel_format != offered.pixel_format) {
                std::string f = engine::to_string(a.pixel_format);
                for (char& c : f) c = char(std::tolower(static_cast<unsigned char>(c)));
                convert += " format=" + f;
            }
            if (a.matrix != engine::ColourMatrix::any && offered.matrix != engine::ColourMatrix::any &&
                a.matrix != offered.matrix)
                convert += std::string(" matrix=") + engine::to_string(a.matrix);
            if (a.range != engine::ColourRange::any && offered.range != engine::ColourRange::any && a.range != offered.range)
                convert += std::string(" range=") + engine::to_string(a.range);
            if (!convert.empty()) steps.push_back("videoconvert" + convert);
            const int w = a.width != 0 ? a.width : offered.width, h = a.height != 0 ? a.height : offered.height;
            if ((w != offered.width || h != offered.height) && w != 0 && h != 0)
                steps.push_back("scale width=" + std::to_string(w) + " height=" + std::to_string(h));
            if (a.fps.num != 0 && offered.fps.num != 0 && !(a.fps == offered.fps))
                cannot = "no node changes the frame rate yet";
        }
        if (!cannot.empty()) {
            if (impossible.empty()) impossible = cannot;
            continue;
        }
        if (!steps.empty() && steps.size() < best_steps) {
            best_steps = steps.size();
            best = "put '";
            for (std::size_t i = 0; i < steps.size(); ++i) best += (i ? " ! " : "") + steps[i];
            best += "' between them";
        }
    }
    return best.empty() ? impossible : best;
}

}  // namespace sluice::nodes

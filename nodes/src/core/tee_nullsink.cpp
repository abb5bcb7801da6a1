// SPDX-License-Identifier: MIT
// Kind-agnostic nodes: tee (fan-out) and nullsink (counts, measures lateness).
#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>

namespace sluice::nodes {
namespace {

using engine::Flow;

// Fan-out sharing one refcounted sample with every branch: zero copy. Branches run one after the
// other on the pushing thread. Each link from a tee adds an output.
class Tee final : public Node {
public:
    Tee(std::string name, PropertyReader&) : Node(std::move(name), Kind::transform) { add_input("sink", {}); }
    bool passes_through(std::size_t, std::size_t) const override { return true; }
    // Its output pools are never used: the branches get the sample it was given.
    engine::BufferNeeds output_buffers(std::size_t) const override { return {.bytes = 1, .buffers = 0}; }
    bool request_output() override {
        add_output("src_" + std::to_string(output_count()), {});
        return true;
    }

private:
    Flow process(std::size_t, SampleRef&& s) override {
        if (output_count() == 0) return Flow::ok;
        for (std::size_t o = 0; o + 1 < output_count(); ++o)
            if (Flow f = push(o, SampleRef(s)); f != Flow::ok && f != Flow::end_of_stream) return f;
        return push(output_count() - 1, std::move(s));
    }
};

// Counts samples; when clocked (sluice-play --realtime) presents each at its time, recording
// lateness in its stats.
class NullSink final : public Node {
public:
    // Anything, pictures in any layout (it never reads them).
    NullSink(std::string name, PropertyReader&) : Node(std::move(name), Kind::render) {
        add_input("sink", {engine::MediaFormat::audio(), engine::MediaFormat::video().with_any_layout()});
    }

private:
    Flow process(std::size_t, SampleRef&& s) override { return present(s); }
};

}  // namespace

NodeSpec tee_spec() {
    return {"tee", Node::Kind::transform, "sends each sample to every branch, sharing the buffer (zero copy)", {},
            factory<Tee>()};
}

NodeSpec nullsink_spec() {
    return {"nullsink", Node::Kind::render, "discards samples, counting them (and their lateness when clocked)", {},
            factory<NullSink>()};
}

}  // namespace sluice::nodes

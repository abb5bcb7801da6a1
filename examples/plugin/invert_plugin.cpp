// SPDX-License-Identifier: MIT
// A Sluice plugin: one shared object that adds a node type, `invert`, which flips the sign of s16
// audio in place. Build it (CMake: a MODULE library linking sluice::sluice), then
//
//   sluice-play --plugin ./libsluice_invert.so 'tone ! invert ! wavsink path=inverted.wav'
//   SLUICE_PLUGIN_PATH=/folder/with/plugins sluice-play --list
//
// The whole of a plugin: its node classes, a function that registers them, SLUICE_PLUGIN.
#include <sluice/nodes/plugin.hpp>
#include <sluice/sluice.hpp>

#include <cstdint>

using namespace sluice;
using namespace sluice::engine;

namespace {

// Negates every s16 sample, in place (the sample leaves as it came: passes_through).
class Invert final : public Node {
public:
    Invert(std::string name, nodes::PropertyReader& reader) : Node(std::move(name), Kind::transform) {
        scale_ = reader.number("scale", -16.0, 16.0);
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16)});
        add_output("src", {MediaFormat::audio(0, 0, SampleFormat::s16)});
    }
    bool passes_through(std::size_t, std::size_t) const override { return true; }

private:
    // Streaming thread: no allocation, no lock.
    Flow process(std::size_t, SampleRef&& s) override {
        auto* p = reinterpret_cast<std::int16_t*>(s.data());
        for (std::size_t i = 0; i < s.size() / 2; ++i) {
            const double v = -double(p[i]) * scale_;
            p[i] = std::int16_t(v > 32767 ? 32767 : v < -32768 ? -32768 : v);
        }
        return push(0, std::move(s));
    }
    double scale_ = 1.0;
};

Status register_types() {
    return nodes::register_node_type({"invert", Node::Kind::transform, "negates s16 audio (an example plugin)",
                                      {{"scale", "1", "gain applied after the sign flip"}},
                                      nodes::factory<Invert>()});
}

}  // namespace

SLUICE_PLUGIN(register_types);

// SPDX-License-Identifier: MIT
// The public registry and plugins (issue #12): an app's own node type in a pipeline string,
// duplicates refused, plugins loaded, refused when of another ABI or no plugin at all.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <atomic>
#include <fstream>

using namespace sluice;
using namespace sluice::engine;

namespace {

// An app's node: counts the s16 frames that reach it.
class AppCounter final : public Node {
public:
    AppCounter(std::string name, nodes::PropertyReader& r) : Node(std::move(name), Kind::render) {
        expect_ = r.integer("expect", 0, 1 << 30);
        add_input("sink", {MediaFormat::audio(0, 0, SampleFormat::s16)});
    }
    static inline std::atomic<std::uint64_t> frames{0};

private:
    Flow process(std::size_t, SampleRef&& s) override {
        // relaxed: read after stop(), which joins the streaming thread.
        frames.fetch_add(s.size() / input(0).format().frame_bytes(), std::memory_order_relaxed);
        return Flow::ok;
    }
    std::int64_t expect_ = 0;
};

}  // namespace

TEST_CASE("Registry.App.OwnTypeWorksInAPipelineString" * doctest::timeout(30)) {
    REQUIRE(nodes::register_node_type({"appcounter", Node::Kind::render, "counts frames (a test's own node)",
                                       {{"expect", "0", "frames it expects"}}, nodes::factory<AppCounter>()}));
    const nodes::NodeSpec* spec = nodes::find_node_spec("appcounter");
    REQUIRE(spec != nullptr);
    CHECK(spec->origin == "app");
    Graph g;
    REQUIRE(nodes::build_pipeline(g, "tone frames=100 num-buffers=7 ! gain db=-3 ! appcounter expect=700"));
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(std::chrono::seconds(10)));
    REQUIRE(g.stop());
    CHECK(AppCounter::frames.load() == 700);
    // Its properties are checked like any other's.
    Graph bad;
    const Status st = nodes::build_pipeline(bad, "tone ! appcounter expect=lots");
    CHECK(st.message().find("property expect='lots' is not an integer") != std::string::npos);
}

TEST_CASE("Registry.Register.DuplicateAndIncompleteTypesRefused") {
    const Status dup = nodes::register_node_type({"tone", Node::Kind::source, "", {}, nodes::factory<AppCounter>()});
    CHECK_FALSE(dup);
    CHECK(dup.message() == "node type 'tone' is already registered (built-in)");
    CHECK_FALSE(nodes::register_node_type({"", Node::Kind::render, "", {}, nodes::factory<AppCounter>()}));
    const Status no_factory = nodes::register_node_type({"nofactory", Node::Kind::render, "", {}, {}});
    CHECK(no_factory.message() == "node type 'nofactory' has no factory");
    CHECK(nodes::find_node_spec("nofactory") == nullptr);
}

TEST_CASE("Registry.Plugin.LoadedUsedAndListed" * doctest::timeout(60)) {
    REQUIRE(nodes::load_plugin(SLUICE_INVERT_PLUGIN));
    const nodes::NodeSpec* spec = nodes::find_node_spec("invert");
    REQUIRE(spec != nullptr);
    CHECK(spec->origin == SLUICE_INVERT_PLUGIN);
    // The plugin's node in a pipeline: a tone through it comes out negated, sample for sample.
    test::TempDir dir;
    for (const char* invert : {"", " ! invert"}) {
        Graph g;
        REQUIRE(nodes::build_pipeline(g, std::string("tone freq=440 num-buffers=10") + invert + " ! wavsink path=" +
                                             (dir / (invert[0] ? "inverted.wav" : "plain.wav"))));
        REQUIRE(g.run());
        REQUIRE(g.wait_until_ended(std::chrono::seconds(10)));
        REQUIRE(g.stop());
    }
    const auto plain = test::decode_mono(dir / "plain.wav");
    const auto inverted = test::decode_mono(dir / "inverted.wav");
    REQUIRE(plain.size() == inverted.size());
    REQUIRE(plain.size() == 10240);
    for (std::size_t i = 0; i < plain.size(); i += 97) CHECK(inverted[i] == doctest::Approx(-plain[i]).epsilon(1e-4));
    // Loading it again registers nothing twice: refused, naming the type, and nothing half-done.
    const Status again = nodes::load_plugin(SLUICE_INVERT_PLUGIN);
    CHECK(again.message().find("node type 'invert' is already registered") != std::string::npos);
}

TEST_CASE("Registry.Plugin.WrongAbiAndNotAPluginRefused") {
    const Status abi = nodes::load_plugin(SLUICE_BAD_ABI_PLUGIN);
    CHECK_FALSE(abi);
    CHECK(abi.message().find("was built for plugin ABI") != std::string::npos);
    CHECK(abi.message().find("Sluice 99.0.0") != std::string::npos);
    // A shared object that is no plugin, and a file that is no shared object.
    const Status libc = nodes::load_plugin("libc.so.6");
    CHECK(libc.message() == "libc.so.6 is not a Sluice plugin (it has no sluice_plugin_entry)");
    test::TempDir dir;
    std::ofstream(dir / "text.so") << "not an ELF file\n";
    const Status text = nodes::load_plugin(dir / "text.so");
    const std::string said = text.message();
    CHECK(said.find("cannot be loaded") != std::string::npos);
    CHECK(said.find('\n') == std::string::npos);  // one line
    const Status missing = nodes::load_plugins_from("/nonexistent/plugins");
    CHECK_FALSE(missing);
}

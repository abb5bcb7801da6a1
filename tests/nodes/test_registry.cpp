// SPDX-License-Identifier: MIT
// The public registry and plugins (issue #12): an app's own node type in a pipeline string,
// duplicates refused, plugins loaded, refused when of another ABI or no plugin at all.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

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

TEST_CASE("Registry.Plugin.OneWithASluiceOfItsOwnRefused") {
    // Its types would land in a registry no pipeline of this program reads: refused in one line,
    // and nothing of it registered (find_node_spec sees no change).
    const std::size_t before = nodes::node_specs().size();
    const Status own = nodes::load_plugin(SLUICE_OWN_SLUICE_PLUGIN);
    CHECK_FALSE(own);
    CHECK(own.message().find("registers into a Sluice of its own") != std::string::npos);
    CHECK(own.message().find(SLUICE_OWN_SLUICE_PLUGIN) != std::string::npos);
    CHECK(own.message().find('\n') == std::string::npos);
    CHECK(nodes::node_specs().size() == before);
    CHECK(nodes::find_node_spec("own-sluice-unseen") == nullptr);  // what it would have registered
    // (A plugin made with SLUICE_PLUGIN names this program's registry: LoadedUsedAndListed.)
}

namespace {

// An app's render that accepts any format and remembers how far the media reached.
class TimeRecorder final : public Node {
public:
    TimeRecorder(std::string name, nodes::PropertyReader&) : Node(std::move(name), Kind::render) { add_input("sink", {}); }
    static inline std::atomic<std::int64_t> last_stop{kNoTime};
    static inline std::atomic<std::uint64_t> samples{0};

private:
    Flow process(std::size_t, SampleRef&& s) override {
        // relaxed: read after stop(), which joins the streaming thread.
        if (s.stop_time() > last_stop.load(std::memory_order_relaxed))
            last_stop.store(s.stop_time(), std::memory_order_relaxed);
        samples.fetch_add(1, std::memory_order_relaxed);
        return Flow::ok;
    }
};

}  // namespace

// Issue #12: the media-duration limit is one engine helper every source uses. This walks the
// registry, so a source type added later without it fails here (or here first, for want of the
// properties it needs to run: add them to `needs`).
TEST_CASE("Registry.Sources.EveryBuiltInSourceHonoursTheMediaDuration" * doctest::timeout(120)) {
    REQUIRE(nodes::register_node_type({"timerecorder", Node::Kind::render, "records the media time reached (a test's own node)",
                                       {}, nodes::factory<TimeRecorder>()}));
    test::TempDir dir;
    // A capture device of alsa-lib's own plugins that never runs dry: zeros.
    std::ofstream(dir / "asound.conf") << "pcm.zeros { type file slave.pcm \"null\" file \"/dev/null\" infile \"/dev/zero\" "
                                          "format \"raw\" }\n";
    ::setenv("ALSA_CONFIG_PATH", ("/usr/share/alsa/alsa.conf:" + dir / "asound.conf").c_str(), 1);
    // A JACK server of the test's own for jacksrc (its dummy driver's capture ports never run dry).
    test::JackServer jack("registry");
    INFO(jack.log());
    REQUIRE(jack.ready());
    ::setenv("JACK_DEFAULT_SERVER", jack.name().c_str(), 1);
    // Files long enough (2 s) that the limit, not the end of the file, ends them.
    for (const std::string& make : {"tone ! wavsink path=" + dir / "in.wav", "videotest ! y4msink path=" + dir / "in.y4m"}) {
        Graph g;
        REQUIRE(nodes::build_pipeline(g, make));
        g.set_media_duration(2'000'000'000);
        REQUIRE(g.run());
        REQUIRE(g.wait_until_ended(std::chrono::seconds(30)));
        REQUIRE(g.stop());
    }
    const std::map<std::string, std::string> needs = {
        {"tone", ""},           {"noise", ""},
        {"videotest", ""},      {"wavsrc", "path=" + dir / "in.wav"},
        {"y4msrc", "path=" + dir / "in.y4m"},  {"avsrc", "path=" + dir / "in.y4m"},
        {"rtpsrc", "port=47231"},  // no sender: the limit ends it without a packet
        {"rtpvrawsrc", "port=47232"},
        {"alsasrc", "device=zeros"},
        {"appsrc", "name=app format=s16 frames=4800"},  // fed below by an app thread until it is refused
        {"jacksrc", "connect=none"},
    };
    constexpr std::int64_t kLimit = 500'000'000;
    int sources = 0;
    for (const nodes::NodeSpec& spec : nodes::node_specs()) {
        if (spec.kind != Node::Kind::source || spec.origin != "built-in") continue;
        CAPTURE(spec.type);
        ++sources;
        const auto props = needs.find(spec.type);
        REQUIRE_MESSAGE(props != needs.end(), "a new source type: say in `needs` what it takes to run");
        TimeRecorder::last_stop = kNoTime;
        TimeRecorder::samples = 0;
        Graph g;
        REQUIRE(nodes::build_pipeline(g, spec.type + " " + props->second + " ! timerecorder"));
        g.set_media_duration(kLimit);
        const auto t0 = std::chrono::steady_clock::now();
        REQUIRE(g.run());
        std::thread app;
        if (spec.type == "appsrc")
            app = std::thread([&g] {
                nodes::AppSrc& in = *nodes::appsrc(g, "app");
                const std::vector<std::byte> silence(in.buffer_bytes());
                while (in.push(silence, kNoTime, std::chrono::milliseconds(2000)).ok()) {
                }
            });
        CHECK(g.wait_until_ended(std::chrono::seconds(20)));
        REQUIRE(g.stop());
        if (app.joinable()) app.join();
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10));
        if (spec.type.rfind("rtp", 0) == 0) {
            CHECK(TimeRecorder::samples.load() == 0);  // nothing was sent
        } else {
            // Every sample starts before the limit, and the media reaches it.
            CHECK(TimeRecorder::samples.load() > 0);
            CHECK(TimeRecorder::last_stop.load() >= kLimit);
            CHECK(TimeRecorder::last_stop.load() < kLimit + 100'000'000);
        }
    }
    CHECK(sources == int(needs.size()));
}

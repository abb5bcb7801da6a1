// SPDX-License-Identifier: MIT
// queue: a thread boundary (Node::owns_streaming_thread). What the upstream thread queues, the
// queue's own streaming thread pushes on, in order; a full queue holds the upstream thread, and
// stop, flush and a failure downstream reach both sides. Pictures in a decoder's padded layout
// pass through queues and tees to renders that read any layout (no copy).
#include "../engine/test_nodes.hpp"
#include "../support.hpp"
#include "node_stats.hpp"

#include <sluice/engine/graph.hpp>
#include <sluice/nodes/pipeline.hpp>
#include <sluice/nodes/registry.hpp>

#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <mutex>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;

namespace {

// A source that records the thread it runs on and what its last step came to.
class ThreadSource final : public test::CountingSource {
public:
    using CountingSource::CountingSource;
    std::thread::id thread() const {
        std::lock_guard lock(mutex_);
        return thread_;
    }
    std::atomic<Flow> last{Flow::ok};

private:
    Flow produce() override {
        {
            std::lock_guard lock(mutex_);  // a test's node: a lock is fine here
            thread_ = std::this_thread::get_id();
        }
        const Flow f = CountingSource::produce();
        last.store(f);
        return f;
    }
    mutable std::mutex mutex_;
    std::thread::id thread_;
};

// Records each sample's number (CountingSource writes it into the sample) and the thread that
// handed it over; while `held`, keeps the sample it has in hand, waiting, until released, the
// graph flushes or stops. Fails on purpose at sample `fail_at`.
class Gate final : public Node {
public:
    explicit Gate(std::string name) : Node(std::move(name), Kind::render) { add_input("sink", {}); }
    std::atomic<bool> held{false};
    std::atomic<bool> waiting{false};  // a sample in hand, held
    std::int64_t fail_at = -1;

    std::vector<std::uint64_t> numbers() const {
        std::lock_guard lock(mutex_);
        return numbers_;
    }
    std::vector<std::thread::id> threads() const {
        std::lock_guard lock(mutex_);
        return threads_;
    }
    void release() {
        held.store(false);
        held.notify_all();
    }

private:
    Flow process(std::size_t, SampleRef&& s) override {
        std::uint64_t n = 0;
        std::memcpy(&n, s.data(), sizeof n);
        if (fail_at >= 0 && n == std::uint64_t(fail_at))
            return report_error(make_error_code(GraphErrc::io_error), "failed on purpose at sample " + std::to_string(n));
        while (held.load()) {
            waiting.store(true);
            if (stop_token().stop_requested()) return Flow::stopped;
            if (flushing()) return Flow::flushing;
            std::this_thread::sleep_for(1ms);
        }
        waiting.store(false);
        std::lock_guard lock(mutex_);  // a test's render: a lock is fine here
        numbers_.push_back(n);
        threads_.push_back(std::this_thread::get_id());
        return Flow::ok;
    }
    Status start() override {
        std::lock_guard lock(mutex_);
        numbers_.clear();
        threads_.clear();
        return {};
    }
    mutable std::mutex mutex_;
    std::vector<std::uint64_t> numbers_;
    std::vector<std::thread::id> threads_;
};

using test::extra;
using test::stats_of;

Node& add_queue(Graph& g, const nodes::Properties& properties, const std::string& name = "q") {
    std::unique_ptr<Node> q;
    const Status st = nodes::create_node("queue", name, properties, q);
    REQUIRE_MESSAGE(st, st.message());
    return g.add(std::move(q));
}

using test::eventually;

bool increasing(const std::vector<std::uint64_t>& v) {
    for (std::size_t i = 1; i < v.size(); ++i)
        if (v[i] <= v[i - 1]) return false;
    return true;
}

// source -> queue -> gate, the queue `properties`.
struct QueueGraph {
    explicit QueueGraph(std::uint64_t samples, const nodes::Properties& properties)
        : src(g.add<ThreadSource>("src", samples)), q(add_queue(g, properties)), gate(g.add<Gate>("gate")) {
        REQUIRE(g.connect(src, q));
        REQUIRE(g.connect(q, gate));
    }
    Graph g;
    ThreadSource& src;
    Node& q;
    Gate& gate;
};

}  // namespace

TEST_CASE("Queue.PushesOnItsOwnThreadInOrder" * doctest::timeout(30)) {
    QueueGraph t(300, {{"max-size-buffers", "8"}});
    REQUIRE(t.g.run());
    REQUIRE(t.g.wait_until_ended(20s));
    const auto numbers = t.gate.numbers();
    REQUIRE(numbers.size() == 300);
    for (std::size_t i = 0; i < numbers.size(); ++i) CHECK_MESSAGE(numbers[i] == i, "sample " << i);
    // Every sample reached the render on one thread, and not the source's.
    const auto threads = t.gate.threads();
    CHECK(std::all_of(threads.begin(), threads.end(), [&](std::thread::id id) { return id == threads.front(); }));
    CHECK(threads.front() != t.src.thread());
    REQUIRE(t.g.stop());
    CHECK(extra(t.g, "q", "capacity") == 8);
    CHECK(extra(t.g, "q", "max-queued") <= 8);
    CHECK(extra(t.g, "q", "dropped") == 0);
    CHECK(stats_of(t.g, "q").samples_out == 300);
}

// The queue's size goes into the pool upstream of it: the source can have the whole queue, the
// sample the queue's thread is pushing and one of its own out at once, and never runs dry.
TEST_CASE("Queue.FullHoldsTheUpstreamThreadUntilThereIsRoom" * doctest::timeout(30)) {
    QueueGraph t(100, {{"max-size-buffers", "4"}});
    t.gate.held = true;
    REQUIRE(t.g.run());
    REQUIRE(eventually([&] { return extra(t.g, "q", "queued") == 4 && t.gate.waiting.load(); }));
    REQUIRE(eventually([&] { return extra(t.g, "q", "waits-full") >= 1; }));
    std::this_thread::sleep_for(100ms);
    // 4 queued, 1 in the gate's hand, at most 1 more made and waiting to go in.
    CHECK(t.src.produced() >= 5);
    CHECK(t.src.produced() <= 6);
    CHECK(extra(t.g, "q", "queued") == 4);
    t.gate.release();
    REQUIRE(t.g.wait_until_ended(20s));
    const auto numbers = t.gate.numbers();
    CHECK(numbers.size() == 100);
    CHECK(increasing(numbers));
    REQUIRE(t.g.stop());
    CHECK(t.src.output(0).allocator().stats().outstanding == 0);
}

// Both sides blocked (the upstream thread on a full queue, the queue's thread in a render that
// holds its sample), or the queue's thread waiting on an empty queue: stop wakes them all and
// every sample goes back to its pool.
TEST_CASE("Queue.StopWakesBothSides" * doctest::timeout(30)) {
    SUBCASE("full") {
        QueueGraph t(1000, {{"max-size-buffers", "3"}});
        t.gate.held = true;
        REQUIRE(t.g.run());
        REQUIRE(eventually([&] { return extra(t.g, "q", "queued") == 3 && extra(t.g, "q", "waits-full") >= 1; }));
        const Status st = t.g.stop();
        CHECK_MESSAGE(st, st.message());
        CHECK(t.src.output(0).allocator().stats().outstanding == 0);
        CHECK(extra(t.g, "q", "queued") == 0);
    }
    SUBCASE("empty") {
        Graph g;
        std::unique_ptr<Node> in;
        REQUIRE(nodes::create_node("appsrc", "in", {{"format", "f32"}}, in));
        Node& src = g.add(std::move(in));
        Node& q = add_queue(g, {});
        auto& gate = g.add<Gate>("gate");
        REQUIRE(g.connect(src, q));
        REQUIRE(g.connect(q, gate));
        REQUIRE(g.run());
        std::this_thread::sleep_for(50ms);  // both threads asleep, nothing pushed
        const Status st = g.stop();
        CHECK_MESSAGE(st, st.message());
        CHECK(gate.numbers().empty());
    }
}

// A flush (a seek's first half) parks the queue's thread with the others and drops what was
// queued; the stream goes on afterwards from where the source is.
TEST_CASE("Queue.FlushDropsWhatIsQueued" * doctest::timeout(30)) {
    QueueGraph t(200, {{"max-size-buffers", "5"}});
    t.gate.held = true;
    REQUIRE(t.g.run());
    REQUIRE(eventually([&] { return extra(t.g, "q", "queued") == 5 && t.gate.waiting.load(); }));
    const Status flushed = t.g.flush();
    REQUIRE_MESSAGE(flushed, flushed.message());
    CHECK(stats_of(t.g, "q").drops >= 5);  // the five queued, counted as the flush dropped them
    t.gate.release();
    REQUIRE(t.g.wait_until_ended(20s));
    const auto numbers = t.gate.numbers();
    CHECK(increasing(numbers));
    CHECK(numbers.size() < 200);  // what was queued and in hand went
    CHECK(numbers.back() == 199);
    REQUIRE(t.g.stop());
    CHECK(t.src.output(0).allocator().stats().outstanding == 0);
}

// leaky: a full queue drops instead of holding the upstream thread (a live source that must not
// wait): the new sample (upstream) or the oldest queued (downstream).
TEST_CASE("Queue.LeakyDropsInsteadOfWaiting" * doctest::timeout(30)) {
    for (const char* leaky : {"upstream", "downstream"}) {
        CAPTURE(leaky);
        QueueGraph t(100, {{"max-size-buffers", "3"}, {"leaky", leaky}});
        t.gate.held = true;
        REQUIRE(t.g.run());
        // The source makes all its samples with the render holding one: nobody waits.
        REQUIRE(eventually([&] { return t.src.produced() == 100; }));
        CHECK(extra(t.g, "q", "waits-full") == 0);
        t.gate.release();
        REQUIRE(t.g.wait_until_ended(20s));
        const auto numbers = t.gate.numbers();
        CHECK(increasing(numbers));
        CHECK(numbers.size() + extra(t.g, "q", "dropped") == 100);
        CHECK(numbers.size() <= 5);
        REQUIRE(numbers.size() >= 3);
        if (std::string(leaky) == "downstream") {
            CHECK(numbers.back() == 99);  // the newest stay
        } else {
            CHECK(numbers[0] == 0);  // the first ones in stay; the rest came while it was full
            CHECK(numbers[1] == 1);
        }
        REQUIRE(t.g.stop());
    }
}

// A render failing behind the queue ends the queue's thread; the upstream thread hears it at its
// next sample (or wakes from waiting for room) and ends too, instead of filling the queue for
// ever.
TEST_CASE("Queue.FailureDownstreamEndsTheUpstreamThread" * doctest::timeout(30)) {
    QueueGraph t(0, {{"max-size-buffers", "4"}});  // an endless source
    t.gate.fail_at = 10;
    REQUIRE(t.g.run());
    bool failed = false;
    while (auto e = t.g.wait_event(10s)) {
        if (e->type != Event::Type::error) continue;
        failed = true;
        CHECK(e->message.find("failed on purpose at sample 10") != std::string::npos);
        break;
    }
    REQUIRE(failed);
    // The source hears the failure from its push (it would wait for room for ever otherwise)
    // and its thread leaves, having made at most the queue's worth past the failure.
    REQUIRE(eventually([&] { return t.src.last.load() == Flow::error; }));
    CHECK(t.src.produced() < 30);
    (void)t.g.stop();
    CHECK(t.src.output(0).allocator().stats().outstanding == 0);
}

// The stream ended upstream (the source's thread is gone) while samples were still queued: a
// flush then drops them, and the end of stream still comes out of the queue, so the graph ends.
TEST_CASE("Queue.EndOfStreamOutlivesAFlush" * doctest::timeout(30)) {
    QueueGraph t(10, {{"max-size-buffers", "20"}});
    t.gate.held = true;
    REQUIRE(t.g.run());
    REQUIRE(eventually([&] { return t.src.last.load() == Flow::end_of_stream && extra(t.g, "q", "queued") == 9; }));
    const Status flushed = t.g.flush();
    REQUIRE_MESSAGE(flushed, flushed.message());
    t.gate.release();
    CHECK(t.g.wait_until_ended(10s));
    CHECK(t.gate.numbers().empty());  // what was queued and in hand went with the flush
    REQUIRE(t.g.stop());
}

// A seek after the source's end, while what came before it is still queued (a movie's last
// second, playing): the source's thread carried on from the new position, and the stream ends
// once more at its end. Refused before: "a source has ended its stream". Once the end has
// reached the render, a seek is refused in one line.
TEST_CASE("Queue.SeekAfterTheSourceEndedCarriesOn" * doctest::timeout(30)) {
    QueueGraph t(10, {{"max-size-buffers", "20"}});
    t.src.can_seek = true;
    t.gate.held = true;
    REQUIRE(t.g.run());
    REQUIRE(eventually([&] { return t.src.last.load() == Flow::end_of_stream && extra(t.g, "q", "queued") == 9; }));
    const std::int64_t period = 64 * 1'000'000'000LL / 48000;
    for (std::int64_t at : {6 * period, 3 * period}) {  // two in a row: the second moves it again
        const Status seeked = t.g.seek(at);
        REQUIRE_MESSAGE(seeked, seeked.message());
    }
    t.gate.release();
    REQUIRE(t.g.wait_until_ended(10s));
    // What was queued and in hand went with the flush; the stream went on from sample 3.
    CHECK(t.gate.numbers() == std::vector<std::uint64_t>{3, 4, 5, 6, 7, 8, 9});
    CHECK(t.src.produced() == 10);
    const Status late = t.g.seek(0);
    CHECK_FALSE(late);
    CHECK(late.message() == "seek: the stream has ended; stop and run again");
    REQUIRE(t.g.stop());
}

// Two sources ended, their last samples queued: a seek moves the one that can seek, which
// carries on from the new position; the one that cannot stays at its end and says so again (its
// queue forgot it), so its branch ends with nothing more and the graph ends. (Once that end has
// reached its render, a second seek is refused: the render has its end.)
TEST_CASE("Queue.SeekCarriesOnOnlyTheSourcesThatCanSeek" * doctest::timeout(30)) {
    Graph g;
    auto& moved = g.add<ThreadSource>("moved", 10);
    auto& stays = g.add<ThreadSource>("stays", 10);
    moved.can_seek = true;
    Node& qa = add_queue(g, {{"max-size-buffers", "20"}}, "qa");
    Node& qb = add_queue(g, {{"max-size-buffers", "20"}}, "qb");
    auto& a = g.add<Gate>("a");
    auto& b = g.add<Gate>("b");
    REQUIRE(g.connect(moved, qa));
    REQUIRE(g.connect(qa, a));
    REQUIRE(g.connect(stays, qb));
    REQUIRE(g.connect(qb, b));
    a.held = true;
    b.held = true;
    REQUIRE(g.run());
    REQUIRE(eventually([&] {
        return moved.last.load() == Flow::end_of_stream && stays.last.load() == Flow::end_of_stream &&
               extra(g, "qa", "queued") == 9 && extra(g, "qb", "queued") == 9;
    }));
    const std::int64_t period = 64 * 1'000'000'000LL / 48000;
    const Status seeked = g.seek(5 * period);
    REQUIRE_MESSAGE(seeked, seeked.message());
    a.release();
    b.release();
    REQUIRE(g.wait_until_ended(10s));
    CHECK(a.numbers() == std::vector<std::uint64_t>{5, 6, 7, 8, 9});
    CHECK(b.numbers().empty());
    CHECK(stays.produced() == 10);  // asked for nothing more after its end
    REQUIRE(g.stop());
}

// Nodes after a queue or a tee size their pools by the pool before them, as the largest sample
// that reaches them; a queue's or a tee's own pool, which they never take from, is one buffer of
// what feeds them. With 1 byte: a gain after a tee copied the shared samples into 64-byte
// buffers (an empty file, exit 0), an audioresample after a queue crashed in libsoxr.
TEST_CASE("Queue.NodesAfterQueuesAndTeesGetWholeBuffers" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string a = dir.path() + "/a.wav", b = dir.path() + "/b.wav", c = dir.path() + "/c.wav";
    Graph g;
    const std::string pipeline = "tone num-buffers=20 ! tee name=t t. ! gain db=-6 ! wavsink path=" + a +
                                 " t. ! queue ! audioresample rate=44100 ! wavsink path=" + b +
                                 " tone num-buffers=20 rate=22050 ! queue ! audioconvert ! audioresample rate=48000 ! wavsink path=" + c;
    const Status built = nodes::build_pipeline(g, pipeline);
    REQUIRE_MESSAGE(built, built.message());
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(30s));
    REQUIRE(g.stop());
    // 20 x 1024 frames of stereo s16 at 48 kHz; resampled, as many seconds at the new rate.
    CHECK(test::probe(a, "a:0", "duration_ts") == "20480");
    const long at_44100 = std::stol(test::probe(b, "a:0", "duration_ts"));
    CHECK(std::abs(at_44100 - 18816) <= 64);  // 20480 * 44100 / 48000, give or take the filter's edges
    const long at_48000 = std::stol(test::probe(c, "a:0", "duration_ts"));
    CHECK(std::abs(at_48000 - 44582) <= 128);  // 20480 * 48000 / 22050
}

// leaky=downstream on a queue full by time: each new sample drops the oldest, not the queue.
TEST_CASE("Queue.LeakyDownstreamFullByTimeDropsOnlyTheOldest" * doctest::timeout(30)) {
    // 64-frame samples at 48 kHz are 1.33 ms: 8 ms hold 6 of them, fewer than the 50 by count.
    QueueGraph t(100, {{"max-size-buffers", "50"}, {"max-size-time", "0.008"}, {"leaky", "downstream"}});
    t.gate.held = true;
    REQUIRE(t.g.run());
    REQUIRE(eventually([&] { return t.src.produced() == 100; }));
    CHECK(extra(t.g, "q", "queued") >= 5);  // a queue's worth by time stays
    CHECK(extra(t.g, "q", "queued") <= 7);
    t.gate.release();
    REQUIRE(t.g.wait_until_ended(20s));
    const auto numbers = t.gate.numbers();
    CHECK(increasing(numbers));
    CHECK(numbers.back() == 99);
    CHECK(numbers.size() >= 6);  // the one in hand and the newest queued
    REQUIRE(t.g.stop());
}

// A queue's (and a tee's) own output pool is never used: it is one buffer (as large as the
// source's), however much downstream holds, while the pool upstream has room for every queue
// after it. Sized like the others, each pool of a chain of 500 queues held buffers for
// everything after it (1.3 GB).
TEST_CASE("Queue.OwnPoolIsTheSmallestAChainOfThemIsCheap" * doctest::timeout(60)) {
    std::string pipeline = "tone name=src num-buffers=20";
    for (int i = 0; i < 100; ++i) pipeline += " ! queue name=q" + std::to_string(i) + " max-size-buffers=3";
    pipeline += " ! tee name=t t. ! nullsink t. ! nullsink";
    Graph g;
    const Status built = nodes::build_pipeline(g, pipeline);
    REQUIRE_MESSAGE(built, built.message());
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(30s));
    const std::size_t bytes = g.find("src")->output(0).allocator().properties().buffer_bytes;
    for (int i = 0; i < 100; ++i) {
        CHECK(g.find("q" + std::to_string(i))->output(0).allocator().properties().buffers == 1);
        CHECK(g.find("q" + std::to_string(i))->output(0).allocator().properties().buffer_bytes == bytes);
    }
    CHECK(g.find("t")->output(0).allocator().properties().buffers == 1);
    // The source's pool: its own sample, each queue's 3 and the one its thread pushes, two spares.
    CHECK(g.find("src")->output(0).allocator().properties().buffers == 1 + 100 * 4 + 2);
    CHECK(stats_of(g, "t").samples_out == 40);
    REQUIRE(g.stop());
}

TEST_CASE("Queue.BadPropertiesAreOneLine" * doctest::timeout(30)) {
    std::unique_ptr<Node> q;
    Status st = nodes::create_node("queue", "q", {{"max-size-buffers", "0"}, {"max-size-time", "0"}}, q);
    CHECK_FALSE(st);
    CHECK(st.message().find("no size") != std::string::npos);
    st = nodes::create_node("queue", "q", {{"leaky", "sideways"}}, q);
    CHECK_FALSE(st);
    CHECK(st.message().find("leaky") != std::string::npos);
    st = nodes::create_node("queue", "q", {{"max-size-buffers", "-1"}}, q);
    CHECK_FALSE(st);
    CHECK(st.message().find("max-size-buffers") != std::string::npos);
    CHECK(st.message().find('\n') == std::string::npos);
    // Sizes the graph cannot give: the run is refused, saying why.
    struct Case {
        const char* pipeline;
        const char* why;
    };
    std::string chain = "tone";
    for (int i = 0; i < 1400; ++i) chain += " ! queue";  // 1400 x 49 buffers for the tone's pool
    chain += " ! nullsink";
    for (const Case& c : {Case{"videotest width=8192 height=8192 ! queue max-size-buffers=4096 ! nullsink", "GB of memory"},
                          Case{chain.c_str(), "buffers a pool can have"}}) {
        Graph g;
        Status st = nodes::build_pipeline(g, c.pipeline);  // builds and prepares
        if (st) st = g.run();
        CHECK_FALSE(st);
        CHECK_MESSAGE(st.message().find(c.why) != std::string::npos, st.message());
    }
}

// The decoder's pictures in its padded layout pass through a queue, and through a tee whose
// every branch reads any layout, to renders that read any layout: no copy. A branch that reads
// packed rows makes the tee's pictures packed for all (one copy each, counted).
TEST_CASE("Queue.PaddedPicturesPassThroughQueuesAndTees" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/v.mp4";
    auto made = test::make_h264_movie(movie, 2);
    INFO(made.output);
    REQUIRE(made.exit_code == 0);
    struct Case {
        std::string pipeline;
        bool copies;
    };
    const std::string y4m = dir.path() + "/a.y4m", y4m2 = dir.path() + "/b.y4m";
    for (const Case& c : {Case{"avsrc name=d path=" + movie + " ! queue ! y4msink path=" + y4m, false},
                          Case{"avsrc name=d path=" + movie + " ! tee name=t t. ! queue ! y4msink path=" + y4m + " t. ! nullsink", false},
                          Case{"avsrc name=d path=" + movie + " ! tee name=t t. ! queue ! y4msink path=" + y4m + " t. ! videoconvert ! nullsink", true}}) {
        CAPTURE(c.pipeline);
        Graph g;
        const Status built = nodes::build_pipeline(g, c.pipeline);
        REQUIRE_MESSAGE(built, built.message());
        REQUIRE(g.run());
        REQUIRE(g.wait_until_ended(60s));
        REQUIRE(g.stop());
        CHECK(stats_of(g, "d").samples_out == 50);
        if (c.copies) CHECK(extra(g, "d", "copies") == 50);
        else CHECK(extra(g, "d", "copies") == 0);
        // The file holds every picture, whatever layout they came in.
        auto frames = test::run("ffprobe -v error -count_frames -select_streams v:0 -show_entries stream=nb_read_frames -of csv=p=0 " +
                                test::quote(y4m));
        CHECK(frames.output.find("50") == 0);
    }
}

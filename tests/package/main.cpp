// SPDX-License-Identifier: MIT
// An app-defined node in a graph built from the installed package.
#include <sluice/sluice.hpp>

#include <atomic>
#include <cstdio>

#include <dlfcn.h>

using namespace sluice;
using namespace sluice::engine;

// Counts the audio frames that reach it.
class FrameCounter final : public Node {
public:
    FrameCounter() : Node("counter", Kind::render) { add_input("sink", {MediaFormat::audio()}); }
    std::uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }  // relaxed: a statistic

private:
    Flow process(std::size_t, SampleRef&& s) override {
        // relaxed: read after stop(), which joins the streaming thread.
        frames_.fetch_add(s.size() / input(0).format().frame_bytes(), std::memory_order_relaxed);
        return Flow::ok;
    }
    std::atomic<std::uint64_t> frames_{0};
};

int main() {
    Graph graph;
    std::unique_ptr<Node> tone;
    if (Status st = nodes::create_node("tone", "tone", {{"num-buffers", "10"}, {"frames", "480"}}, tone); !st) {
        std::fprintf(stderr, "consumer: %s\n", st.message().c_str());
        return 2;
    }
    Node& src = graph.add(std::move(tone));
    FrameCounter& counter = graph.add<FrameCounter>();
    Status st = graph.connect(src, counter);
    if (st) st = graph.run();
    if (!st) {
        std::fprintf(stderr, "consumer: %s\n", st.message().c_str());
        return 2;
    }
    const bool ended = graph.wait_until_ended(std::chrono::seconds(10));
    (void)graph.stop();
    std::printf("consumer: %llu frames\n", static_cast<unsigned long long>(counter.frames()));
    // Linking Sluice must not change the app's malloc: the symbol the process resolves is the C
    // library's, not mimalloc's (which would replace it if any Sluice library linked it).
    void* libc = ::dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
    void* libc_malloc = libc != nullptr ? ::dlsym(libc, "malloc") : nullptr;
    void* process_malloc = ::dlsym(RTLD_DEFAULT, "malloc");
    Dl_info where{};
    const bool located = ::dladdr(process_malloc, &where) != 0;
    std::printf("consumer: malloc comes from %s\n", located && where.dli_fname ? where.dli_fname : "?");
    if (libc_malloc == nullptr || process_malloc != libc_malloc) {
        std::fprintf(stderr, "consumer: malloc is not the C library's\n");
        return 1;
    }
    return ended && counter.frames() == 4800 ? 0 : 1;
}

// SPDX-License-Identifier: MIT
// sluice-count-api <pairs> [named]: get+release pairs through the public API exactly as an app writes
// them, for `valgrind --tool=callgrind`:
//
//     auto r = alloc.get_buffer();        // Result<SampleRef>
//     if (!r) ...;                        // unwrapped
//     SampleRef s = std::move(*r);        // moved out
//     s.reset();                          // and dropped
//
// bench/run.sh compiles this file (and the allocator's sources) with each compiler at -O2 and
// -O3, runs it at two pair counts and divides the difference, so set-up cancels and what is left
// is the pair plus the loop's increment, compare and branch. `named` adds what a Graph adds to
// every sample of its pools so that a stuck stop can name the holder (issue #17 item 22): the
// holder's name stored at the get (Node::get_buffer) and again at one push (Node::push). No bench adapter: a user's build
// flags and code shape, nothing else. Exit status: 0, 1 when a get fails, 2 for a bad command line.

#include <sluice/allocators/sample_allocator.hpp>

#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <thread>

namespace {

// noinline: the loop stays one function whatever main() becomes, as in an app's streaming loop.
[[gnu::noinline]] int pairs(sluice::SampleAllocator& alloc, long n) {
    for (long i = 0; i < n; ++i) {
        auto r = alloc.get_buffer();
        if (!r) return 1;
        sluice::SampleRef s = std::move(*r);
        s.reset();
    }
    return 0;
}

// The names a graph keeps for its nodes; volatile so that the stores are not folded into one.
const char* volatile g_source_name = "source";
const char* volatile g_render_name = "render";

[[gnu::noinline]] int named_pairs(sluice::SampleAllocator& alloc, long n) {
    for (long i = 0; i < n; ++i) {
        auto r = alloc.get_buffer();
        if (!r) return 1;
        r->set_holder(g_source_name);  // as Node::get_buffer
        sluice::SampleRef s = std::move(*r);
        s.set_holder(g_render_name);  // as Node::push, one hop
        s.reset();
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    char* end = nullptr;
    const long n = argc == 2 || argc == 3 ? std::strtol(argv[1], &end, 10) : -1;
    const bool named = argc == 3 && std::string_view(argv[2]) == "named";
    if (n < 0 || end == argv[1] || *end != '\0' || (argc == 3 && !named)) {
        std::fputs("usage: sluice-count-api <pairs> [named]\n", stderr);
        return 2;
    }
    std::thread([] {}).join();  // a multi-threaded process, as every media engine is
    sluice::SampleAllocator alloc;
    alloc.set_ledger_enabled(false);  // on by default only without NDEBUG; pinned for every build
    if (!alloc.set_properties({.buffers = 64, .buffer_bytes = 4096}) || alloc.commit()) return 1;
    if (named) alloc.set_holders_named(true);  // as a Graph sets its pools
    auto loop = named ? named_pairs : pairs;
    if (loop(alloc, 1000) != 0) return 1;  // first-use costs, in both runs alike
    return loop(alloc, n);
}

// SPDX-License-Identifier: MIT
// sluice-count-api <pairs>: get+release pairs through the public API exactly as an app writes
// them, for `valgrind --tool=callgrind`:
//
//     auto r = alloc.get_buffer();        // Result<SampleRef>
//     if (!r) ...;                        // unwrapped
//     SampleRef s = std::move(*r);        // moved out
//     s.reset();                          // and dropped
//
// bench/run.sh compiles this file (and the allocator's sources) with each compiler at -O2 and
// -O3, runs it at two pair counts and divides the difference, so set-up cancels and what is left
// is the pair plus the loop's increment, compare and branch. No bench adapter: a user's build
// flags and code shape, nothing else. Exit status: 0, 1 when a get fails, 2 for a bad command line.

#include <sluice/allocators/sample_allocator.hpp>

#include <cstdio>
#include <cstdlib>
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

}  // namespace

int main(int argc, char** argv) {
    char* end = nullptr;
    const long n = argc == 2 ? std::strtol(argv[1], &end, 10) : -1;
    if (n < 0 || end == argv[1] || *end != '\0') {
        std::fputs("usage: sluice-count-api <pairs>\n", stderr);
        return 2;
    }
    std::thread([] {}).join();  // a multi-threaded process, as every media engine is
    sluice::SampleAllocator alloc;
    alloc.set_ledger_enabled(false);  // on by default only without NDEBUG; pinned for every build
    if (!alloc.set_properties({.buffers = 64, .buffer_bytes = 4096}) || alloc.commit()) return 1;
    if (pairs(alloc, 1000) != 0) return 1;  // first-use costs, in both runs alike
    return pairs(alloc, n);
}

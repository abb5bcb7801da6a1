// SPDX-License-Identifier: MIT
#pragma once

// GlibcAlloc: no pool, one aligned_alloc per get and one free per release, with glibc's own
// malloc. Debian's libmimalloc.so replaces malloc/free in every process that links it (and the
// benchmarks must link it for MimallocAlloc), so a plain call to aligned_alloc would measure
// mimalloc again. The functions are therefore looked up in the already loaded libc.so.6 itself:
// dlsym on that handle searches libc's own symbol table, not the global scope mimalloc sits in
// front of.
//
// Threading: any thread. Never blocks except on glibc's arena lock; allocates by definition.
// No buffer limit and nothing to decommit. Constructor aborts if libc cannot be found.

#include "common.hpp"

#include <dlfcn.h>  // dlopen(RTLD_NOLOAD), dlsym

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string_view>

namespace sluice::bench {

class GlibcAlloc {
public:
    using Buffer = std::byte*;
    static constexpr std::string_view kName = "glibc";
    static constexpr PoolKind kKind = PoolKind::heap;

    explicit GlibcAlloc(std::size_t /*buffers: unlimited*/) {
        // RTLD_NOLOAD: only a handle to the libc this process already uses, never a second copy.
        void* libc = ::dlopen("libc.so.6", RTLD_NOLOAD | RTLD_LAZY);
        if (libc != nullptr) {
            aligned_alloc_ = reinterpret_cast<AlignedAllocFn>(::dlsym(libc, "aligned_alloc"));
            free_ = reinterpret_cast<FreeFn>(::dlsym(libc, "free"));
            ::dlclose(libc);  // drops our reference only; libc stays loaded
        }
        if (aligned_alloc_ == nullptr || free_ == nullptr) {
            std::fprintf(stderr, "GlibcAlloc: cannot find aligned_alloc/free in libc.so.6\n");
            std::abort();
        }
    }

    [[gnu::always_inline]] Buffer get() noexcept { return static_cast<std::byte*>(aligned_alloc_(kAlignment, kBufferBytes)); }
    static bool valid(const Buffer& b) noexcept { return b != nullptr; }
    [[gnu::always_inline]] void release(Buffer&& b) noexcept { free_(b); }

private:
    using AlignedAllocFn = void* (*)(std::size_t, std::size_t);
    using FreeFn = void (*)(void*);
    AlignedAllocFn aligned_alloc_ = nullptr;
    FreeFn free_ = nullptr;
};

}  // namespace sluice::bench

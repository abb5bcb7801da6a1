// SPDX-License-Identifier: MIT
#pragma once

// Small nodes for engine tests: a counting source, an in-place pass-through, a tee, renders that
// keep or hoard samples. The real media nodes live in nodes/.

#include <sluice/sluice.hpp>

#include <array>
#include <atomic>
#include <cstring>
#include <vector>

namespace test {

using namespace sluice;
using namespace sluice::engine;

inline const MediaFormat kAudio = MediaFormat::audio(48000, 2, SampleFormat::s16);

class CountingSource : public Node {
public:
    CountingSource(std::string name, std::uint64_t limit = 0, MediaFormat format = kAudio)
        : Node(std::move(name), Kind::source), limit_(limit) {
        add_output("src", {format});
    }
    std::uint64_t produced() const { return produced_.load(); }
    std::size_t frames = 64;
    int fail_after = -1;  // report an error after this many samples
    bool can_seek = false;  // Graph::seek(ns) goes on from the sample at ns

protected:
    bool seekable() const override { return can_seek; }
    Status seek(std::int64_t ns) override {
        produced_.store(std::uint64_t(ns / period()), std::memory_order_relaxed);
        return {};
    }
    std::int64_t period() const { return std::int64_t(frames) * 1'000'000'000 / output(0).format().rate; }
    BufferNeeds output_buffers(std::size_t) const override { return {frames * output(0).format().frame_bytes(), 1}; }
    Status start() override {
        produced_ = 0;
        return {};
    }
    Flow produce() override {
        const std::uint64_t n = produced_.load(std::memory_order_relaxed);
        if (limit_ != 0 && n >= limit_) return Flow::end_of_stream;
        if (fail_after >= 0 && n >= std::uint64_t(fail_after))
            return report_error(make_error_code(engine::GraphErrc::io_error), "test source failed on purpose");
        auto s = get_buffer(0);
        if (!s) return Flow::stopped;
        s->set_times(std::int64_t(n) * period(), std::int64_t(n + 1) * period());
        (void)s->set_size(s->capacity());
        std::memcpy(s->data(), &n, sizeof n);
        produced_.store(n + 1, std::memory_order_relaxed);
        return push(0, std::move(*s));
    }

private:
    std::uint64_t limit_;
    std::atomic<std::uint64_t> produced_{0};
};

// In place: the sample leaves as it came.
class PassThrough : public Node {
public:
    explicit PassThrough(std::string name) : Node(std::move(name), Kind::transform) {
        add_input("sink", {});
        add_output("src", {});
    }
    bool passes_through(std::size_t, std::size_t) const override { return true; }

protected:
    Flow process(std::size_t, SampleRef&& s) override { return push(0, std::move(s)); }
};

class Tee : public Node {
public:
    Tee(std::string name, std::size_t outputs) : Node(std::move(name), Kind::transform) {
        add_input("sink", {});
        for (std::size_t i = 0; i < outputs; ++i) add_output("src_" + std::to_string(i), {});
    }
    bool passes_through(std::size_t, std::size_t) const override { return true; }

protected:
    Flow process(std::size_t, SampleRef&& s) override {
        for (std::size_t o = 0; o + 1 < output_count(); ++o)
            if (Flow f = push(o, SampleRef(s)); f != Flow::ok) return f;
        return push(output_count() - 1, std::move(s));
    }
};

// Keeps the last `keep` samples (a render that redraws its last frame), optionally clocked.
class KeepRender : public Node {
public:
    KeepRender(std::string name, std::size_t keep = 0, FormatSet accepts = {})
        : Node(std::move(name), Kind::render), keep_(keep) {
        add_input("sink", std::move(accepts), {.holds = keep});
    }
    std::uint64_t received() const { return received_.load(); }
    bool release_on_stop = true;

protected:
    Status start() override {
        received_ = 0;
        return {};
    }
    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        received_.fetch_add(1, std::memory_order_relaxed);
        if (keep_ != 0) kept_[next_++ % keep_] = std::move(s);
        return Flow::ok;
    }
    void stop() override {
        if (release_on_stop) drop();
    }
    void flush() override { drop(); }

private:
    void drop() {
        for (auto& s : kept_) s.reset();
    }
    std::size_t keep_;
    std::array<SampleRef, 64> kept_;
    std::size_t next_ = 0;
    std::atomic<std::uint64_t> received_{0};
};

// Never releases a sample while streaming: upstream pools run dry and sources block.
class HoardRender : public Node {
public:
    explicit HoardRender(std::string name) : Node(std::move(name), Kind::render) {
        add_input("sink", {});
        hoard_.reserve(4096);
    }
    std::atomic<std::size_t> held{0};
    bool release_on_stop = true;

protected:
    Flow process(std::size_t, SampleRef&& s) override {
        if (hoard_.size() < hoard_.capacity()) hoard_.push_back(std::move(s));
        held.store(hoard_.size());
        return Flow::ok;
    }
    void stop() override {
        if (release_on_stop) hoard_.clear();
    }

public:
    std::vector<SampleRef> hoard_;
};

}  // namespace test

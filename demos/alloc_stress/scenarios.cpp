// SPDX-License-Identifier: MIT
#include "scenarios.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <stop_token>
#include <thread>

#include <dirent.h>
#include <unistd.h>

namespace sluice::stress {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

// The queue between threads in handoff and share. A plain locked deque on purpose: the tool
// tests the allocator, and ThreadSanitizer must understand every synchronisation around it
// (lock-free queues built on atomic_thread_fence, like moodycamel's, are opaque to it).
template <class T>
class LockedQueue {
public:
    void enqueue(T item) {
        std::lock_guard lock(mutex_);
        items_.push_back(std::move(item));
    }
    bool try_dequeue(T& out) {
        std::lock_guard lock(mutex_);
        if (items_.empty()) return false;
        out = std::move(items_.front());
        items_.pop_front();
        return true;
    }

private:
    std::mutex mutex_;
    std::deque<T> items_;
};

// Who holds which sample: one word per (epoch, index), holding the epoch while the sample is
// out. A get that finds its word already set has been handed a sample someone else holds.
class Ownership {
public:
    explicit Ownership(std::size_t max_buffers)
        : buffers_(max_buffers),
          epochs_(std::max<std::size_t>(64, (std::size_t(1) << 22) / max_buffers)),
          words_(std::make_unique<std::atomic<std::uint64_t>[]>(buffers_ * epochs_)) {}

    // false: the sample is already held by someone (handed out twice).
    bool take(const SampleRef& s) {
        // acq_rel: orders this claim against the give_back of the previous holder.
        return word(s).exchange(s.epoch(), std::memory_order_acq_rel) != s.epoch();
    }
    // false: the sample was not marked as held.
    bool give_back(const SampleRef& s) {
        std::uint64_t expected = s.epoch();
        // release: our use of the sample happens before the next holder's take.
        return word(s).compare_exchange_strong(expected, 0, std::memory_order_release,
                                               std::memory_order_relaxed);
    }

private:
    std::atomic<std::uint64_t>& word(const SampleRef& s) {
        return words_[(s.epoch() % epochs_) * buffers_ + (s.index() % buffers_)];
    }
    std::size_t buffers_;
    std::size_t epochs_;
    std::unique_ptr<std::atomic<std::uint64_t>[]> words_;
};

// Stamps a sample with its holder and checks the stamp is intact before it is released: a sample
// handed to two holders, or written by someone else meanwhile, shows a foreign stamp.
struct Stamp {
    std::uint64_t owner;
    std::uint64_t sequence;
};
void stamp(SampleRef& s, const Stamp& st) {
    std::memcpy(s.data(), &st, sizeof st);
    std::memcpy(s.data() + s.capacity() - sizeof st, &st, sizeof st);
}
bool stamp_intact(const SampleRef& s, const Stamp& st) {
    Stamp a, b;
    std::memcpy(&a, s.data(), sizeof a);
    std::memcpy(&b, s.data() + s.capacity() - sizeof b, sizeof b);
    return std::memcmp(&a, &st, sizeof st) == 0 && std::memcmp(&b, &st, sizeof st) == 0;
}

// Everything one scenario's threads share.
struct Run {
    const Config& config;
    std::string name;
    SampleAllocator allocator;
    Ownership ownership;
    std::stop_source stop;
    std::atomic<std::uint64_t> ops{0};
    std::atomic<std::int64_t> decommit_at_ns{0};  // when the last decommit() was called
    std::mutex mutex;                              // guards the two members below
    std::vector<std::string> violations;
    std::vector<Histogram> get_histograms, wake_histograms;

    Run(const Config& c, std::string n, std::size_t max_buffers) : config(c), name(std::move(n)), ownership(max_buffers) {}

    void violation(std::string what) {
        {
            std::lock_guard lock(mutex);
            if (violations.size() < 20) violations.push_back(std::move(what));
        }
        stop.request_stop();
    }
    bool done() const {
        // relaxed: a progress counter; a few operations past the limit do not matter.
        return stop.stop_requested() || (config.ops != 0 && ops.load(std::memory_order_relaxed) >= config.ops);
    }
    void count(std::uint64_t n = 1) {
        // relaxed: a progress counter.
        ops.fetch_add(n, std::memory_order_relaxed);
    }
    void submit(const Histogram& gets, const Histogram& wakes) {
        std::lock_guard lock(mutex);
        get_histograms.push_back(gets);
        wake_histograms.push_back(wakes);
    }
};

// One worker's view: a seeded generator, its histograms, and checked get/release helpers.
struct Worker {
    Run& run;
    unsigned id;
    std::mt19937_64 rng;
    Histogram gets, wakes;
    std::uint64_t sequence = 0;

    Worker(Run& r, unsigned i) : run(r), id(i), rng(r.config.seed * 1'000'003 + i) {}
    ~Worker() { run.submit(gets, wakes); }

    std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng() % n; }

    // A timed get with bookkeeping: latency, ownership, decommit-to-wake. Empty on failure.
    SampleRef get(std::chrono::nanoseconds timeout, bool stamp_it = true) {
        const std::int64_t start = now_ns();
        auto r = run.allocator.get_buffer(run.stop.get_token(), timeout);
        const std::int64_t end = now_ns();
        if (!r) {
            // acquire: pairs with the controller's release store made before decommit().
            const std::int64_t decommit_at = run.decommit_at_ns.load(std::memory_order_acquire);
            if (r.error() == Errc::not_committed && decommit_at > start && end - start > 100'000)
                wakes.record(std::uint64_t(end - decommit_at));  // it was waiting when decommit came
            else if (r.error() != Errc::not_committed && r.error() != Errc::timeout && r.error() != Errc::cancelled)
                run.violation("get_buffer failed with an unexpected error: " + r.error().message());
            return {};
        }
        gets.record(std::uint64_t(end - start));
        SampleRef s = std::move(*r);
        if (!run.ownership.take(s))
            run.violation("sample " + std::to_string(s.index()) + " of epoch " + std::to_string(s.epoch()) +
                          " handed out while already held");
        if (stamp_it) stamp(s, {id, ++sequence});
        run.count();
        return s;
    }

    void release(SampleRef& s, bool stamped = true) {
        if (stamped && !stamp_intact(s, {id, sequence_of(s)}))
            run.violation("sample " + std::to_string(s.index()) + " was overwritten while held by thread " +
                          std::to_string(id));
        if (!run.ownership.give_back(s)) run.violation("released a sample that was not marked as held");
        s.reset();
        run.count();
    }

    static std::uint64_t sequence_of(const SampleRef& s) {
        Stamp st;
        std::memcpy(&st, s.data(), sizeof st);
        return st.sequence;
    }
};

AllocatorProperties base_properties(const Config& c) {
    return {.buffers = c.buffers, .buffer_bytes = std::max<std::size_t>(c.bytes, 2 * sizeof(Stamp)),
            .alignment = c.alignment, .prefix = 16, .numa_node = c.numa_node, .checked = c.checked};
}

// Prints a progress line on stderr while the scenario runs (only on a terminal).
std::jthread progress_line(Run& run, Clock::time_point t0) {
    if (!run.config.progress) return {};
    return std::jthread([&run, t0](std::stop_token st) {
        std::uint64_t last_ops = 0;
        auto last = Clock::now();
        while (!st.stop_requested()) {
            std::this_thread::sleep_for(200ms);
            const auto now = Clock::now();
            // relaxed: progress display.
            const std::uint64_t ops = run.ops.load(std::memory_order_relaxed);
            const double rate = double(ops - last_ops) / std::chrono::duration<double>(now - last).count();
            const AllocatorStats s = run.allocator.stats();
            std::fprintf(stderr, "\r\033[K%-15s %5.1f s  %8.2f Mops/s  outstanding %4zu  waiters %3zu  epoch %llu",
                         run.name.c_str(), std::chrono::duration<double>(now - t0).count(), rate / 1e6,
                         s.outstanding, s.waiters, static_cast<unsigned long long>(s.epoch));
            last_ops = ops;
            last = now;
        }
        std::fprintf(stderr, "\r\033[K");
    });
}

// Runs `body(worker)` on `threads` threads and `control()` on this thread until the time or the
// operation budget is spent (or a violation stops everything).
void run_threads(Run& run, unsigned threads, const std::function<void(Worker&)>& body,
                 const std::function<void(std::mt19937_64&)>& control = {}) {
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(run.config.seconds));
    auto progress = progress_line(run, t0);
    {
        std::vector<std::jthread> pool;
        for (unsigned i = 0; i < threads; ++i)
            pool.emplace_back([&run, &body, i] {
                Worker w(run, i);
                body(w);
            });
        std::mt19937_64 rng(run.config.seed);
        while (!run.done() && (run.config.ops != 0 || Clock::now() < until)) {
            if (control) control(rng);
            else std::this_thread::sleep_for(5ms);
        }
        run.stop.request_stop();
    }
}

// Checks the allocator's books after every worker has left: nothing outstanding, nothing lost.
void final_checks(Run& run, ScenarioResult& result) {
    AllocatorStats s = run.allocator.stats();
    if (s.outstanding != 0) run.violation(std::to_string(s.outstanding) + " samples still outstanding after all threads left");
    if (s.retired_pools != 0) run.violation(std::to_string(s.retired_pools) + " retired pools not drained");
    if (s.corruptions != 0) run.violation(std::to_string(s.corruptions) + " guard or poison bytes overwritten");
    if (s.waiters != 0) run.violation(std::to_string(s.waiters) + " threads still counted as waiting");
    if (run.allocator.committed()) {
        // Every buffer must be back in the pool: take them all.
        std::vector<SampleRef> all;
        for (std::size_t i = 0; i < s.buffers; ++i) {
            auto r = run.allocator.try_get_buffer();
            if (!r) {
                run.violation("buffer lost: only " + std::to_string(i) + " of " + std::to_string(s.buffers) + " could be taken back");
                break;
            }
            all.push_back(std::move(*r));
        }
    }
    (void)run.allocator.decommit();
    s = run.allocator.stats();
    if (s.bytes_mapped != 0) run.violation("memory still mapped after the final decommit");
    result.final_stats = s;
}

// ---- The scenarios.

// N producers hand samples to M consumers through a queue; consumers check and release.
void handoff(Run& run) {
    const unsigned producers = std::max(1u, run.config.threads / 2);
    const unsigned consumers = std::max(1u, run.config.threads - producers);
    struct Item {
        SampleRef sample;
        Stamp stamp;
    };
    LockedQueue<Item> queue;
    std::atomic<unsigned> producers_left{producers};
    run_threads(run, producers + consumers, [&](Worker& w) {
        if (w.id < producers) {
            while (!run.done()) {
                SampleRef s = w.get(100ms);
                if (!s) continue;
                // Ownership passes to the queue: the consumer gives it back.
                queue.enqueue(Item{std::move(s), {w.id, w.sequence}});
            }
            // release: the consumers' acquire load sees our last enqueue.
            producers_left.fetch_sub(1, std::memory_order_release);
        } else {
            Item item;
            for (;;) {
                if (queue.try_dequeue(item)) {
                    if (!stamp_intact(item.sample, item.stamp))
                        run.violation("handoff: sample changed in flight");
                    w.release(item.sample, false);
                } else if (producers_left.load(std::memory_order_acquire) == 0) {
                    // acquire above: every enqueue is visible; drain what is left.
                    if (!queue.try_dequeue(item)) break;
                    w.release(item.sample, false);
                } else {
                    std::this_thread::yield();
                }
            }
        }
    });
}

// Every thread gets and releases on one pool, holding a few samples at a time.
void contend(Run& run) {
    run_threads(run, run.config.threads, [&](Worker& w) {
        std::vector<SampleRef> held;
        const std::size_t max_hold = std::max<std::size_t>(1, run.config.buffers / run.config.threads);
        while (!run.done()) {
            if (held.size() < max_hold && w.below(2) == 0) {
                if (SampleRef s = w.get(100ms)) held.push_back(std::move(s));
            } else if (!held.empty()) {
                const std::size_t k = w.below(held.size());
                w.release(held[k]);
                held.erase(held.begin() + std::ptrdiff_t(k));
            }
        }
        for (auto& s : held) w.release(s);
    });
}

// Threads wait for and hold samples while the controller decommits and commits at random;
// every decommit must wake every waiter.
void decommit_storm(Run& run, ScenarioResult& result) {
    run_threads(
        run, run.config.threads,
        [&](Worker& w) {
            std::vector<SampleRef> held;
            while (!run.done()) {
                if (held.size() < run.config.buffers && w.below(3) != 0) {
                    if (SampleRef s = w.get(1s)) held.push_back(std::move(s));
                    else std::this_thread::sleep_for(std::chrono::microseconds(w.below(200)));
                } else if (!held.empty()) {
                    const std::size_t k = w.below(held.size());
                    w.release(held[k]);
                    held.erase(held.begin() + std::ptrdiff_t(k));
                }
            }
            for (auto& s : held) w.release(s);
        },
        [&](std::mt19937_64& rng) {
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
            // release: a waiter that sees not_committed reads this time.
            run.decommit_at_ns.store(now_ns(), std::memory_order_release);
            if (auto ec = run.allocator.decommit()) run.violation("decommit failed: " + ec.message());
            ++result.decommits;
            const auto deadline = Clock::now() + 2s;
            while (run.allocator.stats().waiters != 0)
                if (Clock::now() > deadline) {
                    run.violation("a waiter was not woken by decommit within 2 s");
                    return;
                }
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 1000));
            if (auto ec = run.allocator.commit()) run.violation("commit failed: " + ec.message());
        });
}

// One producer shares each sample with every other thread at once; they check and drop their
// references concurrently, and the last one returns the buffer.
void share(Run& run) {
    const unsigned readers = std::max(1u, run.config.threads - 1);
    std::vector<std::unique_ptr<LockedQueue<std::pair<SampleRef, Stamp>>>> queues;
    for (unsigned i = 0; i < readers; ++i) queues.push_back(std::make_unique<LockedQueue<std::pair<SampleRef, Stamp>>>());
    std::atomic<bool> producer_done{false};
    run_threads(run, readers + 1, [&](Worker& w) {
        if (w.id == 0) {
            while (!run.done()) {
                SampleRef s = w.get(100ms, false);
                if (!s) continue;
                const Stamp st{0, ++w.sequence};
                stamp(s, st);
                // The ownership word is cleared now: from here on the buffer is shared read-only
                // and only the reference count decides when it goes back.
                if (!run.ownership.give_back(s)) run.violation("share: ownership lost");
                for (auto& q : queues) q->enqueue({s, st});  // one added reference per reader
                s.reset();
            }
            // release: readers drain after seeing it.
            producer_done.store(true, std::memory_order_release);
        } else {
            auto& q = *queues[w.id - 1];
            std::pair<SampleRef, Stamp> item;
            for (;;) {
                if (q.try_dequeue(item)) {
                    if (!stamp_intact(item.first, item.second)) run.violation("share: shared sample changed while shared");
                    item.first.reset();
                    run.count();
                } else if (producer_done.load(std::memory_order_acquire)) {
                    // acquire above: all enqueues are visible.
                    if (!q.try_dequeue(item)) break;
                    item.first.reset();
                } else {
                    std::this_thread::yield();
                }
            }
        }
    });
}

// The controller changes the pool's shape between commits while workers hold samples of older
// epochs; samples must keep the shape of their own epoch, and set_properties must refuse while
// old samples are out.
void reconfigure(Run& run, ScenarioResult& result) {
    struct Shape {
        std::atomic<std::size_t> bytes{0};
        std::atomic<std::size_t> alignment{0};
    };
    constexpr std::size_t kShapes = 4096;
    auto shapes = std::make_unique<Shape[]>(kShapes);
    const AllocatorProperties first = run.allocator.properties();
    shapes[1].bytes.store(first.buffer_bytes, std::memory_order_relaxed);
    shapes[1].alignment.store(first.alignment, std::memory_order_relaxed);
    run_threads(
        run, run.config.threads,
        [&](Worker& w) {
            std::vector<SampleRef> held;
            while (!run.done()) {
                if (held.size() < 2 && w.below(2) == 0) {
                    SampleRef s = w.get(50ms);
                    if (!s) continue;
                    const Shape& shape = shapes[s.epoch() % kShapes];
                    // acquire: pairs with the controller's release before it committed.
                    const std::size_t bytes = shape.bytes.load(std::memory_order_acquire);
                    const std::size_t alignment = shape.alignment.load(std::memory_order_relaxed);
                    if (s.capacity() != bytes || std::uintptr_t(s.data()) % alignment != 0)
                        run.violation("sample of epoch " + std::to_string(s.epoch()) + " has the wrong shape");
                    held.push_back(std::move(s));
                } else if (!held.empty()) {
                    std::this_thread::sleep_for(std::chrono::microseconds(w.below(300)));
                    w.release(held.back());
                    held.pop_back();
                }
            }
            for (auto& s : held) w.release(s);
        },
        [&](std::mt19937_64& rng) {
            std::this_thread::sleep_for(std::chrono::microseconds(rng() % 2000));
            if (auto ec = run.allocator.decommit()) run.violation("decommit failed: " + ec.message());
            ++result.decommits;
            AllocatorProperties wanted = base_properties(run.config);
            wanted.buffers = 1 + rng() % run.config.buffers;
            wanted.buffer_bytes = 2 * sizeof(Stamp) + rng() % (2 * run.config.bytes);
            wanted.alignment = std::size_t(64) << (rng() % 4);
            auto granted = run.allocator.set_properties(wanted);
            if (!granted && granted.error() != Errc::buffers_outstanding)
                run.violation("set_properties refused valid properties: " + granted.error().message());
            const AllocatorProperties now = run.allocator.properties();
            const std::uint64_t next_epoch = run.allocator.stats().epoch + 1;
            Shape& shape = shapes[next_epoch % kShapes];
            shape.alignment.store(now.alignment, std::memory_order_relaxed);
            // release: publishes the shape before the commit that makes the epoch.
            shape.bytes.store(now.buffer_bytes, std::memory_order_release);
            if (auto ec = run.allocator.commit()) run.violation("commit failed: " + ec.message());
        });
}

int thread_count() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/task")) {
        while (dirent* e = ::readdir(d)) n += e->d_name[0] != '.';
        ::closedir(d);
    }
    return n;
}

// A random graph of real nodes, as sluice-play would build it.
std::string random_pipeline(std::mt19937_64& rng) {
    auto pick = [&](std::uint64_t n) { return rng() % n; };
    auto audio_source = [&] {
        const char* kinds[] = {"tone", "noise"};
        return std::string(kinds[pick(2)]) + " frames=" + std::to_string(32 << pick(5));
    };
    std::string text;
    const std::uint64_t chains = 1 + pick(3);
    for (std::uint64_t c = 0; c < chains; ++c) {
        const std::string tag = std::to_string(c);
        switch (pick(4)) {
            case 0:  // audio through a gain
                text += audio_source() + " ! gain db=-" + std::to_string(pick(20)) + " ! nullsink  ";
                break;
            case 1:  // a tee to two branches, one converting
                text += audio_source() + " ! tee name=t" + tag + "  t" + tag + ". ! nullsink  t" + tag +
                        ". ! audioconvert format=f32 ! nullsink  ";
                break;
            case 2:  // two sources into a mixer (same buffer size)
                text += "tone frames=256 ! m" + tag + ".  noise frames=256 ! m" + tag + ".  mix name=m" + tag +
                        " ! nullsink  ";
                break;
            default:  // video through converters and a scaler
                text += "videotest width=" + std::to_string(64 + 16 * pick(8)) + " height=" + std::to_string(48 + 16 * pick(4)) +
                        (pick(2) ? " ! videoconvert format=rgba" : "") + (pick(2) ? " ! scale width=80 height=60" : "") +
                        " ! nullsink  ";
        }
    }
    return text;
}

// Random graphs started, paused, flushed and stopped in random order; after every stop every pool
// must have all its samples back and no thread may be left behind.
void graph_storm(Run& run, ScenarioResult& result) {
    using engine::Graph;
    std::mt19937_64 rng(run.config.seed);
    const auto t0 = Clock::now();
    const auto until = t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(run.config.seconds));
    { Graph warm; }  // the first graph starts process-wide threads (the allocator's reclaimer)
    int baseline = -1;
    std::uint64_t graphs = 0;
    while (!run.done() && (run.config.ops != 0 || Clock::now() < until)) {
        const std::string text = random_pipeline(rng);
        {
            Graph g;
            if (Status st = nodes::build_pipeline(g, text); !st) {
                run.violation("graph: could not build '" + text + "': " + st.message());
                break;
            }
            const bool clocked = rng() % 3 == 0;
            for (engine::Node* n : g.nodes())
                if (n->kind() == engine::Node::Kind::render) n->set_clocked(clocked);
            const int steps = 2 + int(rng() % 8);
            for (int i = 0; i < steps && !run.done(); ++i) {
                Status st;
                switch (rng() % 5) {
                    case 0: case 1: st = g.run(); break;
                    case 2: st = g.pause(); break;
                    case 3: st = g.flush(); break;
                    default: {
                        const auto s0 = Clock::now();
                        st = g.stop();
                        result.stop_latency.record(std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count()));
                    }
                }
                if (!st) run.violation("graph: operation failed: " + st.message() + " on '" + text + "'");
                std::this_thread::sleep_for(std::chrono::microseconds(rng() % 3000));
                run.count();
            }
            const auto s0 = Clock::now();
            if (Status st = g.stop(); !st) run.violation("graph: stop failed: " + st.message());
            result.stop_latency.record(std::uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - s0).count()));
            for (const auto& pool : g.stats().pools)
                if (pool.stats.outstanding != 0 || pool.stats.waiters != 0)
                    run.violation("graph: pool " + pool.pin + " has " + std::to_string(pool.stats.outstanding) +
                                  " samples out and " + std::to_string(pool.stats.waiters) + " waiters after stop, on '" + text + "'");
            while (auto e = g.poll_event())
                if (e->type == engine::Event::Type::error || e->type == engine::Event::Type::stop_stuck)
                    run.violation("graph: " + std::string(engine::to_string(e->type)) + ": " + e->message + " on '" + text + "'");
        }
        // A joined thread can stay listed in /proc for a moment after pthread_join returns (the
        // kernel clears its tid before it leaves the thread group): give it a second.
        int threads = thread_count();
        for (int tries = 0; baseline >= 0 && threads > baseline && tries < 1000; ++tries) {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
            threads = thread_count();
        }
        if (baseline < 0) baseline = threads;
        else if (threads > baseline) run.violation("graph: " + std::to_string(threads - baseline) + " threads left behind by '" + text + "'");
        ++graphs;
    }
    result.decommits = graphs;  // shown in the table's count column for this scenario
}

}  // namespace

const std::vector<std::string>& scenario_names() {
    static const std::vector<std::string> names{"handoff", "contend", "decommit-storm", "share", "reconfigure", "graph"};
    return names;
}

// One run of a scenario with the configuration as given.
static ScenarioResult run_once(std::string_view name, const Config& config) {
    ScenarioResult result;
    result.name = std::string(name);
    const std::size_t max_buffers = config.buffers;
    Run run(config, result.name, max_buffers);
    // The ledger is on by default in debug builds, and a pool with the ledger on never parks
    // samples in the per-thread caches; unchecked pools run as release builds run them, caches
    // and all, so that the sanitizer builds stress the cache paths too.
    run.allocator.set_ledger_enabled(config.checked);
    if (auto granted = run.allocator.set_properties(base_properties(config)); !granted) {
        result.violations.push_back("set_properties: " + granted.error().message());
        return result;
    }
    if (auto ec = run.allocator.commit()) {
        result.violations.push_back("commit: " + ec.message());
        return result;
    }
    const auto t0 = Clock::now();
    if (name == "handoff") handoff(run);
    else if (name == "contend") contend(run);
    else if (name == "decommit-storm") decommit_storm(run, result);
    else if (name == "share") share(run);
    else if (name == "reconfigure") reconfigure(run, result);
    else if (name == "graph") graph_storm(run, result);
    else {
        result.violations.push_back("unknown scenario");
        return result;
    }
    result.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    final_checks(run, result);
    // relaxed: all workers have been joined.
    result.ops = run.ops.load(std::memory_order_relaxed);
    for (const auto& h : run.get_histograms) result.get_latency.merge(h);
    for (const auto& h : run.wake_histograms) result.wake_latency.merge(h);
    result.violations.insert(result.violations.end(), run.violations.begin(), run.violations.end());
    return result;
}

ScenarioResult run_scenario(std::string_view name, const Config& config) {
    // The graph scenario's pools are the graph's own; the others run checked, then unchecked.
    if (!config.alternate || name == "graph") return run_once(name, config);
    Config half = config;
    half.seconds = config.seconds / 2;
    half.ops = config.ops / 2;
    half.checked = true;
    ScenarioResult result = run_once(name, half);
    half.checked = false;
    ScenarioResult second = run_once(name, half);
    for (std::string& v : second.violations) v = "(unchecked pool) " + v;
    result.seconds += second.seconds;
    result.ops += second.ops;
    result.decommits += second.decommits;
    result.get_latency.merge(second.get_latency);
    result.wake_latency.merge(second.wake_latency);
    result.stop_latency.merge(second.stop_latency);
    result.violations.insert(result.violations.end(), second.violations.begin(), second.violations.end());
    result.final_stats = second.final_stats;
    return result;
}

}  // namespace sluice::stress

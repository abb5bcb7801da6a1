// SPDX-License-Identifier: MIT
// Times a JACK client's process callback from outside the client, the same way in any client:
// preloaded (LD_PRELOAD) into sluice-play and into Debian's jack_simple_client alike, so that
// bench/realtime_soak.sh compares their callbacks like for like without changing either program.
//
// It stands in for jack_set_process_callback and registers its own callback around the client's,
// which reads the time on entry and on return (jack_get_time: the monotonic clock, through the
// vDSO) and counts, in histograms of 1 us buckets:
//   late_us:     how much later than one period after the previous callback began this one
//                began (negative: earlier). What the kernel and the server did before the client
//                ran. jackd's dummy driver keeps a timetable (start + n periods) until a cycle
//                ends past its slot (then it starts a new one from there): a wake-up x us late
//                on the timetable shows as +x here, and the next one, on time, as -x.
//   duration_us: from entry to return: the client's own work, and whatever preempted it. The
//                callback's share of a missed cycle: above one period it alone misses one.
// Neither needs the cycle's start time, which JACK gives only as a filtered prediction
// (jack_get_cycle_times) that lags a driver whose cycles come late. Nothing in the wrapper locks,
// allocates or makes a system call. When the client closes (or at exit) its histograms go to the
// file $SLUICE_JACK_PROBE, one JSON line per client (bench/jack_probe_summary.py reads them).
//
// Hand-written: no tool measures a JACK client's callback from outside it (jackd's own profiler
// is a build option Debian leaves off).
#include <jack/jack.h>

#include <dlfcn.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr int kBuckets = 40000;    // 1 us each, from kEarliest us on; the ends hold what falls outside (clamped)
constexpr int kEarliest = -10000;  // a callback after a late one may come early
constexpr int kClients = 4;      // clients timed in one process (sluice-play opens one per JACK node)

struct Probe {
    jack_client_t* client = nullptr;
    JackProcessCallback callback = nullptr;
    void* arg = nullptr;
    char name[128] = {};
    // Written only by the client's JACK thread, read at exit after the client closed: relaxed
    // is enough, the atomics only keep a read at exit of a client still running well defined.
    std::atomic<std::uint32_t> late[kBuckets] = {};
    std::atomic<std::uint32_t> duration[kBuckets] = {};
    std::atomic<std::uint64_t> cycles{0};
    std::atomic<std::int64_t> period_ns{0};
    std::atomic<bool> written{false};
    jack_nframes_t rate = 0;
    jack_time_t previous_entry = 0;  // the client's JACK thread alone touches it; 0: no cycle yet
};

Probe probes[kClients];
std::atomic<int> registered{0};  // relaxed: only counts slots; each slot is filled before JACK is told of it

// The bucket of `us`, the ends taking what falls outside.
int bucket(std::int64_t us) {
    const std::int64_t i = us - kEarliest;
    return i < 0 ? 0 : i >= kBuckets ? kBuckets - 1 : int(i);
}

int timed_process(jack_nframes_t frames, void* arg) {
    Probe& p = *static_cast<Probe*>(arg);
    const jack_time_t entry = jack_get_time();
    const int result = p.callback(frames, p.arg);
    const jack_time_t exit = jack_get_time();
    if (p.previous_entry != 0 && p.rate > 0) {
        // In ns, then rounded to us: 64 frames at 48 kHz are 1333.33 us.
        const std::int64_t period_ns = std::int64_t(frames) * 1000000000 / p.rate;
        const std::int64_t late_ns = std::int64_t(entry - p.previous_entry) * 1000 - period_ns;
        p.late[bucket((late_ns + (late_ns >= 0 ? 500 : -500)) / 1000)].fetch_add(1, std::memory_order_relaxed);
        p.duration[bucket(std::int64_t(exit - entry))].fetch_add(1, std::memory_order_relaxed);
        p.period_ns.store(period_ns, std::memory_order_relaxed);
    }
    p.previous_entry = entry;
    p.cycles.fetch_add(1, std::memory_order_relaxed);
    return result;
}

void write_histogram(std::FILE* f, const char* key, const std::atomic<std::uint32_t>* counts) {
    std::fprintf(f, "\"%s\": {", key);
    bool first = true;
    for (int i = 0; i < kBuckets; ++i)
        if (const std::uint32_t n = counts[i].load(std::memory_order_relaxed)) {
            std::fprintf(f, "%s\"%d\": %u", first ? "" : ", ", i + kEarliest, n);
            first = false;
        }
    std::fprintf(f, "}");
}

// Appends probe `p`'s line to $SLUICE_JACK_PROBE, once.
void write_probe(Probe& p) {
    if (p.written.exchange(true, std::memory_order_relaxed)) return;  // relaxed: one writer wins; nothing else is published
    const char* path = std::getenv("SLUICE_JACK_PROBE");
    if (path == nullptr) return;
    std::FILE* f = std::fopen(path, "a");
    if (f == nullptr) {
        std::fprintf(stderr, "jack_callback_probe: cannot write %s\n", path);
        return;
    }
    // Integers only (a locale's decimal comma never enters), the name as a JSON string.
    std::fprintf(f, "{\"client\": \"");
    for (const char* c = p.name; *c != '\0'; ++c)
        if (*c == '"' || *c == '\\') std::fprintf(f, "\\%c", *c);
        else if (static_cast<unsigned char>(*c) >= 0x20) std::fputc(*c, f);
    std::fprintf(f, "\", \"cycles\": %llu, \"period_ns\": %lld, \"clamped_below_us\": %d, \"clamped_above_us\": %d, ",
                 (unsigned long long)p.cycles.load(std::memory_order_relaxed),
                 (long long)p.period_ns.load(std::memory_order_relaxed), kEarliest, kEarliest + kBuckets - 1);
    write_histogram(f, "late_us", p.late);
    std::fprintf(f, ", ");
    write_histogram(f, "duration_us", p.duration);
    std::fprintf(f, "}\n");
    std::fclose(f);
}

// At exit, whatever jack_client_close did not write (a client never closed).
__attribute__((destructor)) void write_probes() {
    const int n = registered.load(std::memory_order_relaxed);
    for (int i = 0; i < n && i < kClients; ++i) write_probe(probes[i]);
}

}  // namespace

extern "C" int jack_set_process_callback(jack_client_t* client, JackProcessCallback callback, void* arg) {
    using Real = int (*)(jack_client_t*, JackProcessCallback, void*);
    static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "jack_set_process_callback"));
    if (real == nullptr) return -1;
    if (callback == nullptr) return real(client, callback, arg);  // nothing to time
    const int slot = registered.fetch_add(1, std::memory_order_relaxed);
    if (slot >= kClients) {
        registered.fetch_sub(1, std::memory_order_relaxed);
        return real(client, callback, arg);  // untimed: more clients than slots
    }
    Probe& p = probes[slot];
    // Every bucket written once here, outside the callback: the callback then never meets a page
    // of them for the first time (a page fault in the real-time thread), whether or not the
    // client locks its memory.
    for (int i = 0; i < kBuckets; ++i) {
        p.late[i].store(0, std::memory_order_relaxed);
        p.duration[i].store(0, std::memory_order_relaxed);
    }
    (void)jack_get_time();  // binds the symbol here, not on the real-time thread's first call
    p.client = client;
    p.rate = jack_get_sample_rate(client);
    p.callback = callback;
    p.arg = arg;
    std::snprintf(p.name, sizeof p.name, "%s", jack_get_client_name(client));
    return real(client, timed_process, &p);
}

// A client's line is written when it closes: jack_simple_client closes in its SIGTERM handler,
// and a close that then hangs long enough for `timeout -k` to kill it would lose a line written
// only at exit. (Such a hang: two SIGTERMs, timeout's to the client and to its process group,
// each run the handler in another thread and deadlock in jack_client_close; the scripts use
// `timeout --foreground`, which sends one.)
extern "C" int jack_client_close(jack_client_t* client) {
    using Real = int (*)(jack_client_t*);
    static const Real real = reinterpret_cast<Real>(dlsym(RTLD_NEXT, "jack_client_close"));
    if (real == nullptr) return -1;
    const int n = registered.load(std::memory_order_relaxed);
    for (int i = 0; i < n && i < kClients; ++i)
        if (probes[i].client == client) write_probe(probes[i]);
    return real(client);
}

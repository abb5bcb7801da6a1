// SPDX-License-Identifier: MIT
#include <sluice/engine/ptp_clock.hpp>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <condition_variable>
#include <cstring>
#include <ctime>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

namespace sluice::engine {

namespace {

std::int64_t steady_ns() noexcept {
    timespec t{};
    ::clock_gettime(CLOCK_MONOTONIC, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

std::int64_t system_tai_ns() noexcept {
    timespec t{};
    ::clock_gettime(CLOCK_TAI, &t);
    return std::int64_t(t.tv_sec) * 1'000'000'000 + t.tv_nsec;
}

// ptp4l's port states (IEEE 1588 8.2.5.3.1, GRAND_MASTER is linuxptp's own), by number.
std::string port_state_name(int state) {
    static constexpr const char* kNames[] = {"?",       "INITIALIZING", "FAULTY",       "DISABLED",
                                             "LISTENING", "PRE_MASTER", "MASTER",       "PASSIVE",
                                             "UNCALIBRATED", "SLAVE",   "GRAND_MASTER"};
    return state > 0 && state < int(std::size(kNames)) ? kNames[state] : "state " + std::to_string(state);
}

// A clock identity as pmc prints it: 001122.fffe.334455.
std::string identity_text(const std::uint8_t* id) {
    char text[24];
    std::snprintf(text, sizeof text, "%02x%02x%02x.%02x%02x.%02x%02x%02x", id[0], id[1], id[2], id[3], id[4], id[5],
                  id[6], id[7]);
    return text;
}

std::uint64_t read_be(const std::uint8_t* p, int bytes) noexcept {
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = v << 8 | p[i];
    return v;
}

}  // namespace

// ---- ptp4l's management socket
//
// Hand-written because no packaged library speaks it (linuxptp ships pmc, a program, and Debian
// has no libptpmgmt): a GET is 54 bytes of IEEE 1588 management message (clause 15) on a local
// datagram socket, and the two answers we read are fixed layouts. This is asking ptp4l, not PTP:
// nothing here goes on the network.
struct PtpClock::Answer {
    bool time_status = false, port_data = false;
    std::int64_t master_offset = 0;
    std::int64_t ingress_ns = 0;  // when the last sync arrived (0: none yet)
    bool grandmaster_present = false;
    std::array<std::uint8_t, 8> grandmaster{}, own{};  // clock identities
    int port_state = 0;

    bool leads() const noexcept { return (port_state == 6 || port_state == 10) && grandmaster == own; }
    // A grandmaster to follow: the port follows one (SLAVE, or UNCALIBRATED, where a ptp4l that
    // measures without steering stays) and has measured at least once.
    bool follows() const noexcept {
        return (port_state == 9 || port_state == 8) && grandmaster_present && ingress_ns != 0;
    }
};

class PtpClock::Manager {
public:

    static Status connect(const PtpOptions& o, std::unique_ptr<Manager>& out) {
        const std::string& path = o.socket;
        sockaddr_un to{};
        if (path.empty() || path.size() >= sizeof to.sun_path)
            return {GraphErrc::invalid_argument, "PTP clock: '" + path + "' cannot be a socket path"};
        if (o.domain < 0 || o.domain > 255)
            return {GraphErrc::invalid_argument, "PTP clock: domain " + std::to_string(o.domain) + " is not 0 to 255"};
        auto m = std::unique_ptr<Manager>(new Manager(o.domain));
        m->fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        if (m->fd_ < 0) return {GraphErrc::io_error, std::string("PTP clock: socket: ") + std::strerror(errno)};
        // ptp4l answers to the sender's address, so ours needs a name: an abstract one (no file
        // to leave behind), unique per process and clock.
        sockaddr_un self{};
        self.sun_family = AF_UNIX;
        const int n = std::snprintf(self.sun_path + 1, sizeof self.sun_path - 1, "sluice-ptp-%d-%p", int(::getpid()),
                                    static_cast<void*>(m.get()));
        if (::bind(m->fd_, reinterpret_cast<sockaddr*>(&self), socklen_t(offsetof(sockaddr_un, sun_path) + 1 + n)) != 0)
            return {GraphErrc::io_error, std::string("PTP clock: bind: ") + std::strerror(errno)};
        to.sun_family = AF_UNIX;
        std::memcpy(to.sun_path, path.data(), path.size());
        m->to_ = to;
        if (::connect(m->fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
            const int e = errno;
            if (e == ENOENT || e == ECONNREFUSED)
                return {GraphErrc::io_error, "PTP clock: no ptp4l listens at " + path +
                                                 " (start one, e.g. 'ptp4l -i eth0 -S', or give its uds_address)"};
            return {GraphErrc::io_error, "PTP clock: " + path + ": " + std::strerror(e)};
        }
        out = std::move(m);
        return {};
    }

    ~Manager() {
        if (fd_ >= 0) ::close(fd_);
    }

    // Asks for TIME_STATUS_NP and PORT_DATA_SET and reads answers until both came (and every
    // port's: each answers a GET to all ports, at once) or `timeout` passed. false when ptp4l did
    // not answer both. A ptp4l that restarted is reconnected to.
    bool ask(Answer& a, std::chrono::milliseconds timeout) {
        a = Answer{};
        while (recv(buffer_.data(), buffer_.size(), MSG_DONTWAIT) > 0) {}  // late answers to an earlier ask
        if (!send_get(kTimeStatusNp) || !send_get(kPortDataSet)) {
            // Its socket was made anew (ptp4l restarted): ours still points at the old one.
            if (::connect(fd_, reinterpret_cast<const sockaddr*>(&to_), sizeof to_) != 0) return false;
            if (!send_get(kTimeStatusNp) || !send_get(kPortDataSet)) return false;
        }
        const std::int64_t deadline = steady_ns() + std::int64_t(timeout.count()) * 1'000'000;
        for (;;) {
            const bool both = a.time_status && a.port_data;
            const std::int64_t left_ns = deadline - steady_ns();
            if (left_ns <= 0) return both;
            // Once both came, other ports' answers are already on their way: wait 2 ms for them.
            const int wait_ms = both ? 2 : int((left_ns + 999'999) / 1'000'000);
            pollfd p{fd_, POLLIN, 0};
            if (::poll(&p, 1, wait_ms) <= 0) {
                if (both) return true;
                continue;
            }
            const ssize_t got = recv(buffer_.data(), buffer_.size(), 0);
            if (got > 0) read_answer(buffer_.data(), std::size_t(got), a);
        }
    }

private:
    static constexpr std::uint16_t kPortDataSet = 0x2004;
    static constexpr std::uint16_t kTimeStatusNp = 0xC000;  // linuxptp's own
    static constexpr std::size_t kHeader = 34, kGetBytes = 54, kData = 54;

    explicit Manager(int domain) : domain_(std::uint8_t(domain)) {}

    ssize_t recv(std::uint8_t* into, std::size_t size, int flags) noexcept { return ::recv(fd_, into, size, flags); }

    bool send_get(std::uint16_t id) noexcept {
        std::array<std::uint8_t, kGetBytes> m{};
        m[0] = 0x0D;  // transportSpecific 0, messageType management
        m[1] = 0x02;  // PTP version 2
        m[2] = kGetBytes >> 8;
        m[3] = kGetBytes & 0xff;
        m[4] = domain_;
        // sourcePortIdentity (20..29): ours is all zeros but the port number, as pmc's is.
        const auto pid = std::uint16_t(::getpid());
        m[28] = std::uint8_t(pid >> 8);
        m[29] = std::uint8_t(pid);
        m[30] = std::uint8_t(sequence_ >> 8);
        m[31] = std::uint8_t(sequence_);
        ++sequence_;
        m[32] = 0x04;  // controlField: management
        m[33] = 0x7f;  // logMessageInterval: none
        std::fill(m.begin() + kHeader, m.begin() + kHeader + 10, 0xff);  // target: every port
        m[44] = 0;  // startingBoundaryHops: ptp4l itself, not forwarded
        m[45] = 0;
        m[46] = 0;  // actionField: GET
        m[48] = 0x00;
        m[49] = 0x01;  // tlvType: MANAGEMENT
        m[50] = 0x00;
        m[51] = 0x02;  // lengthField: the managementId alone
        m[52] = std::uint8_t(id >> 8);
        m[53] = std::uint8_t(id);
        return ::send(fd_, m.data(), m.size(), MSG_NOSIGNAL) == ssize_t(m.size());
    }

    static void read_answer(const std::uint8_t* m, std::size_t size, Answer& a) {
        if (size < kData || (m[0] & 0x0f) != 0x0D || (m[46] & 0x0f) != 2 /* RESPONSE */) return;
        if (read_be(m + 48, 2) != 1 /* MANAGEMENT, not an error status */) return;
        const std::size_t length = read_be(m + 50, 2);
        if (length < 2 || kData - 2 + length > size) return;
        const auto id = std::uint16_t(read_be(m + 52, 2));
        const std::uint8_t* d = m + kData;
        if (id == kTimeStatusNp && length - 2 >= 50) {
            a.master_offset = std::int64_t(read_be(d, 8));
            a.ingress_ns = std::int64_t(read_be(d + 8, 8));
            a.grandmaster_present = read_be(d + 38, 4) != 0;
            std::copy(d + 42, d + 50, a.grandmaster.begin());
            std::copy(m + 20, m + 28, a.own.begin());
            a.time_status = true;
        } else if (id == kPortDataSet && length - 2 >= 11) {
            const int state = d[10];
            // Several ports answer a GET to every port (a boundary clock): the one that follows a
            // grandmaster speaks for the clock, else one that leads.
            const auto rank = [](int st) { return st == 9 ? 4 : st == 8 ? 3 : (st == 6 || st == 10) ? 2 : st > 0 ? 1 : 0; };
            if (!a.port_data || rank(state) > rank(a.port_state)) a.port_state = state;
            a.port_data = true;
        }
    }

    int fd_ = -1;
    sockaddr_un to_{};  // ptp4l's socket
    std::uint8_t domain_;
    std::uint16_t sequence_ = 0;
    std::array<std::uint8_t, 1500> buffer_{};
};

// ---- PtpClock

Status PtpClock::open(const PtpOptions& options, std::unique_ptr<PtpClock>& clock) {
    if (options.poll.count() <= 0 || options.wait.count() < 0)
        return {GraphErrc::invalid_argument, "PTP clock: poll and wait intervals must be positive"};
    std::unique_ptr<Manager> manager;
    if (Status st = Manager::connect(options, manager); !st) return st;
    const std::int64_t deadline = steady_ns() + std::int64_t(options.wait.count()) * 1'000'000;
    Answer a;
    bool answered = false;
    int seen_state = 0;  // the port's state in ptp4l's last answer
    for (;;) {
        if (manager->ask(a, std::chrono::milliseconds(250))) {
            answered = true;
            seen_state = a.port_state;
            if (a.leads() || a.follows()) break;
        }
        if (steady_ns() >= deadline) {
            if (!answered)
                return {GraphErrc::timeout, "PTP clock: ptp4l at " + options.socket + " does not answer (is its domainNumber " +
                                                std::to_string(options.domain) + "?)"};
            return {GraphErrc::timeout, "PTP clock: ptp4l at " + options.socket + " found no grandmaster in " +
                                            std::to_string(options.wait.count()) + " ms (its port is " +
                                            port_state_name(seen_state) + ")"};
        }
        std::this_thread::sleep_for(std::min(options.poll, std::chrono::milliseconds(100)));
    }
    clock.reset(new PtpClock(std::move(manager), options));
    clock->take(a);
    // The poller publishes the first count at once, then one every poll: even intervals, so the
    // device clock never holds between two (it would after an interval far shorter than the next).
    clock->poller_ = std::jthread([c = clock.get()](std::stop_token stop) { c->poll_until(stop); });
    return {};
}

PtpClock::PtpClock(std::unique_ptr<Manager> manager, const PtpOptions& options)
    : manager_(std::move(manager)), options_(options) {
    device_.start(1'000'000'000);  // its count is PTP nanoseconds
}

PtpClock::~PtpClock() {
    poller_.request_stop();
    if (poller_.joinable()) poller_.join();
}

std::int64_t PtpClock::tai_ns() const noexcept {
    return system_tai_ns() - offset_ns_.load(std::memory_order_relaxed);  // relaxed: see the member
}

void PtpClock::take(const Answer& a) {
    const bool here = a.leads();
    // An answer without a grandmaster to follow (ptp4l lost it) keeps the last offset: holdover.
    if (here || a.follows()) offset_ns_.store(here ? 0 : a.master_offset, std::memory_order_relaxed);  // relaxed: see the member
    holdover_.store(!(here || a.follows()), std::memory_order_relaxed);
    answers_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(names_lock_);
    port_state_ = port_state_name(a.port_state);
    grandmaster_ = identity_text(a.grandmaster.data());
    grandmaster_here_ = here;
}

// The device clock's count follows PTP time's pace but not its steps: a grandmaster change or a
// servo's step would move the graph's running time by the step (backwards, a count that
// wraps). A poll interval whose PTP time differs from the steady clock's by more than 1 % (a
// servo slews by at most 0.05 %) advances the count by the steady clock's instead.
void PtpClock::publish() noexcept {
    const std::int64_t now = steady_ns(), ptp = tai_ns();
    if (!published_) {
        count_ = std::uint64_t(ptp);
        published_ = true;
    } else {
        const std::int64_t d_steady = now - last_steady_, d_ptp = ptp - last_ptp_;
        const bool step = d_ptp < 0 || std::llabs(d_ptp - d_steady) > d_steady / 100 + 100'000;
        count_ += std::uint64_t(step ? std::max<std::int64_t>(d_steady, 0) : d_ptp);
    }
    last_steady_ = now;
    last_ptp_ = ptp;
    device_.publish(count_, now);
}

void PtpClock::poll_until(std::stop_token stop) {
    Answer a;
    std::mutex sleep_lock;
    std::condition_variable_any sleeper;
    while (!stop.stop_requested()) {
        // ptp4l answers in microseconds; a short wait keeps the publishing even while it is silent.
        if (manager_->ask(a, std::min(options_.poll, std::chrono::milliseconds(50))))
            take(a);
        else {
            holdover_.store(true, std::memory_order_relaxed);  // relaxed: see the member
            silences_.fetch_add(1, std::memory_order_relaxed);
        }
        publish();
        std::unique_lock lock(sleep_lock);
        sleeper.wait_for(lock, stop, options_.poll, [] { return false; });
    }
}

PtpState PtpClock::state() const {
    PtpState s;
    s.offset_ns = offset_ns_.load(std::memory_order_relaxed);  // relaxed: see the member
    s.holdover = holdover_.load(std::memory_order_relaxed);
    s.answers = answers_.load(std::memory_order_relaxed);
    s.silences = silences_.load(std::memory_order_relaxed);
    std::lock_guard lock(names_lock_);
    s.port_state = port_state_;
    s.grandmaster = grandmaster_;
    s.grandmaster_here = grandmaster_here_;
    return s;
}

}  // namespace sluice::engine

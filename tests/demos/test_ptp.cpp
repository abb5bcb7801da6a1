// SPDX-License-Identifier: MIT
// A clock that machines share (issue #15): sluice-play --clock ptp follows PTP time as linuxptp's
// ptp4l keeps it. The test makes two network namespaces joined by a veth pair, runs ptp4l with
// software timestamps (-S) as grandmaster in one and as a follower in the other, and one AES67
// sender in each, each reading its own ptp4l. A receiver beside them records every packet's RTP
// time and when it came; the two streams' RTP time for one instant must agree.
//
// What this can and cannot show on one machine: the namespaces share one kernel clock, so the
// follower's ptp4l runs with `free_running 1` (it measures its offset from the grandmaster and
// never steers the clock: steering would move this machine's own time) and the offset it
// measures is the software timestamps' noise, not a real clock error. What it shows is the whole
// path: each sender finds its ptp4l, waits for it to follow or be the grandmaster, names the
// grandmaster in its statistics (the same identity on both sides), runs its graph clock at PTP's
// pace and stamps RTP time from PTP time, and the two senders' RTP time agrees within the bound
// below, measured here as a few tens of microseconds.
#include "../support.hpp"

#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>
#include <unistd.h>

namespace {

const std::string kPlayer = SLUICE_PLAY_PATH;

using test::quote;
using test::read_file;

// ptp4l with short intervals, so a follower locks in about a second instead of ten.
std::string ptp4l_config(const std::string& socket, bool follower) {
    return std::string("[global]\n") + (follower ? "slaveOnly 1\nfree_running 1\n" : "priority1 10\n") +
           "uds_address " + socket + "\n"
           "logAnnounceInterval -3\nannounceReceiptTimeout 2\nlogSyncInterval -3\nlogMinDelayReqInterval -3\n";
}

// Records every RTP packet on two ports: port, RTP time, and CLOCK_TAI when it was read. Ends
// once the file argv[3] exists (both senders are done), or after 90 s.
constexpr const char* kCapture = R"(
import os, select, socket, struct, sys, time
socks = []
for port in (5004, 5006):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(('0.0.0.0', port))
    socks.append(s)
open(sys.argv[2], 'w').close()  # ready
start = time.monotonic()
with open(sys.argv[1], 'w') as out:
    while time.monotonic() - start < 90:
        ready, _, _ = select.select(socks, [], [], 0.1)
        if not ready and os.path.exists(sys.argv[3]):
            break
        for s in ready:
            data = s.recv(2048)
            at = time.clock_gettime_ns(time.CLOCK_TAI)
            if len(data) >= 12:
                out.write('%d %d %d\n' % (s.getsockname()[1], struct.unpack('!I', data[4:8])[0], at))
)";

// For each packet, how far its RTP time lies before its arrival (in samples at 48 kHz), per port.
std::map<int, std::vector<double>> lead_by_port(const std::string& capture) {
    std::map<int, std::vector<double>> lead;
    std::istringstream in(capture);
    int port;
    std::uint64_t ts, at_ns;
    while (in >> port >> ts >> at_ns) {
        const auto now = std::uint32_t(static_cast<unsigned __int128>(at_ns) * 48000 / 1'000'000'000);
        lead[port].push_back(double(std::int32_t(now - std::uint32_t(ts))));
    }
    return lead;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

TEST_CASE("Ptp.TwoSenders.RtpTimeAgreesAcrossNamespaces" * doctest::timeout(120)) {
    REQUIRE_MESSAGE(::geteuid() == 0, "network namespaces need root");
    REQUIRE_MESSAGE(test::run("command -v ptp4l").exit_code == 0, "needs linuxptp (.ci/install-deps installs it)");
    test::TempDir dir;
    const std::string tag = std::to_string(::getpid() % 100000);
    const std::string a = "slptA" + tag, b = "slptB" + tag, va = "pa" + tag, vb = "pb" + tag;
    const std::string lead_socket = dir / "lead.sock", follow_socket = dir / "follow.sock";
    std::ofstream(dir / "lead.cfg") << ptp4l_config(lead_socket, false);
    std::ofstream(dir / "follow.cfg") << ptp4l_config(follow_socket, true);
    std::ofstream(dir / "capture.py") << kCapture;
    auto sender = [&](const std::string& ns, const std::string& socket, const std::string& host, int port,
                      const std::string& name) {
        return "ip netns exec " + ns + " " + kPlayer + " -q --clock ptp --ptp-socket " + quote(socket) +
               " --duration 3 --stats-json " + quote(dir / (name + ".json")) + " " +
               quote("tone format=s24 channels=2 ! rtpsink profile=aes67 host=" + host + " port=" + std::to_string(port)) +
               " > " + quote(dir / (name + ".txt")) + " 2>&1";
    };
    const std::string script =
        test::two_namespaces(a, b, va, vb, 81) +
        "trap 'kill $lead $follow $capture 2>/dev/null; wait; cleanup' EXIT\n"
        "ip netns exec " + a + " ptp4l -S -i " + va + " -f " + quote(dir / "lead.cfg") + " -m > " +
        quote(dir / "lead.log") + " 2>&1 &\nlead=$!\n"
        "ip netns exec " + b + " ptp4l -S -i " + vb + " -f " + quote(dir / "follow.cfg") + " -m > " +
        quote(dir / "follow.log") + " 2>&1 &\nfollow=$!\n"
        "ip netns exec " + b + " python3 " + quote(dir / "capture.py") + " " + quote(dir / "capture.txt") + " " +
        quote(dir / "listening") + " " + quote(dir / "senders-done") + " &\ncapture=$!\n"
        "for i in $(seq 100); do [ -e " + quote(dir / "listening") + " ] && break; sleep 0.1; done\n"
        "for i in $(seq 100); do [ -S " + quote(lead_socket) + " ] && [ -S " + quote(follow_socket) + " ] && break; sleep 0.1; done\n"
        // Each sender waits for its own ptp4l to follow or lead; the follower's locks in ~1 s.
        + sender(a, lead_socket, "10.81.0.2", 5004, "lead") + " &\nsa=$!\n" +
        sender(b, follow_socket, "127.0.0.1", 5006, "follow") + " &\nsb=$!\n"
        "status=0\nwait $sa || status=1\nwait $sb || status=1\n"
        "touch " + quote(dir / "senders-done") + "\n"
        "wait $capture || status=1\n"
        "exit $status\n";
    std::ofstream(dir / "run.sh") << script;
    const auto r = test::run("bash " + quote(dir / "run.sh"));
    INFO(r.output);
    INFO(read_file(dir / "lead.txt"));
    INFO(read_file(dir / "follow.txt"));
    INFO(read_file(dir / "follow.log"));
    REQUIRE(r.exit_code == 0);

    // Both graphs followed PTP, and both name the one grandmaster: the leader's own ptp4l.
    const auto lead = nlohmann::json::parse(read_file(dir / "lead.json"));
    const auto follow = nlohmann::json::parse(read_file(dir / "follow.json"));
    CHECK(lead["clock"] == "ptp");
    CHECK(follow["clock"] == "ptp");
    CHECK(lead["ptp"]["grandmaster_here"] == true);
    CHECK(follow["ptp"]["grandmaster_here"] == false);
    CHECK(follow["ptp"]["grandmaster"] == lead["ptp"]["grandmaster"]);
    CHECK(follow["ptp"]["answers"].get<std::uint64_t>() >= 10);  // asked 8 times a second for 3 s
    // The graph clock ran at PTP's pace: on one kernel clock, within the offsets' noise.
    CHECK(std::abs(follow["clock_drift_ppm"].get<double>()) < 1000);

    // Both streams' RTP time for the moment a packet arrived, minus that moment: the two medians
    // agree within 1 ms (48 samples, AES67's packet time; what we measured is in the message).
    const auto leads = lead_by_port(read_file(dir / "capture.txt"));
    REQUIRE(leads.count(5004) == 1);
    REQUIRE(leads.count(5006) == 1);
    CHECK(leads.at(5004).size() >= 2500);  // 3 s of 1 ms packets, less what came before the capture
    CHECK(leads.at(5006).size() >= 2500);
    const double from_lead = median(leads.at(5004)), from_follower = median(leads.at(5006));
    MESSAGE("RTP time behind arrival: leader's sender " << from_lead / 48 << " ms, follower's " << from_follower / 48
                                                        << " ms; they differ by " << (from_lead - from_follower) / 48 * 1000
                                                        << " us");
    CHECK(from_lead >= 0);  // a packet never arrives before its own time
    CHECK(from_follower >= 0);
    CHECK(std::abs(from_lead - from_follower) <= 48);
}

TEST_CASE("Ptp.BadSetup.OneLineAndExitTwo" * doctest::timeout(60)) {
    test::TempDir dir;
    // Nothing listens at the socket.
    auto r = test::run(kPlayer + " -q --clock ptp --ptp-socket " + quote(dir / "none.sock") + " 'tone ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output == "sluice-play: PTP clock: no ptp4l listens at " + std::string(dir / "none.sock") +
                          " (start one, e.g. 'ptp4l -i eth0 -S', or give its uds_address)\n");
    // A path no socket can have, and a domain out of range.
    r = test::run(kPlayer + " -q --clock ptp --ptp-socket '' 'tone ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output == "sluice-play: PTP clock: '' cannot be a socket path\n");
    r = test::run(kPlayer + " -q --clock ptp --ptp-domain 300 'tone ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("--ptp-domain") != std::string::npos);
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
    r = test::run(kPlayer + " -q --clock sundial 'tone ! nullsink' 2>&1");
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("--clock") != std::string::npos);

    // A ptp4l alone in a namespace of its own finds no grandmaster (it may only follow): said in
    // one line once --ptp-wait is up, naming its port's state.
    if (::geteuid() != 0 || test::run("command -v ptp4l").exit_code != 0) return;
    const std::string ns = "slptC" + std::to_string(::getpid() % 100000);
    const std::string socket = dir / "alone.sock";
    std::ofstream(dir / "alone.cfg") << ptp4l_config(socket, true);
    const std::string script =
        "ip netns add " + ns + "\nip -n " + ns + " link set lo up\n"
        "ip netns exec " + ns + " ptp4l -S -i lo -f " + quote(dir / "alone.cfg") + " > " + quote(dir / "alone.log") +
        " 2>&1 &\nptp=$!\n"
        "trap 'kill $ptp 2>/dev/null; wait; ip netns del " + ns + "' EXIT\n"
        "for i in $(seq 50); do [ -S " + quote(socket) + " ] && break; sleep 0.1; done\n"
        "ip netns exec " + ns + " " + kPlayer + " -q --clock ptp --ptp-wait 1 --ptp-socket " + quote(socket) +
        " 'tone ! nullsink' 2>&1\n";
    std::ofstream(dir / "alone.sh") << script;
    r = test::run("bash " + quote(dir / "alone.sh"));
    INFO(read_file(dir / "alone.log"));
    CHECK(r.exit_code == 2);
    CHECK(r.output.starts_with("sluice-play: PTP clock: ptp4l at " + socket + " found no grandmaster in 1000 ms (its port is "));
    CHECK(std::count(r.output.begin(), r.output.end(), '\n') == 1);
}

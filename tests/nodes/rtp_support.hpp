// SPDX-License-Identifier: MIT
#pragma once

// Shared by the RTP tests: ports, a node's extra statistics, raw datagrams, and GStreamer on the
// other end.

#include "../support.hpp"  // test::run
#include "node_stats.hpp"    // test::extra

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

namespace test {

// A port unlikely to collide with a parallel test.
inline int random_port() {
    static std::mt19937 rng(std::random_device{}());
    return 20000 + int(rng() % 20000);
}

// A receiver's packet counts for the test's log: "received R, lost L, late T".
inline std::string packet_counts(const sluice::engine::Graph& g, const std::string& node) {
    return "received " + std::to_string(extra(g, node, "packets_received")) + ", lost " +
           std::to_string(extra(g, node, "packets_lost")) + ", late " + std::to_string(extra(g, node, "packets_late"));
}

inline void send_datagram(int port, const std::vector<std::uint8_t>& bytes) {
    const int fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(std::uint16_t(port));
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    (void)::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<sockaddr*>(&to), sizeof to);
    ::close(fd);
}

// Runs `pipeline` (a receiver that waits for packets which never come) and stops it, 20 times:
// each stop must be prompt, cutting the pending receive short.
inline void check_prompt_stop_while_receiving(const std::string& pipeline) {
    sluice::engine::Graph rx;
    REQUIRE(sluice::nodes::build_pipeline(rx, pipeline));
    for (int i = 0; i < 20; ++i) {
        REQUIRE(rx.run());
        std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the thread waits in a receive
        REQUIRE(rx.stop());
        CHECK(rx.stats().last_stop < std::chrono::milliseconds(500));
    }
}

// Runs `pipeline` to its end with its renders presenting on the clock, paced like a live sender.
inline void send_paced(const std::string& pipeline, std::chrono::seconds limit) {
    sluice::engine::Graph tx;
    REQUIRE(sluice::nodes::build_pipeline(tx, pipeline));
    for (sluice::engine::Node* n : tx.nodes())
        if (n->kind() == sluice::engine::Node::Kind::render) n->set_clocked(true);
    REQUIRE(tx.run());
    REQUIRE(tx.wait_until_ended(limit));
    REQUIRE(tx.stop());
}

// A recorder (gst-launch-1.0 -e ...) running in the background until finish(): SIGINT, which -e
// turns into an end of stream, so the file it writes is complete; then waits for it.
class BackgroundCommand {
public:
    explicit BackgroundCommand(const std::string& command) {
        pid_ = ::fork();
        if (pid_ == 0) {
            ::execl("/bin/sh", "sh", "-c", ("exec " + command).c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
    }
    BackgroundCommand(const BackgroundCommand&) = delete;
    BackgroundCommand& operator=(const BackgroundCommand&) = delete;
    ~BackgroundCommand() { (void)finish(); }
    bool started() const { return pid_ > 0; }
    // Whether it ended after the interrupt (any exit status: the file is what the tests check).
    bool finish() {
        if (pid_ <= 0) return false;
        ::kill(pid_, SIGINT);
        int status = 0;
        const bool reaped = ::waitpid(pid_, &status, 0) == pid_;
        pid_ = -1;
        return reaped;
    }

private:
    pid_t pid_ = -1;
};

// Whether GStreamer's `element` is installed; says what to do in the test's log when it is not.
inline bool have_gst_element(const std::string& element) {
    if (run("gst-inspect-1.0 " + element).exit_code == 0) return true;
    MESSAGE("GStreamer's " << element << " is not installed; .ci/install-deps installs it");
    return false;
}

// Runs `recorder` (gst-launch-1.0 -e, receiving) in the background, lets it bind, runs `pipeline`
// to it with send_paced(), and stops the recorder, so the file it writes is complete.
inline void record_while_sending(const std::string& recorder, const std::string& pipeline, std::chrono::seconds limit) {
    BackgroundCommand command(recorder);
    REQUIRE(command.started());
    std::this_thread::sleep_for(std::chrono::seconds(1));  // let it bind
    send_paced(pipeline, limit);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    REQUIRE(command.finish());
}

}  // namespace test

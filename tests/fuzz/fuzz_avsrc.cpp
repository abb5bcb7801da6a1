// SPDX-License-Identifier: MIT
// libFuzzer target: avsrc on any file. FFmpeg's demuxers and decoders have fuzzers of their own
// (OSS-Fuzz); this one drives our side of them: probing, pins for the streams found, format
// negotiation, seeking, conversion into pool buffers, timestamps, the end of the stream and the
// stop. Each input is a memfd (a regular file with no name on disk), played to a nullsink per
// pin for at most 50 buffers or 2 s of media. Whatever happens must end in one-line errors.
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include <sys/mman.h>
#include <unistd.h>

using namespace sluice;

namespace {
bool one_line(const std::string& s) { return s.find('\n') == std::string::npos; }
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const int fd = ::memfd_create("fuzz_avsrc", 0);
    if (fd < 0) return 0;
    if (::write(fd, data, size) != ssize_t(size)) {
        ::close(fd);
        return 0;
    }
    const std::string path = "/proc/self/fd/" + std::to_string(fd);
    {
        engine::Graph graph;
        std::unique_ptr<engine::Node> node;
        // Every other input seeks first, so the seek path gets its share.
        nodes::Properties props{{"path", path}, {"num-buffers", "50"}};
        if (size % 2 == 1) props["start"] = "0.5";
        Status st = nodes::create_node("avsrc", "src", props, node);
        if (!st) {
            if (!one_line(st.message())) std::abort();
        } else {
            engine::Node& src = graph.add(std::move(node));
            bool linked = true;
            for (std::size_t o = 0; o < src.output_count() && linked; ++o) {
                std::unique_ptr<engine::Node> sink;
                linked = bool(nodes::create_node("nullsink", "sink" + std::to_string(o), {}, sink));
                if (linked) linked = bool(graph.connect(src.output(o), graph.add(std::move(sink)).input(0)));
            }
            graph.set_media_duration(2'000'000'000);
            if (Status run = graph.run(); run) {
                (void)graph.wait_until_ended(std::chrono::seconds(5));
                (void)graph.stop();
                while (auto e = graph.poll_event())
                    if (!one_line(e->message)) std::abort();
            } else if (!one_line(run.message())) {
                std::abort();
            }
        }
    }
    ::close(fd);
    return 0;
}

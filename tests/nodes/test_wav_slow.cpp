// SPDX-License-Identifier: MIT
// The slow cases (label "slow", their own executable, run alone): a WAV recording past 4 GiB.
// .ci/run's plain ctest runs them with the rest; `ctest -LE slow` leaves them out.
#include "play_support.hpp"
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/wire/wav.hpp>
#include <sluice/sluice.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <unistd.h>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;

namespace {

// Four gigabytes take minutes on a slow disk.
void play(const std::string& pipeline) { test::play(pipeline, std::chrono::seconds(300)); }

// The first `n` bytes of a file (or fewer).
std::string bytes_of_prefix(const std::string& path, std::size_t n) {
    std::ifstream in(path, std::ios::binary);
    std::string s(n, '\0');
    in.read(s.data(), std::streamsize(n));
    s.resize(std::size_t(in.gcount()));
    return s;
}

}  // namespace

// Past 4 GiB with rf64=auto: the finished file is RF64, ffprobe reads its whole length and wavsrc
// reads every byte. Writes 4 GiB under the build folder (deleted after): labelled "slow".
TEST_CASE("Wav.Rf64.AutoPast4GiBReadBack" * doctest::timeout(600)) {
    const std::filesystem::path folder = std::filesystem::current_path() / ("rf64-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(folder);
    struct Cleanup {
        std::filesystem::path p;
        ~Cleanup() {
            std::error_code ec;
            std::filesystem::remove_all(p, ec);
        }
    } cleanup{folder};
    const std::string big = (folder / "big.wav").string();
    // 2049 buffers of 65536 frames of 8 x f32: 4297064448 bytes, just past what RIFF can say.
    constexpr std::uint64_t kBuffers = 2049, kFrames = 65536, kBytes = kBuffers * kFrames * 8 * 4;
    const auto t0 = std::chrono::steady_clock::now();
    play("tone format=f32 channels=8 rate=384000 frames=65536 num-buffers=2049 ! wavsink path=" + big);
    const auto t1 = std::chrono::steady_clock::now();
    CHECK(std::filesystem::file_size(big) == wire::wav_header_bytes(MediaFormat::audio(384000, 8, SampleFormat::f32)) + kBytes);
    const std::string head = bytes_of_prefix(big, 4096);
    CHECK(head.substr(0, 4) == "RF64");
    std::string error;
    auto info = wire::parse_wav_header({reinterpret_cast<const unsigned char*>(head.data()), head.size()},
                                       std::filesystem::file_size(big), error);
    REQUIRE_MESSAGE(info, error);
    CHECK(info->rf64);
    CHECK(info->data_bytes == kBytes);
    CHECK(test::probe(big, "a:0", "duration_ts") == std::to_string(kBuffers * kFrames));
    // wavsrc reads it all: every buffer reaches the sink, the last one ending at the file's end.
    Graph g;
    REQUIRE(nodes::build_pipeline(g, "wavsrc path=" + big + " frames=65536 ! nullsink"));
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(300s));
    REQUIRE(g.stop());
    const auto t2 = std::chrono::steady_clock::now();
    for (const auto& n : g.stats().nodes)
        if (n.name.rfind("nullsink", 0) == 0) {
            CHECK(n.stats.samples_in == kBuffers);
            CHECK(n.stats.position_ns == frames_to_ns(kBuffers * kFrames, 384000));
        }
    MESSAGE("4 GiB RF64: wrote in " << std::chrono::duration<double>(t1 - t0).count() << " s, read in "
                                    << std::chrono::duration<double>(t2 - t1).count() << " s");
}

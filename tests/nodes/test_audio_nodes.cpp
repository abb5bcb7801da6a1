// SPDX-License-Identifier: MIT
// Audio nodes, WAV files and the pipeline parser, checked in-process and with ffmpeg/ffprobe.
#include "play_support.hpp"
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/wire/wav.hpp>
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstring>
#include <fstream>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;
using test::TempDir;

namespace {

using test::play;

Status build(const std::string& pipeline) {
    Graph g;
    return nodes::build_pipeline(g, pipeline);
}

std::vector<unsigned char> bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

// What ffprobe says of a file's audio stream: "codec rate channels".
std::string audio_stream_of(const std::string& path) {
    return test::probe(path, "a:0", "codec_name") + " " + test::probe(path, "a:0", "sample_rate") + " " +
           test::probe(path, "a:0", "channels");
}

// Plays `pipeline` into the WAV file `wav`, checks what ffprobe says of its audio stream ("codec
// rate channels", as audio_stream_of), and returns ffmpeg's decode of its first channel.
std::vector<float> play_to_wav(const std::string& pipeline, const std::string& wav, const std::string& stream) {
    play(pipeline + " ! wavsink path=" + wav);
    CHECK(audio_stream_of(wav) == stream);
    return test::decode_mono(wav);
}

void write_bytes(const std::string& path, const std::vector<unsigned char>& b) {
    std::ofstream(path, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
}

}  // namespace

TEST_CASE("Tone.Wav.FrequencyAndHeaderCheckedByFfmpeg") {
    TempDir dir;
    // 1024-frame buffers at 48 kHz: 94 buffers are 2.005 s.
    const auto samples = play_to_wav("tone freq=440 amplitude=0.5 num-buffers=94 ! gain db=-6", dir / "a.wav", "pcm_s16le 48000 2");
    CHECK(samples.size() == 94 * 1024);
    const double f = test::dominant_frequency(samples, 48000);
    CHECK(f == doctest::Approx(440).epsilon(1.0 / 440));
    // -6 dB of 0.5: a peak near 0.25.
    float peak = 0;
    for (float v : samples) peak = std::max(peak, std::abs(v));
    CHECK(peak == doctest::Approx(0.5 * std::pow(10, -6 / 20.0)).epsilon(0.01));
}

TEST_CASE("Tone.Wav.FloatFormatAndOtherRates") {
    TempDir dir;
    const std::string wav = dir / "f.wav";
    const auto samples = play_to_wav("tone freq=1000 rate=44100 channels=1 format=f32 frames=441 num-buffers=100", wav, "pcm_f32le 44100 1");
    CHECK(samples.size() == 44100);
    CHECK(test::dominant_frequency(samples, 44100) == doctest::Approx(1000).epsilon(1.0 / 1000));
    CHECK(test::run("sox " + test::quote(wav) + " -n stat").exit_code == 0);  // sox reads it too
}

TEST_CASE("Wav.RoundTrip.WavsrcReadsWhatWavsinkWrote") {
    TempDir dir;
    play("noise seed=7 format=s16 num-buffers=20 ! wavsink path=" + (dir / "a.wav"));
    play("wavsrc path=" + (dir / "a.wav") + " frames=300 ! wavsink path=" + (dir / "b.wav"));
    CHECK(bytes_of(dir / "a.wav") == bytes_of(dir / "b.wav"));
    play("wavsrc path=" + (dir / "a.wav") + " ! audioconvert format=f32 ! audioconvert format=s16 ! wavsink path=" + (dir / "c.wav"));
    CHECK(bytes_of(dir / "a.wav") == bytes_of(dir / "c.wav"));  // s16 -> f32 -> s16 is exact
    // A file made by an independent writer (sox) reads back the same samples.
    REQUIRE(test::run("sox -n -r 22050 -c 1 -b 16 " + test::quote(dir / "sox.wav") + " synth 0.5 sine 300").exit_code == 0);
    play("wavsrc path=" + (dir / "sox.wav") + " ! wavsink path=" + (dir / "copy.wav"));
    CHECK(test::decode_mono(dir / "sox.wav") == test::decode_mono(dir / "copy.wav"));
}

TEST_CASE("Wav.Parser.RejectsCorruptAndLyingFiles") {
    TempDir dir;
    play("tone num-buffers=2 channels=1 ! wavsink path=" + (dir / "good.wav"));
    const auto good = bytes_of(dir / "good.wav");
    // RIFF header, a 36-byte JUNK chunk (room for RF64's ds64), fmt, data.
    REQUIRE(good.size() == 44 + 36 + 2 * 1024 * 2);
    auto expect_error = [&](const std::vector<unsigned char>& file, const std::string& needle) {
        write_bytes(dir / "bad.wav", file);
        Status st = build("wavsrc path=" + (dir / "bad.wav") + " ! nullsink");
        CAPTURE(needle);
        REQUIRE_FALSE(st);
        CHECK(st.message().find(dir / "bad.wav") != std::string::npos);
        CHECK(st.message().find(needle) != std::string::npos);
    };
    auto lying = good;
    lying[76] = 0x00, lying[77] = 0x00, lying[78] = 0x10, lying[79] = 0x00;  // claims 1 MiB of data
    expect_error(lying, "byte 76: 'data' chunk claims 1048576 bytes but only 4096 remain");
    expect_error({good.begin(), good.begin() + 10}, "byte 10: file too short");
    auto magic = good;
    magic[0] = 'X';
    expect_error(magic, "byte 0: not a RIFF or RF64 file");
    auto bits = good;
    bits[70] = 20;  // 20-bit PCM in 2-byte blocks
    expect_error(bits, "unsupported sample format");
    auto no_data = std::vector<unsigned char>(good.begin(), good.begin() + 72);
    no_data[4] = 64;
    expect_error(no_data, "no 'data' chunk");
    auto huge_fmt = good;
    huge_fmt[52] = 0xFF, huge_fmt[53] = 0xFF, huge_fmt[54] = 0xFF, huge_fmt[55] = 0x7F;
    expect_error(huge_fmt, "byte");
    Status missing = build("wavsrc path=" + (dir / "nope.wav") + " ! nullsink");
    CHECK(missing.message().find("nope.wav: cannot open: No such file or directory") != std::string::npos);
    // Every prefix of a good file is refused or read within bounds; never a crash.
    for (std::size_t n = 0; n < 96; ++n) {
        std::string error;
        auto r = wire::parse_wav_header({good.data(), n}, n, error);
        if (r) CHECK(r->data_offset + r->data_bytes <= n);
        else CHECK(error.rfind("byte ", 0) == 0);
    }
}

TEST_CASE("Mix.TwoTones.BothFrequenciesPresent" * doctest::timeout(60)) {
    TempDir dir;
    const std::string wav = dir / "chord.wav";
    play("tone freq=440 amplitude=0.3 num-buffers=50 ! m.  tone freq=660 amplitude=0.3 num-buffers=80 ! m.  "
         "mix name=m ! wavsink path=" + wav);
    const auto samples = test::decode_mono(wav);
    // The longer input goes on alone (the other counts as silence) until its end.
    CHECK(samples.size() == 80 * 1024);
    const std::vector<float> both(samples.begin(), samples.begin() + 48000);
    const double f1 = test::dominant_frequency(both, 48000, 400, 500);
    const double f2 = test::dominant_frequency(both, 48000, 600, 700);
    CHECK(f1 == doctest::Approx(440).epsilon(0.003));
    CHECK(f2 == doctest::Approx(660).epsilon(0.003));
    const std::vector<float> tail(samples.end() - 20000, samples.end());
    CHECK(test::dominant_frequency(tail, 48000, 300, 800) == doctest::Approx(660).epsilon(0.003));
}

TEST_CASE("Mix.Stop.WhileInputsWaitOnEachOther" * doctest::timeout(60)) {
    for (int i = 0; i < 50; ++i) {
        Graph g;
        REQUIRE(nodes::build_pipeline(g, "tone ! m.  noise ! m.  mix name=m ! gain db=-3 ! nullsink"));
        REQUIRE(g.run());
        std::this_thread::sleep_for(std::chrono::milliseconds(i % 5));
        if (i % 3 == 0) CHECK(g.flush());
        REQUIRE(g.stop());
        for (const auto& p : g.stats().pools) CHECK(p.stats.outstanding == 0);
    }
}

TEST_CASE("Tee.Shares.OneBufferForEveryBranch") {
    Graph g;
    REQUIRE(nodes::build_pipeline(g, "tone num-buffers=10 ! tee name=t  t. ! nullsink  t. ! nullsink  t. ! gain db=-1 ! nullsink"));
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(10s));
    REQUIRE(g.stop());
    const auto stats = g.stats();
    for (const auto& n : stats.nodes)
        if (n.name.rfind("nullsink", 0) == 0) CHECK(n.stats.samples_in == 10);
    for (const auto& p : stats.pools)
        if (p.pin == "tone0.src") CHECK(p.stats.gets == 10);  // zero copy: one buffer per sample
}

TEST_CASE("Pipeline.Errors.PointAtTheWord") {
    CHECK(build("tonee freq=440").message() == "unknown node 'tonee' at character 1 ('tonee')");
    CHECK(build("tone fre=440 ! nullsink").message().find("tone0: tone has no property 'fre'") == 0);
    CHECK(build("tone freq=abc ! nullsink").message().find("tone0: property freq='abc' is not a number") == 0);
    CHECK(build("tone amplitude=2 ! nullsink").message().find("out of range") != std::string::npos);
    CHECK(build("! tone").message() == "'!' with nothing to link from at character 1 ('!')");
    CHECK(build("tone !").message() == "'!' with nothing to link to at character 6 ('!')");
    CHECK(build("tone ! ! nullsink").message() == "two '!' in a row at character 8 ('!')");
    CHECK(build("freq=440").message() == "property 'freq=440' does not follow a node at character 1 ('freq=440')");
    CHECK(build("tone ! x.").message() == "no node named 'x' at character 8 ('x.')");
    CHECK(build("tone name=a ! nullsink name=a").message().find("two nodes are named 'a'") != std::string::npos);
    CHECK(build("tone path=\"unterminated").message().find("unterminated quote") != std::string::npos);
    CHECK(build("").message() == "empty pipeline");
    CHECK(build("tone").message() == "pin tone0.src is not linked");
    CHECK(build("tone ! y4msink path=/tmp/x.y4m").message().find("cannot link tone0.src to y4msink0.sink") !=
          std::string::npos);
    CHECK(build("tone ! nullsink").ok());
    // Found by fuzz_pipeline: a mix (or tee) whose request pins were never asked for.
    CHECK(build("tone ! tee mix name=m ! nullsink").message().find("tee0 has nothing linked to its output") == 0);
    CHECK(build("tone ! nullsink mix name=m ! nullsink").message().find("m has nothing linked to its input") == 0);
    CHECK(build("tone ! nullsink ! nullsink").message().find("nullsink0 has no outputs") != std::string::npos);
    CHECK(build(std::string(2 << 20, 'a')).message() == "pipeline longer than 1 MiB");
}

// SPDX-License-Identifier: MIT
// 24- and 32-bit samples and channel mixing (issue #13), each checked against an independent
// reader or writer: files made and decoded by the ffmpeg CLI, probed by ffprobe and sox.
#include "../support.hpp"

#include <doctest/doctest.h>
#include <sluice/sluice.hpp>

#include <chrono>
#include <cstring>
#include <fstream>

using namespace std::chrono_literals;
using namespace sluice;
using namespace sluice::engine;
using test::quote;
using test::TempDir;

namespace {

// Builds, runs to end of stream and stops a pipeline; fails the test on any error.
void play(const std::string& pipeline) {
    Graph g;
    Status st = nodes::build_pipeline(g, pipeline);
    INFO(pipeline);
    REQUIRE_MESSAGE(st.ok(), st.message());
    REQUIRE(g.run());
    REQUIRE(g.wait_until_ended(60s));
    REQUIRE(g.stop());
    while (auto e = g.poll_event()) CHECK_MESSAGE(e->type != Event::Type::error, e->message);
}

// Makes a fixture with the ffmpeg CLI; fails the test if ffmpeg cannot.
void make_fixture(const std::string& inputs_and_options, const std::string& path) {
    auto r = test::run("ffmpeg -v error -y " + inputs_and_options + " " + quote(path));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
}

// ffmpeg's own decode of the file's audio as raw samples, e.g. raw(path, "s32le").
std::string ffmpeg_raw(const std::string& path, const std::string& format, const std::string& extra = "") {
    auto r = test::run("ffmpeg -v error -i " + quote(path) + " -map 0:a:0 " + extra + " -f " + format + " - 2>/dev/null");
    REQUIRE(r.exit_code == 0);
    return r.output;
}

template <class T>
std::vector<T> as(const std::string& bytes) {
    std::vector<T> v(bytes.size() / sizeof(T));
    std::memcpy(v.data(), bytes.data(), v.size() * sizeof(T));
    return v;
}

// Six different tones in a 5.1 layout (FL FR FC LFE BL BR), one second at 48 kHz.
const std::string kSixTones =
    "-f lavfi -i 'aevalsrc=exprs=0.5*sin(2*PI*300*t)|0.4*sin(2*PI*500*t)|0.3*sin(2*PI*700*t)|"
    "0.6*sin(2*PI*60*t)|0.25*sin(2*PI*1100*t)|0.35*sin(2*PI*1300*t):c=5.1:s=48000:d=1'";
const std::string kStereoTones =
    "-f lavfi -i 'aevalsrc=exprs=0.7*sin(2*PI*440*t)|0.6*sin(2*PI*660*t+1):c=stereo:s=48000:d=1'";

}  // namespace

TEST_CASE("SampleFormat.Names.ParsedAsWritten") {
    for (SampleFormat f : {SampleFormat::s16, SampleFormat::s24, SampleFormat::s32, SampleFormat::f32})
        CHECK(sample_format_from_string(to_string(f)) == f);
    CHECK(bytes_per_sample(SampleFormat::s24) == 3);
    CHECK(bytes_per_sample(SampleFormat::s32) == 4);
    CHECK(MediaFormat::audio(48000, 6, SampleFormat::s24).frame_bytes() == 18);
    CHECK_FALSE(sample_format_from_string("s8"));
    CHECK_FALSE(sample_format_from_string("S24"));
}

// Mono to stereo copies; stereo to mono averages (rounded half away from zero, as f32 -> s16).
TEST_CASE("AudioConvert.Channels.MonoToStereoAndBack") {
    TempDir dir;
    play("noise seed=9 channels=1 num-buffers=10 ! wavsink path=" + (dir / "mono.wav"));
    play("wavsrc path=" + (dir / "mono.wav") + " ! audioconvert channels=2 ! wavsink path=" + (dir / "stereo.wav"));
    CHECK(test::probe(dir / "stereo.wav", "a:0", "channels") == "2");
    const auto mono = as<std::int16_t>(ffmpeg_raw(dir / "mono.wav", "s16le"));
    const auto stereo = as<std::int16_t>(ffmpeg_raw(dir / "stereo.wav", "s16le"));
    REQUIRE(stereo.size() == 2 * mono.size());
    bool copied = true;
    for (std::size_t i = 0; i < mono.size(); ++i) copied = copied && stereo[2 * i] == mono[i] && stereo[2 * i + 1] == mono[i];
    CHECK(copied);

    make_fixture(kStereoTones + " -c:a pcm_s16le", dir / "two.wav");
    play("wavsrc path=" + (dir / "two.wav") + " ! audioconvert channels=1 ! wavsink path=" + (dir / "down.wav"));
    CHECK(test::probe(dir / "down.wav", "a:0", "channels") == "1");
    const auto two = as<std::int16_t>(ffmpeg_raw(dir / "two.wav", "s16le"));
    const auto down = as<std::int16_t>(ffmpeg_raw(dir / "down.wav", "s16le"));
    REQUIRE(down.size() == 48000);
    REQUIRE(two.size() == 2 * down.size());
    int wrong = 0;
    for (std::size_t i = 0; i < down.size(); ++i) {
        const int sum = two[2 * i] + two[2 * i + 1];  // the average is sum / 2, rounded half away from zero
        const int expected = sum >= 0 ? (sum + 1) / 2 : -((-sum + 1) / 2);
        wrong += down[i] != expected;
    }
    CHECK(wrong == 0);
    // Format and channels in one node; a count with no sensible matrix is refused by name.
    play("wavsrc path=" + (dir / "mono.wav") + " ! audioconvert format=f32 channels=2 ! wavsink path=" + (dir / "f.wav"));
    CHECK(test::probe(dir / "f.wav", "a:0", "codec_name") == "pcm_f32le");
    CHECK(test::probe(dir / "f.wav", "a:0", "channels") == "2");
    Graph g;
    const Status st = nodes::build_pipeline(g, "tone channels=4 ! audioconvert channels=3 ! nullsink");
    CHECK(st.message().find("no channel mix from 4 to 3 channels") != std::string::npos);
}

// The format advisor names audioconvert for a channel count, with the format in the same node.
TEST_CASE("AudioConvert.Advice.ChannelCountsNameIt") {
    CHECK(nodes::converter_advice(MediaFormat::audio(48000, 2, SampleFormat::s16), {MediaFormat::audio(0, 1)}) ==
          "put 'audioconvert channels=1' between them");
    CHECK(nodes::converter_advice(MediaFormat::audio(48000, 6, SampleFormat::s16), {MediaFormat::audio(44100, 2, SampleFormat::s24)}) ==
          "put 'audioresample rate=44100 ! audioconvert format=s24 channels=2' between them");
    Graph g;
    const Status st = nodes::build_pipeline(g, "tone channels=1 num-buffers=1 ! m.  tone num-buffers=1 ! m.  mix name=m ! nullsink");
    CHECK(st.message().find("(put 'audioconvert channels=1' before it)") != std::string::npos);
    // Following the advice works.
    play("tone channels=1 num-buffers=1 ! m.  tone num-buffers=1 ! audioconvert channels=1 ! m.  mix name=m ! nullsink");
}

// 5.1 to stereo against ffmpeg's own `-ac 2` of the same file (swresample, ITU-R BS.775 weights,
// normalised for an integer output).
TEST_CASE("AudioConvert.Downmix.FiveOneToStereoAsFfmpeg") {
    TempDir dir;
    make_fixture(kSixTones + " -c:a pcm_s16le", dir / "six.wav");
    REQUIRE(test::probe(dir / "six.wav", "a:0", "channels") == "6");
    make_fixture("-i " + quote(dir / "six.wav") + " -ac 2 -c:a pcm_s16le", dir / "theirs.wav");
    play("wavsrc path=" + (dir / "six.wav") + " ! audioconvert channels=2 ! wavsink path=" + (dir / "ours.wav"));
    const auto ours = as<std::int16_t>(ffmpeg_raw(dir / "ours.wav", "s16le"));
    const auto theirs = as<std::int16_t>(ffmpeg_raw(dir / "theirs.wav", "s16le"));
    REQUIRE(theirs.size() == 2 * 48000);
    REQUIRE(ours.size() == theirs.size());
    int worst = 0, peak = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) {
        worst = std::max(worst, std::abs(ours[i] - theirs[i]));
        peak = std::max(peak, std::abs(int(theirs[i])));
    }
    MESSAGE("5.1 -> stereo: worst difference from ffmpeg -ac 2: " << worst << " LSB (peak " << peak << ")");
    CHECK(peak > 5000);  // a real signal, not silence
    CHECK(worst <= 1);
    // To mono: the average of that stereo pair, within rounding.
    play("wavsrc path=" + (dir / "six.wav") + " ! audioconvert channels=1 format=f32 ! wavsink path=" + (dir / "mono.wav"));
    const auto mono = as<float>(ffmpeg_raw(dir / "mono.wav", "f32le"));
    REQUIRE(mono.size() == 48000);
    double worst_mono = 0;
    for (std::size_t i = 0; i < mono.size(); ++i)
        worst_mono = std::max(worst_mono, std::abs(mono[i] - (theirs[2 * i] + theirs[2 * i + 1]) / 65536.0));
    CHECK(worst_mono < 2.0 / 32768);
}

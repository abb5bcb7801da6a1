// SPDX-License-Identifier: MIT
// 24- and 32-bit samples, channel mixing and WAV's EXTENSIBLE and RF64 forms (issue #13), each
// checked against an independent reader or writer: files made and decoded by the ffmpeg CLI,
// probed by ffprobe and sox.
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
using test::quote;
using test::TempDir;

namespace {

using test::play;

std::string bytes_of(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
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

// s16 -> s24 -> s32 -> f32 -> s16 is exact (each step is a shift or fits a float's mantissa),
// and so is s24 -> s32 -> f32 -> s24; widening is a shift, as ffmpeg's own conversion.
TEST_CASE("AudioConvert.Formats.RoundTripExactWhereLossless") {
    TempDir dir;
    play("noise seed=3 format=s16 num-buffers=20 ! wavsink path=" + (dir / "a.wav"));
    play("wavsrc path=" + (dir / "a.wav") +
         " ! audioconvert format=s24 ! audioconvert format=s32 ! audioconvert format=f32 ! audioconvert format=s16 ! wavsink path=" +
         (dir / "b.wav"));
    CHECK(bytes_of(dir / "a.wav") == bytes_of(dir / "b.wav"));
    // Widening: our s24 and s32 files hold what ffmpeg makes of the s16 samples.
    play("wavsrc path=" + (dir / "a.wav") + " ! audioconvert format=s24 ! wavsink path=" + (dir / "a24.wav"));
    play("wavsrc path=" + (dir / "a.wav") + " ! audioconvert format=s32 ! wavsink path=" + (dir / "a32.wav"));
    CHECK(test::probe(dir / "a24.wav", "a:0", "codec_name") == "pcm_s24le");
    CHECK(test::probe(dir / "a32.wav", "a:0", "codec_name") == "pcm_s32le");
    const std::string reference = ffmpeg_raw(dir / "a.wav", "s32le");
    REQUIRE(reference.size() == 20 * 1024 * 2 * 4);
    CHECK((ffmpeg_raw(dir / "a24.wav", "s32le") == reference));
    CHECK((ffmpeg_raw(dir / "a32.wav", "s32le") == reference));
    // Full 24-bit samples survive s32 and f32.
    play("noise seed=5 format=s24 num-buffers=20 ! wavsink path=" + (dir / "n24.wav"));
    play("wavsrc path=" + (dir / "n24.wav") +
         " ! audioconvert format=s32 ! audioconvert format=f32 ! audioconvert format=s24 ! wavsink path=" + (dir / "n24b.wav"));
    CHECK(bytes_of(dir / "n24.wav") == bytes_of(dir / "n24b.wav"));
    // Float to integer clamps: +6 dB of a full-scale float tone reaches both ends and stops.
    play("tone amplitude=1 format=f32 num-buffers=5 ! gain db=6 ! audioconvert format=s24 ! wavsink path=" + (dir / "clip.wav"));
    const auto clipped = as<std::int32_t>(ffmpeg_raw(dir / "clip.wav", "s32le"));
    REQUIRE(!clipped.empty());
    CHECK(*std::max_element(clipped.begin(), clipped.end()) == 0x7FFFFF00);
    CHECK(*std::min_element(clipped.begin(), clipped.end()) == -0x80000000LL);
    // Unknown names are refused with the property named.
    Graph g;
    CHECK(nodes::build_pipeline(g, "tone ! audioconvert format=s8 ! nullsink").message().find("format='s8'") != std::string::npos);
    Graph g2;
    CHECK(nodes::build_pipeline(g2, "tone ! audioconvert channels=x ! nullsink").message().find("channels='x'") != std::string::npos);
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

// Files ffmpeg writes (24- and 32-bit PCM; 6 channels, which it writes as WAVE_FORMAT_EXTENSIBLE)
// read by wavsrc give exactly ffmpeg's own decode.
TEST_CASE("Wav.Read.FfmpegFilesOf24And32BitsAndSixChannels") {
    TempDir dir;
    struct Case {
        const char* name;
        const std::string& tones;  // the ffmpeg input, encoded with `codec`
        const char* codec;
        const char* raw;  // the raw format both decodes are compared in
    };
    const std::vector<Case> cases = {
        {"s24.wav", kStereoTones, "pcm_s24le", "s32le"},
        {"s32.wav", kStereoTones, "pcm_s32le", "s32le"},
        {"six16.wav", kSixTones, "pcm_s16le", "s16le"},
        {"six24.wav", kSixTones, "pcm_s24le", "s32le"},
        {"six32.wav", kSixTones, "pcm_s32le", "s32le"},
        {"sixf.wav", kSixTones, "pcm_f32le", "f32le"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string in = dir / c.name, out = dir / (std::string("out-") + c.name);
        make_fixture(c.tones + " -c:a " + c.codec, in);
        play("wavsrc path=" + in + " ! wavsink path=" + out);
        CHECK(test::probe(out, "a:0", "codec_name") == c.codec);
        CHECK(test::probe(out, "a:0", "channels") == test::probe(in, "a:0", "channels"));
        const std::string theirs = ffmpeg_raw(in, c.raw);
        CHECK(theirs.size() >= 48000 * 2 * 2);
        CHECK((ffmpeg_raw(out, c.raw) == theirs));
    }
    // The 6-channel files are EXTENSIBLE (tag 0xFFFE), which the parser reports with their mask.
    const std::string six = bytes_of(dir / "six24.wav");
    std::string error;
    auto info = wire::parse_wav_header({reinterpret_cast<const unsigned char*>(six.data()), six.size()}, six.size(), error);
    REQUIRE_MESSAGE(info, error);
    CHECK(info->format == SampleFormat::s24);
    CHECK(info->channels == 6);
    CHECK(info->channel_mask == 0x3F);  // 5.1
}

// What wavsink writes in the new formats, read by ffprobe and sox: codec, channels, length, and
// the samples (ffmpeg's decode of the s24 file matches the f32 tone within 24-bit rounding).
TEST_CASE("Wav.Write.TwentyFourThirtyTwoAndSixChannelsReadByFfprobeAndSox") {
    TempDir dir;
    struct Case {
        const char* name;
        std::string props;
        const char* codec;
        const char* channels;
        const char* sox_encoding;
    };
    const std::vector<Case> cases = {
        {"s24.wav", "format=s24", "pcm_s24le", "2", "24-bit Signed Integer PCM"},
        {"s32.wav", "format=s32", "pcm_s32le", "2", "32-bit Signed Integer PCM"},
        {"six.wav", "channels=6", "pcm_s16le", "6", "16-bit Signed Integer PCM"},
        {"six24.wav", "channels=6 format=s24", "pcm_s24le", "6", "24-bit Signed Integer PCM"},
        {"sixf.wav", "channels=6 format=f32", "pcm_f32le", "6", "32-bit Floating Point PCM"},
    };
    const bool have_sox = test::run("which sox").exit_code == 0;
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string wav = dir / c.name;
        play("tone num-buffers=47 " + c.props + " ! wavsink path=" + wav);
        CHECK(test::probe(wav, "a:0", "codec_name") == c.codec);
        CHECK(test::probe(wav, "a:0", "channels") == c.channels);
        CHECK(test::probe(wav, "a:0", "duration_ts") == "48128");
        if (std::string(c.channels) == "6") CHECK(test::probe(wav, "a:0", "channel_layout") == "5.1");
        if (have_sox) {
            const auto info = test::run("sox --i " + quote(wav));
            CHECK(info.exit_code == 0);
            CHECK(info.output.find(std::string("Channels       : ") + c.channels) != std::string::npos);
            CHECK(info.output.find(std::string("Sample Encoding: ") + c.sox_encoding) != std::string::npos);
            CHECK(info.output.find("48128 samples") != std::string::npos);
        }
    }
    play("tone num-buffers=47 format=f32 ! wavsink path=" + (dir / "f32.wav"));
    const auto reference = as<float>(ffmpeg_raw(dir / "f32.wav", "f32le"));
    const auto s24 = as<float>(ffmpeg_raw(dir / "s24.wav", "f32le"));
    REQUIRE(s24.size() == reference.size());
    double worst = 0;
    for (std::size_t i = 0; i < s24.size(); ++i) worst = std::max(worst, double(std::abs(s24[i] - reference[i])));
    CHECK(worst <= 0.5 / 8388608 + 1e-9);
    // 16-bit mono and stereo keep the plain 'fmt ' chunk (tag 1), byte for byte as before.
    play("tone num-buffers=1 ! wavsink path=" + (dir / "plain.wav"));
    CHECK(bytes_of(dir / "plain.wav").substr(56, 2) == std::string("\x01\x00", 2));
}

// RF64 (EBU Tech 3306) from the start, read back by ffprobe and wavsrc; and ffmpeg's own RF64.
TEST_CASE("Wav.Rf64.AlwaysReadByFfprobeAndWavsrc") {
    TempDir dir;
    play("noise seed=4 num-buffers=10 ! wavsink rf64=always path=" + (dir / "r.wav"));
    CHECK(bytes_of(dir / "r.wav").substr(0, 4) == "RF64");
    CHECK(test::probe(dir / "r.wav", "a:0", "duration_ts") == "10240");
    play("noise seed=4 num-buffers=10 ! wavsink path=" + (dir / "plain.wav"));
    play("wavsrc path=" + (dir / "r.wav") + " ! wavsink path=" + (dir / "back.wav"));
    CHECK(bytes_of(dir / "back.wav") == bytes_of(dir / "plain.wav"));
    CHECK((ffmpeg_raw(dir / "r.wav", "s16le") == ffmpeg_raw(dir / "plain.wav", "s16le")));
    // ffmpeg's RF64 (its ds64 chunk, then 24-bit samples).
    make_fixture(kStereoTones + " -c:a pcm_s24le -rf64 always", dir / "ff.wav");
    REQUIRE(bytes_of(dir / "ff.wav").substr(0, 4) == "RF64");
    play("wavsrc path=" + (dir / "ff.wav") + " ! wavsink path=" + (dir / "ff-back.wav"));
    CHECK((ffmpeg_raw(dir / "ff-back.wav", "s32le") == ffmpeg_raw(dir / "ff.wav", "s32le")));
    // rf64=never to a device: the recording stops where RIFF's sizes end, with an error that says
    // what to do (4 GiB of 8-channel float at 384 kHz, thrown away).
    Graph g;
    REQUIRE(nodes::build_pipeline(g, "tone format=f32 channels=8 rate=384000 frames=65536 num-buffers=2100 ! "
                                     "wavsink rf64=never path=/dev/null"));
    REQUIRE(g.run());
    bool said = false;
    CHECK(test::eventually(
        [&] {
            while (auto e = g.poll_event())
                said = said || (e->type == Event::Type::error && e->message.find("/dev/null: the audio passes 4 GiB") != std::string::npos &&
                                e->message.find("use rf64=auto") != std::string::npos);
            return said;
        },
        120s));
    (void)g.stop();
}

// SPDX-License-Identifier: MIT
// avsrc against real media files (issue #13): fixtures made at test time by the ffmpeg CLI, decoded
// by sluice-play and by ffmpeg itself, compared sample by sample (audio within 1 LSB) and byte
// by byte (video). Bad files get one line and exit 2; stopping while the pools are full is quick.
#include "../support.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <thread>

#include <numbers>

#include <nlohmann/json.hpp>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

using test::quote;
using test::run;

const std::string kPlayer = SLUICE_PLAY_PATH;

test::CommandResult play(const std::string& args) { return run(kPlayer + " -q " + args); }

// Raw bytes ffmpeg writes for `args` (its own decode), e.g. "-f s16le" or "-f rawvideo -pix_fmt yuv420p".
std::string ffmpeg_decode(const std::string& path, const std::string& map, const std::string& args) {
    auto r = run("ffmpeg -v error -i " + quote(path) + " -map " + map + " -vsync passthrough " + args + " - 2>/dev/null");
    REQUIRE(r.exit_code == 0);
    return r.output;
}

// Makes a fixture with the ffmpeg CLI; fails the test if ffmpeg cannot.
void make_fixture(const std::string& inputs_and_options, const std::string& path) {
    auto r = run("ffmpeg -v error -y " + inputs_and_options + " " + quote(path) + " 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
}

const std::string kSine = "-f lavfi -i sine=frequency=440:sample_rate=48000:duration=1.5";
const std::string kTestsrc = "-f lavfi -i testsrc=size=320x240:rate=25:duration=2";

// Interleaved s16 samples of a byte string.
std::vector<std::int16_t> as_s16(const std::string& bytes) {
    std::vector<std::int16_t> v(bytes.size() / 2);
    std::memcpy(v.data(), bytes.data(), v.size() * 2);
    return v;
}

// Decodes `file`'s audio with avsrc into a WAV, and both that WAV and `file` with ffmpeg to s16;
// the two must agree within 1 LSB, sample for sample, and have the same length.
void check_audio_matches_ffmpeg(const std::string& file, const std::string& wav, int channels) {
    auto r = play("'avsrc path=" + file + " ! wavsink path=" + wav + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const auto ours = as_s16(ffmpeg_decode(wav, "0:a:0", "-f s16le"));
    const auto theirs = as_s16(ffmpeg_decode(file, "0:a:0", "-f s16le"));
    REQUIRE(theirs.size() > 1000);
    CHECK(ours.size() == theirs.size());
    CHECK(std::stoi(test::probe(wav, "a:0", "channels")) == channels);
    int worst = 0;
    for (std::size_t i = 0; i < std::min(ours.size(), theirs.size()); ++i) worst = std::max(worst, std::abs(ours[i] - theirs[i]));
    CHECK(worst <= 1);
}

// The pictures of a Y4M file, without its header and FRAME lines.
std::string y4m_pictures(const std::string& path, std::size_t picture_bytes) {
    std::ifstream in(path, std::ios::binary);
    std::string all((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::string out;
    std::size_t pos = all.find('\n');
    REQUIRE(pos != std::string::npos);
    ++pos;
    while (pos < all.size()) {
        const std::size_t eol = all.find('\n', pos);
        REQUIRE(eol != std::string::npos);
        REQUIRE(all.compare(pos, 5, "FRAME") == 0);
        pos = eol + 1;
        REQUIRE(pos + picture_bytes <= all.size());
        out.append(all, pos, picture_bytes);
        pos += picture_bytes;
    }
    return out;
}

// Decodes `file` to a Y4M twice: straight into the pool (y4msink reads the decoder's padded
// pictures: no copy), and packed (a caps filter asks for packed I420: one copy a picture). Both
// must be ffmpeg's own decode, byte for byte.
void check_video_matches_ffmpeg(const std::string& file, const std::string& y4m, int frames) {
    const std::size_t picture = 320 * 240 * 3 / 2;
    const std::string theirs = ffmpeg_decode(file, "0:v:0", "-f rawvideo -pix_fmt yuv420p");
    CHECK(theirs.size() == std::size_t(frames) * picture);
    for (const bool packed : {false, true}) {
        CAPTURE(packed);
        const std::string stats = y4m + ".json";
        auto r = play("--stats-json " + quote(stats) + " 'avsrc path=" + file + (packed ? " ! video/x-raw,format=i420" : "") +
                      " ! y4msink path=" + y4m + "'");
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        const std::string ours = y4m_pictures(y4m, picture);
        CHECK(ours.size() == std::size_t(frames) * picture);
        CHECK((ours == theirs));
        std::ifstream in(stats);
        const auto node = nlohmann::json::parse(in)["nodes"]["avsrc0"];
        CHECK(node["samples_out"].get<std::uint64_t>() == std::uint64_t(frames));
        CHECK(node["copies"].get<std::uint64_t>() == (packed ? std::uint64_t(frames) : 0));
    }
}

}  // namespace

TEST_CASE("AvSrc.Audio.LossyAndLosslessFilesDecodeAsFfmpegDecodesThem" * doctest::timeout(180)) {
    test::TempDir dir;
    struct Case {
        const char* name;
        std::string options;
        int channels;
    };
    const std::vector<Case> cases = {
        {"a.mp3", kSine + " -c:a libmp3lame -b:a 128k", 1},
        {"a.m4a", kSine + " -c:a aac -b:a 128k", 1},
        {"a.opus", kSine + " -c:a libopus -b:a 96k", 1},
        {"a.ogg", kSine + " -c:a libvorbis -q:a 4", 1},
        {"a.flac", kSine + " -c:a flac", 1},
        {"a24.wav", kSine + " -c:a pcm_s24le", 1},
        {"six.wav", kSine + " -af 'pan=5.1|c0=c0|c1=c0|c2=c0|c3=c0|c4=c0|c5=c0' -c:a pcm_s16le", 6},
        {"rf64.wav", kSine + " -c:a pcm_s16le -rf64 always", 1},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string file = dir.path() + "/" + c.name;
        make_fixture(c.options, file);
        check_audio_matches_ffmpeg(file, dir.path() + "/" + c.name + ".out.wav", c.channels);
    }
}

TEST_CASE("AvSrc.Video.CodecsDecodeByteExactAsFfmpegDecodesThem" * doctest::timeout(240)) {
    test::TempDir dir;
    struct Case {
        const char* name;
        std::string options;
    };
    const std::vector<Case> cases = {
        {"v.mp4", kTestsrc + " -c:v libx264 -pix_fmt yuv420p -preset veryfast"},
        {"v.webm", kTestsrc + " -c:v libvpx-vp9 -pix_fmt yuv420p -deadline realtime -cpu-used 8"},
        {"v.avi", kTestsrc + " -c:v mpeg4 -q:v 3"},
        {"v.mkv", kTestsrc + " -c:v ffv1 -pix_fmt yuv420p"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.name);
        const std::string file = dir.path() + "/" + c.name;
        make_fixture(c.options, file);
        check_video_matches_ffmpeg(file, dir.path() + "/" + c.name + ".y4m", 50);
    }
}

// Pins by name: one file, its audio to a WAV and its video to a Y4M; a source with only one
// linked output needs no pin name, and `name.` alone picks the pin whose media fits.
TEST_CASE("AvSrc.Pins.ByNameAndByMedia" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/movie.mp4";
    make_fixture(kTestsrc + " " + kSine + " -c:v libx264 -pix_fmt yuv420p -preset veryfast -c:a aac -shortest", movie);
    const std::string wav = dir.path() + "/a.wav", y4m = dir.path() + "/v.y4m";

    auto r = play("'avsrc path=" + movie + " name=d  d.audio ! wavsink path=" + wav + "  d.video ! y4msink path=" + y4m + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(std::stod(test::probe(wav, "a:0", "duration")) == doctest::Approx(1.5).epsilon(0.05));
    CHECK(test::probe(y4m, "v:0", "nb_read_frames") == test::probe(movie, "v:0", "nb_read_frames"));

    // One linked output, no pin name: the render's media picks the pin.
    std::remove(y4m.c_str());
    r = play("'avsrc path=" + movie + " ! y4msink path=" + y4m + "'");
    CHECK(r.exit_code == 0);
    CHECK(test::probe(y4m, "v:0", "codec_name") == "rawvideo");
    std::remove(wav.c_str());
    r = play("'avsrc path=" + movie + " ! wavsink path=" + wav + "'");
    CHECK(r.exit_code == 0);
    CHECK(test::probe(wav, "a:0", "codec_name") == "pcm_f32le");  // AAC decodes to float; wavsink takes it as it is

    // A pin that does not exist: one line naming the pins there are.
    r = play("'avsrc path=" + movie + " name=d  d.subtitles ! nullsink'");
    test::check_exit_two_saying(r, "no output named 'subtitles' (its outputs: audio, video)");
}

TEST_CASE("AvSrc.Start.SeeksAndMediaTimeStartsThere" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string flac = dir.path() + "/a.flac", wav = dir.path() + "/a.wav";
    make_fixture(kSine + " -c:a flac", flac);
    auto r = play("'avsrc path=" + flac + " start=1 ! wavsink path=" + wav + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    // The last 0.5 s, sample for sample: what ffmpeg decodes from 1 s on.
    const auto ours = as_s16(ffmpeg_decode(wav, "0:a:0", "-f s16le"));
    const auto all = as_s16(ffmpeg_decode(flac, "0:a:0", "-f s16le"));
    REQUIRE(all.size() == 72000);
    REQUIRE(ours.size() == 24000);
    int worst = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(ours[i] - all[48000 + i]));
    CHECK(worst <= 1);
}

TEST_CASE("AvSrc.BadInput.OneLineAndExitTwo" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/movie.mp4", truncated = dir.path() + "/cut.mp4", audio_only = dir.path() + "/a.flac";
    make_fixture(kTestsrc + " -c:v libx264 -pix_fmt yuv420p -preset veryfast", movie);
    make_fixture(kSine + " -c:a flac", audio_only);
    // An MP4 cut in half: its index (moov, written last) is gone.
    REQUIRE(run("head -c $(( $(stat -c %s " + movie + ") / 2 )) " + movie + " > " + truncated).exit_code == 0);
    const std::string noise = dir.path() + "/noise.bin";
    REQUIRE(run("head -c 100000 /dev/urandom > " + noise).exit_code == 0);
    // Bytes FFmpeg only guesses at: a first byte 0x04, 0x00 reads as EA's ADPCM with score 12 of
    // 100 ("misdetection possible"), as one file of random bytes in 200 does.
    const std::string guess = dir.path() + "/guess.bin";
    REQUIRE(run("(printf '\\004\\000'; head -c 100000 /dev/urandom) > " + guess).exit_code == 0);
    const std::string fifo = dir.path() + "/fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);

    struct Case {
        std::string pipeline;
        std::string says;
    };
    const std::vector<Case> cases = {
        {"avsrc path=" + dir.path() + "/missing.mp4 ! nullsink", "missing.mp4"},
        {"avsrc path=" + truncated + " ! nullsink", "cut.mp4"},
        {"avsrc path=" + noise + " ! nullsink", "noise.bin"},
        {"avsrc path=" + guess + " ! nullsink", "guess.bin: not a media file FFmpeg recognises (its best guess, ea_cdata, scored 12"},
        {"avsrc path=" + fifo + " ! nullsink", "FIFO"},
        {"avsrc path=" + audio_only + " name=d d.video ! y4msink path=" + dir.path() + "/x.y4m", "no output named 'video' (its outputs: audio)"},
        {"avsrc path=" + movie + " name=d d.audio ! wavsink path=" + dir.path() + "/x.wav", "no output named 'audio' (its outputs: video)"},
        {"avsrc path=" + movie + " video=7 ! nullsink", "no stream 7"},
        {"avsrc path=" + movie + " audio=loud ! nullsink", "expected auto, none or a stream index"},
        {"avsrc path=" + movie + " video=none ! y4msink path=" + dir.path() + "/x.y4m", "has no audio stream to play"},
        {"avsrc ! nullsink", "path is required"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.pipeline);
        auto r = run("timeout 20 " + kPlayer + " -q " + quote(c.pipeline) + " 2>&1");
        test::check_refused(r, c.says);
    }
}

// Corrupt H.264 in the middle of a file, twenty ways: decoded on, the damage counted, no crash,
// no hang, exit 0 (the file plays, with what could be decoded).
TEST_CASE("AvSrc.CorruptStream.DecodesOnAndCounts" * doctest::timeout(240)) {
    test::TempDir dir;
    const std::string ts = dir.path() + "/v.ts", bad = dir.path() + "/bad.ts", y4m = dir.path() + "/v.y4m",
                      stats = dir.path() + "/s.json";
    make_fixture(kTestsrc + " -c:v libx264 -pix_fmt yuv420p -preset veryfast -bsf:v h264_mp4toannexb", ts);
    std::uint64_t damage = 0;
    for (int seed = 1; seed <= 20; ++seed) {
        CAPTURE(seed);
        // 20 KiB in the middle overwritten with seeded random bytes; MPEG-TS resyncs on its own.
        REQUIRE(run("python3 -c \"import random; r=random.Random(" + std::to_string(seed) + "); d=bytearray(open('" + ts +
                    "','rb').read()); m=len(d)//2; d[m:m+20480]=bytes(r.randrange(256) for _ in range(20480)); open('" +
                    bad + "','wb').write(d)\"")
                    .exit_code == 0);
        auto r = run("timeout 60 " + kPlayer + " -q " + quote("avsrc path=" + bad + " ! y4msink path=" + y4m) +
                     " --stats-json " + stats + " 2>&1");
        INFO(r.output);
        CHECK(r.exit_code == 0);
        std::ifstream in(stats);
        const auto j = nlohmann::json::parse(in);
        const auto& node = j["nodes"]["avsrc0"];
        CHECK(node["samples_out"].get<std::uint64_t>() > 10);
        CHECK(node["copies"].get<std::uint64_t>() == 0);  // damaged or not, decoded straight into the pool
        damage += node["decode_errors"].get<std::uint64_t>() + node["discontinuities"].get<std::uint64_t>();
    }
    CHECK(damage > 0);
}

// The stream is stopped while avsrc waits for a buffer (a render holds the pool, as a slow
// device would): SIGINT ends it promptly and the file it wrote is finished.
TEST_CASE("AvSrc.Stop.WhileWaitingForABufferIsPrompt" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string movie = dir.path() + "/long.mp4", wav = dir.path() + "/a.wav";
    make_fixture("-f lavfi -i sine=frequency=440:sample_rate=48000:duration=60 -c:a aac", movie);
    // --realtime: the render paces the stream, so avsrc spends its time waiting for buffers.
    const auto child = test::interrupt_when(kPlayer + " -q --realtime " + quote("avsrc path=" + movie + " ! wavsink path=" + wav),
                                            test::file_exists(wav), std::chrono::milliseconds(1500));
    REQUIRE(child.started);
    REQUIRE(child.reaped);
    CHECK(child.took < std::chrono::seconds(5));
    CHECK(WIFEXITED(child.status));
    const double seconds = std::stod(test::probe(wav, "a:0", "duration"));
    CHECK(seconds > 0.5);
    CHECK(seconds < 30);
}

namespace {
// Signal-to-noise-and-distortion of a `freq` sine in `x` (rate `rate`), in dB: the best-fitting
// sine (least squares, with DC) over the middle of the signal against what is left.
double sinad_db(const std::vector<float>& x, double rate, double freq) {
    const std::size_t from = x.size() / 10, to = x.size() - x.size() / 10;
    double ss = 0, sc = 0, cc = 0, s1 = 0, c1 = 0, n = 0, xs = 0, xc = 0, x1 = 0;
    for (std::size_t i = from; i < to; ++i) {
        const double w = 2 * std::numbers::pi * freq * double(i) / rate, s = std::sin(w), c = std::cos(w);
        ss += s * s, sc += s * c, cc += c * c, s1 += s, c1 += c, n += 1;
        xs += x[i] * s, xc += x[i] * c, x1 += x[i];
    }
    // Solve the 3x3 normal equations [ss sc s1; sc cc c1; s1 c1 n] [a b d] = [xs xc x1] (Cramer).
    auto det3 = [](double a, double b, double c, double d, double e, double f, double g, double h, double i) {
        return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g);
    };
    const double D = det3(ss, sc, s1, sc, cc, c1, s1, c1, n);
    const double a = det3(xs, sc, s1, xc, cc, c1, x1, c1, n) / D;
    const double b = det3(ss, xs, s1, sc, xc, c1, s1, x1, n) / D;
    const double d = det3(ss, sc, xs, sc, cc, xc, s1, c1, x1) / D;
    double signal = 0, noise = 0;
    for (std::size_t i = from; i < to; ++i) {
        const double w = 2 * std::numbers::pi * freq * double(i) / rate;
        const double fit = a * std::sin(w) + b * std::cos(w) + d;
        signal += fit * fit;
        noise += (x[i] - fit) * (x[i] - fit);
    }
    return 10 * std::log10(signal / noise);
}
}  // namespace

// A 1 kHz sine at 44.1 kHz resampled to 48 kHz: ours (both engines) against sox's resampler, by
// the sine's SINAD; soxr, our default, must be within 3 dB of sox or better. And the length must
// be the input's duration at the new rate.
TEST_CASE("AudioResample.Quality.SineAgainstSox" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string in = dir.path() + "/in.wav";
    // A float sine (aevalsrc), so quantisation does not set the floor the resamplers are judged by.
    make_fixture("-f lavfi -i 'aevalsrc=0.5*sin(1000*2*PI*t):s=44100:d=2' -c:a pcm_f32le", in);
    REQUIRE(run("sox " + in + " -e floating-point " + dir.path() + "/sox.wav rate 48000").exit_code == 0);
    const double sox = sinad_db(test::decode_mono(dir.path() + "/sox.wav"), 48000, 1000);
    double soxr = 0;
    for (const std::string engine : {"soxr", "swr"}) {
        CAPTURE(engine);
        const std::string out = dir.path() + "/" + engine + ".wav";
        auto r = play("'wavsrc path=" + in + " ! audioresample rate=48000 engine=" + engine + " ! wavsink path=" + out + "'");
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        CHECK(test::probe(out, "a:0", "sample_rate") == "48000");
        const auto samples = test::decode_mono(out);
        CHECK(std::abs(double(samples.size()) - 96000.0) <= 2);  // 2 s, the filter's delay released at the end
        const double ours = sinad_db(samples, 48000, 1000);
        MESSAGE(engine << ": SINAD " << ours << " dB; sox: " << sox << " dB");
        if (engine == "soxr") soxr = ours;
    }
    CHECK(soxr >= sox - 3);
}

// Mixing sources of different rates: the error names the converter, and following it works.
TEST_CASE("AudioResample.Mix.TheAdviceWorks" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string wav = dir.path() + "/mix.wav";
    auto r = play("--duration 1 'tone rate=44100 ! m. tone rate=48000 freq=660 ! m. mix name=m ! wavsink path=" + wav + "' 2>&1");
    test::check_exit_two_saying(r, "put 'audioresample rate=44100' before it");
    r = play("--duration 1 'tone rate=44100 ! m. tone rate=48000 freq=660 ! audioresample rate=44100 ! m. mix name=m ! "
             "wavsink path=" + wav + "' 2>&1");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(test::probe(wav, "a:0", "sample_rate") == "44100");
    CHECK(std::stod(test::probe(wav, "a:0", "duration")) == doctest::Approx(1.0).epsilon(0.01));
    const auto x = test::decode_mono(wav);
    // Both tones are there: 440 Hz from the first, 660 Hz resampled from the second.
    CHECK(test::dominant_frequency(x, 44100, 400, 500) == doctest::Approx(440).epsilon(0.01));
    CHECK(test::dominant_frequency(x, 44100, 600, 700) == doctest::Approx(660).epsilon(0.01));
}

// avsink: audio encoded per container and read back by ffprobe/ffmpeg. FLAC is lossless: its
// decode equals the WAV of the same tone sample for sample; the lossy ones keep the tone.
TEST_CASE("AvSink.Audio.EveryContainerReadsBack" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string wav = dir.path() + "/ref.wav";
    REQUIRE(play("--duration 2 'tone freq=440 ! wavsink path=" + wav + "'").exit_code == 0);
    const auto reference = as_s16(ffmpeg_decode(wav, "0:a:0", "-f s16le"));
    struct Case {
        const char* file;
        const char* codec;
    };
    for (const Case& c : {Case{"a.flac", "flac"}, Case{"a.opus", "opus"}, Case{"a.m4a", "aac"}, Case{"a.mp3", "mp3"},
                          Case{"a.ogg", "opus"}, Case{"a.mkv", "flac"}, Case{"a.wav", "pcm_s16le"}}) {
        CAPTURE(std::string(c.file));
        const std::string out = dir.path() + "/" + c.file;
        auto r = play("--duration 2 'tone freq=440 ! avsink path=" + out + "' 2>&1");
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        CHECK(r.output.empty());  // FFmpeg's own chatter goes to the log handler, not stderr
        CHECK(test::probe(out, "a:0", "codec_name") == c.codec);
        CHECK(std::stod(run("ffprobe -v error -show_entries format=duration -of csv=p=0 " + out).output) ==
              doctest::Approx(2.0).epsilon(0.03));
        CHECK(test::dominant_frequency(test::decode_mono(out), 48000, 300, 600) == doctest::Approx(440).epsilon(0.005));
        if (std::string(c.codec) == "flac" || std::string(c.codec) == "pcm_s16le")
            CHECK((as_s16(ffmpeg_decode(out, "0:a:0", "-f s16le")) == reference));
    }
}

// Video: FFV1 is lossless (every picture byte for byte as y4msink wrote them); H.264 and VP9 keep
// the pictures within PSNR 40 dB of them (ffmpeg's psnr filter).
TEST_CASE("AvSink.Video.LosslessExactLossyAbove40dB" * doctest::timeout(180)) {
    test::TempDir dir;
    const std::string y4m = dir.path() + "/ref.y4m";
    REQUIRE(play("--num-buffers 30 'videotest ! y4msink path=" + y4m + "'").exit_code == 0);
    const std::size_t picture = 320 * 240 * 3 / 2;
    const std::string reference = y4m_pictures(y4m, picture);
    for (const std::string file : {"v.mkv", "v.mp4", "v.webm"}) {
        CAPTURE(file);
        const std::string out = dir.path() + "/" + file;
        auto r = play("--num-buffers 30 'videotest ! avsink path=" + out + "' 2>&1");
        INFO(r.output);
        REQUIRE(r.exit_code == 0);
        CHECK(test::probe(out, "v:0", "nb_read_frames") == "30");
        CHECK(std::stod(run("ffprobe -v error -show_entries format=duration -of csv=p=0 " + out).output) ==
              doctest::Approx(1.0).epsilon(0.05));
        const std::string decoded = ffmpeg_decode(out, "0:v:0", "-f rawvideo -pix_fmt yuv420p");
        REQUIRE(decoded.size() == reference.size());
        if (file == "v.mkv") {
            CHECK((decoded == reference));
        } else {
            // PSNR over every byte of every picture, in order (ffmpeg's psnr filter pairs pictures
            // by time, which a 1 ms WebM time base shifts by one now and then).
            double squares = 0;
            for (std::size_t i = 0; i < decoded.size(); ++i) {
                const double d = double(std::uint8_t(decoded[i])) - double(std::uint8_t(reference[i]));
                squares += d * d;
            }
            const double psnr = squares == 0 ? 999 : 10 * std::log10(255.0 * 255.0 / (squares / double(decoded.size())));
            MESSAGE(file << ": PSNR " << psnr << " dB");
            CHECK(psnr >= 40.0);
        }
    }
}

// A movie transcoded: both pins of avsrc to both pins of avsink, by name.
TEST_CASE("AvSink.Transcode.AudioAndVideoByPinName" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string in = dir.path() + "/in.mp4", out = dir.path() + "/out.mkv";
    make_fixture(kTestsrc + " " + kSine + " -c:v libx264 -pix_fmt yuv420p -preset veryfast -c:a aac", in);
    auto r = play("'avsrc path=" + in + " name=d  d.audio ! s.audio  d.video ! s.video  avsink name=s path=" + out + "' 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(test::probe(out, "a:0", "codec_name") == "flac");
    CHECK(test::probe(out, "v:0", "codec_name") == "ffv1");
    CHECK(test::probe(out, "v:0", "nb_read_frames") == test::probe(in, "v:0", "nb_read_frames"));
    // The pictures survive exactly (FFV1): what ffmpeg decodes from the input.
    CHECK((ffmpeg_decode(out, "0:v:0", "-f rawvideo -pix_fmt yuv420p") == ffmpeg_decode(in, "0:v:0", "-f rawvideo -pix_fmt yuv420p")));
}

// Ctrl-C while recording: the stop path drains the encoder and writes the trailer (an MP4's
// index is written last: without it nothing could read the file).
TEST_CASE("AvSink.Interrupt.FileIsFinished" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string out = dir.path() + "/live.mp4";
    const auto child = test::interrupt_when(kPlayer + " -q --realtime " + quote("videotest ! avsink path=" + out),
                                            test::file_exists(out), std::chrono::milliseconds(1500));
    REQUIRE(child.started);
    REQUIRE(child.reaped);
    CHECK(WIFEXITED(child.status));
    const double seconds = std::stod(run("ffprobe -v error -show_entries format=duration -of csv=p=0 " + out).output);
    CHECK(seconds > 1.0);
    CHECK(seconds < 3.0);
    CHECK(std::stoi(test::probe(out, "v:0", "nb_read_frames")) >= 30);
}

TEST_CASE("AvSink.BadInput.OneLineAndExitTwo" * doctest::timeout(60)) {
    test::TempDir dir;
    struct Case {
        std::string pipeline;
        std::string says;
    };
    const std::vector<Case> cases = {
        {"tone ! avsink path=" + dir.path() + "/x.nonsense", "no container for this extension"},
        {"tone ! avsink path=" + dir.path() + "/x.mkv acodec=nonesuch", "no encoder named 'nonesuch'"},
        {"tone ! avsink path=" + dir.path() + "/x.mkv format=nonesuch", "format=nonesuch"},
        {"tone rate=44100 ! avsink path=" + dir.path() + "/x.opus", "put 'audioresample rate=48000' before it"},
        {"videotest ! avsink path=" + dir.path() + "/x.flac", "flac files take no video"},
        {"tone ! avsink path=" + dir.path() + "/missing/x.mkv", "x.mkv"},
        {"tone ! avsink", "path is required"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.pipeline);
        auto r = run("timeout 20 " + kPlayer + " -q --num-buffers 5 " + quote(c.pipeline) + " 2>&1");
        test::check_refused(r, c.says);
    }
    // The advice about the rate works.
    const std::string opus = dir.path() + "/ok.opus";
    CHECK(play("--duration 1 'tone rate=44100 ! audioresample rate=48000 ! avsink path=" + opus + "'").exit_code == 0);
    CHECK(test::probe(opus, "a:0", "codec_name") == "opus");
}

// Caps filters: each mismatch names the converters that fix it, and following the advice works.
TEST_CASE("Caps.Mismatch.TheAdviceWorks" * doctest::timeout(120)) {
    test::TempDir dir;
    struct Case {
        std::string broken;  // a pipeline whose caps the source cannot meet; "@" is the converter's place
        std::string advice;
        std::string probe_entry, stream, expect;
    };
    const std::string wav = dir.path() + "/a.wav", png = dir.path() + "/a.png";
    const std::vector<Case> cases = {
        {"tone ! @ audio/x-raw,rate=44100 ! wavsink path=" + wav, "audioresample rate=44100", "sample_rate", "a:0", "44100"},
        {"tone ! @ audio/x-raw,format=f32 ! wavsink path=" + wav, "audioconvert format=f32", "codec_name", "a:0", "pcm_f32le"},
        {"tone rate=22050 format=f32 ! @ audio/x-raw,rate=48000,format=s16 ! wavsink path=" + wav,
         "audioresample rate=48000 ! audioconvert format=s16", "sample_rate", "a:0", "48000"},
        {"tone ! @ audio/x-raw,channels=1 ! wavsink path=" + wav, "audioconvert channels=1", "channels", "a:0", "1"},
        {"tone channels=6 ! @ audio/x-raw,format=s24,channels=2 ! wavsink path=" + wav, "audioconvert format=s24 channels=2",
         "codec_name", "a:0", "pcm_s24le"},
        {"tone format=s32 ! @ audio/x-raw,rate=44100,format=s16 ! wavsink path=" + wav,
         "audioresample rate=44100 ! audioconvert format=s16", "sample_rate", "a:0", "44100"},
        {"videotest ! @ video/x-raw,width=640,height=360 ! pngsink path=" + png, "scale width=640 height=360", "width", "v:0", "640"},
        {"videotest ! @ video/x-raw,format=RGBA,width=160,height=90 ! pngsink path=" + png,
         "videoconvert format=rgba ! scale width=160 height=90", "height", "v:0", "90"},
    };
    for (const Case& c : cases) {
        CAPTURE(c.broken);
        std::string broken = c.broken, fixed = c.broken;
        broken.replace(broken.find('@'), 2, "");
        fixed.replace(fixed.find('@'), 1, c.advice + " !");
        auto r = play("--num-buffers 3 " + quote(broken) + " 2>&1");
        test::check_exit_two_saying(r, "(put '" + c.advice + "' between them)");
        r = play("--num-buffers 3 " + quote(fixed) + " 2>&1");
        INFO(r.output);
        CHECK(r.exit_code == 0);
        CHECK(test::probe(c.stream == "a:0" ? wav : png, c.stream, c.probe_entry) == c.expect);
    }
    // What nothing converts yet is said as such.
    auto r = play("--num-buffers 1 'videotest ! video/x-raw,framerate=50/1 ! nullsink' 2>&1");
    test::check_exit_two_saying(r, "no node changes the frame rate yet");
}

// Caps pick among what a source offers: AAC decodes to float, and caps ask for s16.
TEST_CASE("Caps.Choose.AmongTheSourcesOffers" * doctest::timeout(60)) {
    test::TempDir dir;
    const std::string m4a = dir.path() + "/a.m4a", wav = dir.path() + "/a.wav";
    make_fixture(kSine + " -c:a aac", m4a);
    REQUIRE(play("'avsrc path=" + m4a + " ! wavsink path=" + wav + "'").exit_code == 0);
    CHECK(test::probe(wav, "a:0", "codec_name") == "pcm_f32le");
    REQUIRE(play("'avsrc path=" + m4a + " ! audio/x-raw,format=s16 ! wavsink path=" + wav + "'").exit_code == 0);
    CHECK(test::probe(wav, "a:0", "codec_name") == "pcm_s16le");
    // And the same file's samples either way, within one LSB.
    const auto theirs = as_s16(ffmpeg_decode(m4a, "0:a:0", "-f s16le"));
    const auto ours = as_s16(ffmpeg_decode(wav, "0:a:0", "-f s16le"));
    REQUIRE(ours.size() == theirs.size());
    int worst = 0;
    for (std::size_t i = 0; i < ours.size(); ++i) worst = std::max(worst, std::abs(ours[i] - theirs[i]));
    CHECK(worst <= 1);
}

TEST_CASE("Caps.BadCaps.OneLineAndExitTwo") {
    for (const std::string caps : {"audio/x-raw,bogus=1", "audio/x-raw,rate=0", "audio/x-raw,format=s8", "video/x-raw,width=-5",
                                   "video/x-raw,framerate=30/0", "video/x-bayer", "audio/x-raw,rate"}) {
        CAPTURE(caps);
        auto r = play("--num-buffers 1 'tone ! " + caps + " ! nullsink' 2>&1");
        test::check_refused(r, "caps " + caps);
    }
}

// Found by review: avsink counted audio time from zero whatever the samples said (a file whose
// audio starts 0.5 s after its video came out 0.5 s early); file names with a colon were taken
// for FFmpeg protocols; a tee's branch (which offers "anything") went to the muxer's audio pin.
TEST_CASE("AvSink.Review.AudioOffsetColonNamesTeeBranch" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string late = dir.path() + "/late.mkv", copy = dir.path() + "/copy.mkv";
    make_fixture(kTestsrc + " -itsoffset 0.5 " + kSine + " -c:v ffv1 -pix_fmt yuv420p -c:a flac", late);
    auto start = [](const std::string& f, const std::string& stream) {
        return std::stod(run("ffprobe -v error -select_streams " + stream + " -show_entries stream=start_time -of csv=p=0 " + f).output);
    };
    REQUIRE(start(late, "a:0") - start(late, "v:0") == doctest::Approx(0.5).epsilon(0.05));
    auto r = play("'avsrc path=" + late + " name=d  d.audio ! s.audio  d.video ! s.video  avsink name=s path=" + copy + "' 2>&1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(start(copy, "a:0") - start(copy, "v:0") == doctest::Approx(0.5).epsilon(0.05));

    const std::string colon_in = dir.path() + "/12:00.flac", colon_out = dir.path() + "/x:1.mkv";
    make_fixture(kSine + " -c:a flac", "file:" + colon_in);
    r = play("'avsrc path=" + colon_in + " ! avsink path=" + colon_out + "' 2>&1");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(test::probe("file:" + colon_out, "a:0", "codec_name") == "flac");

    const std::string branch = dir.path() + "/branch.mkv";
    r = play("--num-buffers 10 'videotest ! tee name=t  t. ! avsink path=" + branch + "  t. ! nullsink' 2>&1");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(test::probe(branch, "v:0", "nb_read_frames") == "10");
}

// avsrc offers a stream's own pixel format and colour: a 4:2:2 H.264 file reaches y4msink as
// I422, picture for picture ffmpeg's own decode, and a BT.709 full-range file's link says so.
TEST_CASE("AvSrc.Video.NativeFormatAndColourAsTheStreamSays" * doctest::timeout(120)) {
    test::TempDir dir;
    const std::string v422 = dir.path() + "/v422.mp4", hd = dir.path() + "/full709.mp4", y4m = dir.path() + "/v.y4m",
                      stats = dir.path() + "/s.json";
    make_fixture(kTestsrc + " -c:v libx264 -pix_fmt yuv422p -preset veryfast", v422);
    make_fixture(kTestsrc + " -vf scale=out_color_matrix=bt709:out_range=full -c:v libx264 -pix_fmt yuv420p -preset veryfast "
                            "-color_range pc -colorspace bt709",
                 hd);
    auto r = play("--stats-json " + quote(stats) + " 'avsrc path=" + v422 + " ! y4msink path=" + y4m + "'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::size_t picture = 320 * 240 * 2;
    const std::string ours = y4m_pictures(y4m, picture);
    const std::string theirs = ffmpeg_decode(v422, "0:v:0", "-f rawvideo -pix_fmt yuv422p");
    CHECK(ours.size() == 50 * picture);
    CHECK((ours == theirs));
    auto link_format = [&](const std::string& file) {
        std::ifstream in(file);
        return nlohmann::json::parse(in)["nodes"]["avsrc0"]["links"][0]["format"].get<std::string>();
    };
    CHECK(link_format(stats).starts_with("video/I422 320x240"));
    r = play("--stats-json " + quote(stats) + " 'avsrc path=" + hd + " ! y4msink path=" + y4m + "'");
    REQUIRE(r.exit_code == 0);
    CHECK(link_format(stats).find("bt709 full") != std::string::npos);
}

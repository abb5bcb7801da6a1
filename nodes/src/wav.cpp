// SPDX-License-Identifier: MIT
// WAV (RIFF WAVE) reading and writing: 16-bit PCM and 32-bit float, any rate and channel count.
//
// Our own parser rather than libsndfile: errors must name the byte offset where a file goes
// wrong, a header that claims more data than the file holds must be refused before streaming,
// the reader must not allocate while streaming, and the parser is a fuzzing target.
#include <sluice/nodes/wav.hpp>

#include "common.hpp"
#include "specs.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::nodes {

namespace {

std::uint32_t le32(const unsigned char* p) {
    return std::uint32_t(p[0]) | std::uint32_t(p[1]) << 8 | std::uint32_t(p[2]) << 16 | std::uint32_t(p[3]) << 24;
}
std::uint16_t le16(const unsigned char* p) { return std::uint16_t(p[0] | p[1] << 8); }
void put32(unsigned char* p, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<unsigned char>(v >> (8 * i));
}
void put16(unsigned char* p, std::uint16_t v) {
    p[0] = static_cast<unsigned char>(v);
    p[1] = static_cast<unsigned char>(v >> 8);
}

constexpr std::uint16_t kPcm = 1, kFloat = 3, kExtensible = 0xFFFE;

}  // namespace

Result<WavInfo> parse_wav_header(std::span<const unsigned char> file, std::uint64_t file_size, std::string& error) {
    auto fail = [&](std::uint64_t offset, const std::string& what) -> Result<WavInfo> {
        error = "byte " + std::to_string(offset) + ": " + what;
        return unexpected(Errc::corrupt_file);
    };
    if (file.size() < 12) return fail(file.size(), "file too short for a RIFF header (" + std::to_string(file.size()) + " bytes)");
    if (std::memcmp(file.data(), "RIFF", 4) != 0) return fail(0, "not a RIFF file (no 'RIFF' magic)");
    if (std::memcmp(file.data() + 8, "WAVE", 4) != 0) return fail(8, "RIFF file is not WAVE");
    WavInfo info;
    bool have_fmt = false;
    std::uint64_t pos = 12;
    for (;;) {
        if (pos + 8 > file.size()) {
            if (pos + 8 > file_size) return fail(pos, have_fmt ? "no 'data' chunk" : "no 'fmt ' chunk");
            return fail(pos, "chunk header beyond the first " + std::to_string(file.size()) + " bytes read");
        }
        const unsigned char* chunk = file.data() + pos;
        const std::uint32_t size = le32(chunk + 4);
        if (std::memcmp(chunk, "fmt ", 4) == 0) {
            if (size < 16) return fail(pos + 4, "'fmt ' chunk too small (" + std::to_string(size) + " bytes)");
            if (pos + 8 + std::min<std::uint32_t>(size, 40) > file.size()) return fail(pos, "'fmt ' chunk is truncated");
            const unsigned char* f = chunk + 8;
            std::uint16_t tag = le16(f);
            info.channels = le16(f + 2);
            info.rate = le32(f + 4);
            const std::uint16_t block_align = le16(f + 12);
            const std::uint16_t bits = le16(f + 14);
            if (tag == kExtensible) {
                if (size < 40) return fail(pos + 8, "WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk too small");
                tag = le16(f + 24);  // the first two bytes of the subformat GUID are the format tag
            }
            if (tag == kPcm && bits == 16) info.format = engine::SampleFormat::s16;
            else if (tag == kFloat && bits == 32) info.format = engine::SampleFormat::f32;
            else
                return fail(pos + 8, "unsupported sample format (tag " + std::to_string(tag) + ", " + std::to_string(bits) +
                                         " bits); only 16-bit PCM and 32-bit float");
            if (info.channels < 1 || info.channels > 64) return fail(pos + 10, "bad channel count " + std::to_string(info.channels));
            if (info.rate < 1 || info.rate > 768000) return fail(pos + 12, "bad sample rate " + std::to_string(info.rate));
            if (block_align != info.channels * bits / 8)
                return fail(pos + 20, "block align " + std::to_string(block_align) + " does not match " +
                                          std::to_string(info.channels) + " channels of " + std::to_string(bits) + " bits");
            have_fmt = true;
        } else if (std::memcmp(chunk, "data", 4) == 0) {
            if (!have_fmt) return fail(pos, "'data' chunk before 'fmt '");
            info.data_offset = pos + 8;
            info.data_bytes = size;
            const std::uint64_t available = file_size > info.data_offset ? file_size - info.data_offset : 0;
            // 0xFFFFFFFF (or 0) is what streaming writers leave when they could not seek back;
            // take the data to the end of the file then, as ffmpeg and sox do.
            if (size == 0xFFFFFFFF || (size == 0 && available > 0)) info.data_bytes = available;
            else if (size > available)
                return fail(pos + 4, "'data' chunk claims " + std::to_string(size) + " bytes but only " +
                                         std::to_string(available) + " remain");
            const std::size_t frame = info.channels * engine::bytes_per_sample(info.format);
            info.data_bytes -= info.data_bytes % frame;  // a trailing partial frame is not audio
            return info;
        }
        pos += 8 + std::uint64_t(size) + (size & 1);  // chunks are padded to even sizes
    }
}

namespace {

using engine::Flow;

// Reads a whole WAV header (it sits in the first few KiB) and validates it against the file size.
Status read_wav_header(const std::string& path, WavInfo& info) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return {Errc::io_error, path + ": cannot open: " + std::strerror(errno)};
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        ::close(fd);
        return {Errc::io_error, path + ": not a regular file"};
    }
    unsigned char head[8192];
    std::size_t got = 0;
    while (got < sizeof head) {
        const ssize_t n = ::read(fd, head + got, sizeof head - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += std::size_t(n);
    }
    ::close(fd);
    std::string error;
    auto parsed = parse_wav_header({head, got}, std::uint64_t(st.st_size), error);
    if (!parsed) return {parsed.error(), path + ": " + error};
    info = *parsed;
    return {};
}

class WavSrc final : public Node {
public:
    WavSrc(std::string name, PropertyReader& r) : Node(std::move(name), Kind::source) {
        path_ = r.text("path");
        frames_ = std::size_t(r.integer("frames", 1, 1 << 20));
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        if (!r.ok()) return;
        if (path_.empty()) r.fail(make_error_code(Errc::invalid_argument), "property path is required");
        else if (Status st = read_wav_header(path_, info_); !st) r.fail(st.code(), st.message());
        add_output("src", {engine::MediaFormat::audio(int(info_.rate), int(info_.channels), info_.format)});
    }
    ~WavSrc() override { close_file(); }

private:
    engine::BufferNeeds output_buffers(std::size_t) const override {
        return {frames_ * output(0).format().frame_bytes(), 1};
    }
    Status start() override {
        close_file();
        // The file may have changed since the graph was built: check it again.
        if (Status st = read_wav_header(path_, info_); !st) return st;
        fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd_ < 0) return {Errc::io_error, path_ + ": cannot open: " + std::strerror(errno)};
        position_ = 0;
        limit_.produced = 0;
        return {};
    }
    void stop() override { close_file(); }
    void close_file() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    Flow produce() override {
        const engine::MediaFormat& f = output(0).format();
        const std::size_t frame_bytes = f.frame_bytes();
        const std::uint64_t frames_done = position_ / frame_bytes;
        const std::int64_t start = std::int64_t(frames_done * 1'000'000'000 / f.rate);
        if (position_ >= info_.data_bytes || limit_.reached(start, media_limit_ns())) return Flow::end_of_stream;
        auto s = get_buffer(0);
        if (!s) return detail::flow_of_get_error(s.error());
        std::uint64_t remaining = info_.data_bytes - position_;
        if (const std::int64_t limit = media_limit_ns(); limit >= 0) {  // end exactly at the duration
            const auto end_frame = std::uint64_t((__int128(limit) * f.rate + 999'999'999) / 1'000'000'000);
            remaining = std::min<std::uint64_t>(remaining, (end_frame - frames_done) * frame_bytes);
        }
        const std::size_t want = std::size_t(std::min<std::uint64_t>(frames_ * frame_bytes, remaining));
        std::size_t got = 0;
        while (got < want) {
            const ssize_t n = ::pread(fd_, s->data() + got, want - got, off_t(info_.data_offset + position_ + got));
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return report_error(make_error_code(Errc::io_error), path_ + ": read failed: " + std::strerror(errno));
            if (n == 0)
                return report_error(make_error_code(Errc::corrupt_file),
                                    detail::at_offset(path_, info_.data_offset + position_ + got) +
                                        "file ended inside the 'data' chunk (it shrank while playing?)");
            got += std::size_t(n);
        }
        (void)s->set_size(got);
        position_ += got;
        s->set_times(start, std::int64_t(position_ / frame_bytes * 1'000'000'000 / f.rate));
        if (limit_.produced++ == 0) s->add_flags(SampleFlags::discontinuity);
        return push(0, std::move(*s));
    }

    std::string path_;
    std::size_t frames_ = 1024;
    detail::StreamLimit limit_;
    WavInfo info_;
    int fd_ = -1;
    std::uint64_t position_ = 0;  // bytes of the data chunk already read
};

// Writes through a fixed buffer (no allocation while streaming) and keeps the header's sizes
// right: at stop (including Ctrl-C, which stops through the same path) and about once a second,
// so even a killed process leaves a file whose header covers nearly all of its data.
class WavSink final : public Node {
public:
    WavSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
        path_ = r.text("path");
        const std::size_t choice = r.choice("format", {"auto", "s16", "f32"});
        if (path_.empty() && r.ok()) r.fail(make_error_code(Errc::invalid_argument), "property path is required");
        engine::MediaFormat accepts = engine::MediaFormat::audio();
        if (choice == 1) accepts.sample_format = engine::SampleFormat::s16;
        if (choice == 2) accepts.sample_format = engine::SampleFormat::f32;
        add_input("sink", {accepts});
    }
    ~WavSink() override { finish(); }

private:
    static constexpr std::size_t kHeaderBytes = 58;  // float layout; PCM uses the first 44

    Status start() override {
        finish();
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) return {Errc::io_error, path_ + ": cannot write: " + std::strerror(errno)};
        buffer_.resize(1 << 16);
        used_ = 0;
        written_ = 0;
        data_bytes_ = 0;
        since_header_ = 0;
        const engine::MediaFormat& f = input(0).format();
        is_float_ = f.sample_format == engine::SampleFormat::f32;
        header_bytes_ = is_float_ ? kHeaderBytes : 44;
        bytes_per_second_ = std::uint64_t(f.rate) * f.frame_bytes();
        if (!write_header()) return {Errc::io_error, path_ + ": cannot write: " + std::strerror(errno)};
        return {};
    }
    void stop() override { finish(); }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        if (fd_ < 0) return Flow::ok;
        const std::byte* p = s.data();
        std::size_t n = s.size();
        while (n > 0) {
            const std::size_t take = std::min(n, buffer_.size() - used_);
            std::memcpy(buffer_.data() + used_, p, take);
            used_ += take;
            p += take;
            n -= take;
            if (used_ == buffer_.size() && !drain())
                return report_error(make_error_code(Errc::io_error), path_ + ": write failed: " + std::strerror(errno));
        }
        data_bytes_ += s.size();
        since_header_ += s.size();
        if (since_header_ >= bytes_per_second_) {
            if (!drain() || !write_header())
                return report_error(make_error_code(Errc::io_error), path_ + ": write failed: " + std::strerror(errno));
            since_header_ = 0;
        }
        return Flow::ok;
    }

    bool drain() {
        std::size_t done = 0;
        while (done < used_) {
            const ssize_t n = ::pwrite(fd_, buffer_.data() + done, used_ - done, off_t(header_bytes_ + written_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            done += std::size_t(n);
        }
        written_ += used_;
        used_ = 0;
        return true;
    }

    bool write_header() {
        const engine::MediaFormat& f = input(0).format();
        unsigned char h[kHeaderBytes] = {};
        const std::uint64_t data = std::min<std::uint64_t>(data_bytes_, 0xFFFFFFFFu - header_bytes_);
        std::memcpy(h, "RIFF", 4);
        put32(h + 4, std::uint32_t(header_bytes_ - 8 + data + (data & 1)));
        std::memcpy(h + 8, "WAVEfmt ", 8);
        put32(h + 16, is_float_ ? 18 : 16);
        put16(h + 20, is_float_ ? kFloat : kPcm);
        put16(h + 22, std::uint16_t(f.channels));
        put32(h + 24, std::uint32_t(f.rate));
        put32(h + 28, std::uint32_t(f.rate * f.frame_bytes()));
        put16(h + 32, std::uint16_t(f.frame_bytes()));
        put16(h + 34, std::uint16_t(engine::bytes_per_sample(f.sample_format) * 8));
        unsigned char* next = h + 36;
        if (is_float_) {
            put16(h + 36, 0);  // cbSize
            std::memcpy(h + 38, "fact", 4);
            put32(h + 42, 4);
            put32(h + 46, std::uint32_t(data / f.frame_bytes()));
            next = h + 50;
        }
        std::memcpy(next, "data", 4);
        put32(next + 4, std::uint32_t(data));
        return ::pwrite(fd_, h, header_bytes_, 0) == ssize_t(header_bytes_);
    }

    void finish() {
        if (fd_ < 0) return;
        drain();
        if (data_bytes_ & 1) {  // RIFF pads chunks to even sizes
            const unsigned char zero = 0;
            (void)!::pwrite(fd_, &zero, 1, off_t(header_bytes_ + data_bytes_));
        }
        write_header();
        ::close(fd_);
        fd_ = -1;
    }

    std::string path_;
    int fd_ = -1;
    std::vector<std::byte> buffer_;
    std::size_t used_ = 0;
    std::uint64_t written_ = 0;       // data bytes in the file
    std::uint64_t data_bytes_ = 0;    // data bytes handed to us: written_ + used_
    std::uint64_t since_header_ = 0;  // of those, since the header was last rewritten
    std::uint64_t bytes_per_second_ = 0;
    std::size_t header_bytes_ = 44;
    bool is_float_ = false;
};

}  // namespace

NodeSpec wavsrc_spec() {
    return {"wavsrc", Node::Kind::source, "reads a WAV file (16-bit PCM or 32-bit float)",
            {{"path", "", "file to read (required)"},
             {"frames", "1024", "frames per buffer"},
             detail::num_buffers_property()},
            [](std::string name, PropertyReader& r) { return std::make_unique<WavSrc>(std::move(name), r); }};
}

NodeSpec wavsink_spec() {
    return {"wavsink", Node::Kind::render, "writes a WAV file; its header is complete after stop and Ctrl-C",
            {{"path", "", "file to write (required)"}, {"format", "auto", "sample format to accept: auto|s16|f32"}},
            [](std::string name, PropertyReader& r) { return std::make_unique<WavSink>(std::move(name), r); }};
}

}  // namespace sluice::nodes

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
#include <optional>
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
    const bool rf64 = std::memcmp(file.data(), "RF64", 4) == 0;
    if (!rf64 && std::memcmp(file.data(), "RIFF", 4) != 0) return fail(0, "not a RIFF or RF64 file (no 'RIFF' magic)");
    if (std::memcmp(file.data() + 8, "WAVE", 4) != 0) return fail(8, "RIFF file is not WAVE");
    WavInfo info;
    bool have_fmt = false;
    std::uint64_t ds64_data_bytes = 0;  // RF64 (EBU Tech 3306): the data size the 'ds64' chunk gives
    bool have_ds64 = false;
    std::uint64_t pos = 12;
    for (;;) {
        if (pos + 8 > file.size()) {
            if (pos + 8 > file_size) return fail(pos, have_fmt ? "no 'data' chunk" : "no 'fmt ' chunk");
            return fail(pos, "chunk header beyond the first " + std::to_string(file.size()) + " bytes read");
        }
        const unsigned char* chunk = file.data() + pos;
        const std::uint32_t size = le32(chunk + 4);
        if (rf64 && std::memcmp(chunk, "ds64", 4) == 0) {
            if (size < 24) return fail(pos + 4, "'ds64' chunk too small (" + std::to_string(size) + " bytes)");
            if (pos + 8 + 24 > file.size()) return fail(pos, "'ds64' chunk is truncated");
            ds64_data_bytes = std::uint64_t(le32(chunk + 16)) | std::uint64_t(le32(chunk + 20)) << 32;
            have_ds64 = true;
        } else if (std::memcmp(chunk, "fmt ", 4) == 0) {
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
            if (rf64 && size == 0xFFFFFFFF) {
                if (!have_ds64) return fail(pos + 4, "RF64 'data' chunk of size 0xFFFFFFFF without a 'ds64' chunk");
                if (ds64_data_bytes > available)
                    return fail(pos + 4, "'ds64' claims " + std::to_string(ds64_data_bytes) + " data bytes but only " +
                                             std::to_string(available) + " remain");
                info.data_bytes = ds64_data_bytes;
                const std::size_t frame = info.channels * engine::bytes_per_sample(info.format);
                info.data_bytes -= info.data_bytes % frame;
                return info;
            }
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
    std::string error;
    const int fd = detail::open_regular_file(path, error);
    if (fd < 0) return {Errc::io_error, path + ": " + error};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return {Errc::io_error, path + ": cannot stat: " + std::strerror(errno)};
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
    std::vector<FileUse> file_uses() const override { return {{path_, false}}; }

private:
    engine::BufferNeeds output_buffers(std::size_t) const override {
        return {frames_ * output(0).format().frame_bytes(), 1};
    }
    Status start() override {
        close_file();
        // The file may have changed since the graph was built: check it again.
        if (Status st = read_wav_header(path_, info_); !st) return st;
        std::string error;
        fd_ = detail::open_regular_file(path_, error);
        if (fd_ < 0) return {Errc::io_error, path_ + ": " + error};
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
        const std::int64_t start = engine::frames_to_ns(frames_done, f.rate);
        if (position_ >= info_.data_bytes || limit_reached(limit_, start)) return Flow::end_of_stream;
        auto s = get_buffer(0);
        if (!s) return detail::flow_of_get_error(s.error());
        std::uint64_t remaining = info_.data_bytes - position_;
        if (const std::int64_t limit = media_limit_ns(); limit >= 0) {  // end exactly at the duration
            const std::uint64_t end_frame = engine::frames_at_or_after(limit, f.rate);
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
        s->set_times(start, engine::frames_to_ns(position_ / frame_bytes, f.rate));
        if (limit_.produced++ == 0) s->add_flags(SampleFlags::discontinuity);
        return push(0, std::move(*s));
    }

    std::string path_;
    std::size_t frames_ = 1024;
    engine::StreamLimit limit_;
    WavInfo info_;
    int fd_ = -1;
    std::uint64_t position_ = 0;  // bytes of the data chunk already read
};

// Writes through a fixed buffer (no allocation while streaming) and keeps the header's sizes
// right: at stop (including Ctrl-C, which stops through the same path) and about once a second,
// so even a killed process leaves a file whose header covers nearly all of its data.
//
// The header reserves a 36-byte 'JUNK' chunk after "WAVE" (ignored by every reader). A recording
// that passes what the 32-bit RIFF sizes can say (4 GiB) becomes RF64 (EBU Tech 3306) when it is
// finished: "RF64", sizes of 0xFFFFFFFF, and the JUNK chunk turned into the 'ds64' chunk with the
// 64-bit sizes. ffmpeg and sox read both. Until it is finished such a file's RIFF sizes say "to
// the end of the file" (0xFFFFFFFF), as streaming writers leave them.
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
    ~WavSink() override { (void)finish(); }
    std::vector<FileUse> file_uses() const override { return {{path_, true}}; }

private:
    static constexpr std::size_t kJunkBytes = 36;  // 8 + 28: room for the ds64 chunk
    static constexpr std::size_t kMaxHeaderBytes = 12 + kJunkBytes + 26 + 12 + 8;

    Status start() override {
        (void)finish();
        fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd_ < 0) return {Errc::io_error, path_ + ": cannot write: " + std::strerror(errno)};
        buffer_.resize(1 << 16);
        used_ = 0;
        written_ = 0;
        data_bytes_ = 0;
        since_header_ = 0;
        const engine::MediaFormat& f = input(0).format();
        is_float_ = f.sample_format == engine::SampleFormat::f32;
        // RIFF + JUNK + fmt (16 or 18 bytes) [+ fact] + data header.
        header_bytes_ = 12 + kJunkBytes + (is_float_ ? 8 + 18 + 12 : 8 + 16) + 8;
        bytes_per_second_ = std::uint64_t(f.rate) * f.frame_bytes();
        if (!write_header(false)) return {Errc::io_error, path_ + ": cannot write: " + std::strerror(errno)};
        return {};
    }
    // A recording that cannot be finished (a full disk) is an error: never a silently short file.
    void stop() override {
        if (auto error = finish()) (void)report_error(make_error_code(Errc::io_error), *error);
    }
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
            if (used_ == buffer_.size() && !drain()) return write_failed();
        }
        data_bytes_ += s.size();
        since_header_ += s.size();
        if (since_header_ >= bytes_per_second_) {
            if (!drain() || !write_header(false)) return write_failed();
            since_header_ = 0;
        }
        return Flow::ok;
    }
    Flow write_failed() {
        const int err = errno;
        const std::uint64_t at = header_bytes_ + written_;
        ::close(fd_);  // nothing more can be written; stop() must not claim otherwise
        fd_ = -1;
        failed_ = true;
        return report_error(make_error_code(Errc::io_error),
                            detail::at_offset(path_, at) + "write failed: " + std::strerror(err));
    }
    bool drain() {
        std::size_t done = 0;
        while (done < used_) {
            const ssize_t n = ::pwrite(fd_, buffer_.data() + done, used_ - done, off_t(header_bytes_ + written_ + done));
            if (n < 0 && errno == EINTR) continue;
            if (n == 0) errno = ENOSPC;
            if (n <= 0) return false;
            done += std::size_t(n);
        }
        written_ += used_;
        used_ = 0;
        return true;
    }
    // Writes the header for the data written so far. `final`: the recording is complete, so a
    // size past 4 GiB turns the file into RF64; before that such sizes read "to the end".
    bool write_header(bool final) {
        const engine::MediaFormat& f = input(0).format();
        unsigned char h[kMaxHeaderBytes] = {};
        const std::uint64_t riff = header_bytes_ - 8 + data_bytes_ + (data_bytes_ & 1);
        const bool big = riff > 0xFFFFFFFFu;
        const bool as_rf64 = big && final;
        std::memcpy(h, as_rf64 ? "RF64" : "RIFF", 4);
        put32(h + 4, big ? 0xFFFFFFFFu : std::uint32_t(riff));
        std::memcpy(h + 8, "WAVE", 4);
        unsigned char* c = h + 12;
        if (as_rf64) {
            std::memcpy(c, "ds64", 4);
            put32(c + 4, kJunkBytes - 8);
            put32(c + 8, std::uint32_t(riff));
            put32(c + 12, std::uint32_t(riff >> 32));
            put32(c + 16, std::uint32_t(data_bytes_));
            put32(c + 20, std::uint32_t(data_bytes_ >> 32));
            const std::uint64_t frames = data_bytes_ / f.frame_bytes();
            put32(c + 24, std::uint32_t(frames));
            put32(c + 28, std::uint32_t(frames >> 32));
            put32(c + 32, 0);  // no table
        } else {
            std::memcpy(c, "JUNK", 4);
            put32(c + 4, kJunkBytes - 8);
        }
        c += kJunkBytes;
        std::memcpy(c, "fmt ", 4);
        put32(c + 4, is_float_ ? 18 : 16);
        put16(c + 8, is_float_ ? kFloat : kPcm);
        put16(c + 10, std::uint16_t(f.channels));
        put32(c + 12, std::uint32_t(f.rate));
        put32(c + 16, std::uint32_t(f.rate * f.frame_bytes()));
        put16(c + 20, std::uint16_t(f.frame_bytes()));
        put16(c + 22, std::uint16_t(engine::bytes_per_sample(f.sample_format) * 8));
        c += 24;
        if (is_float_) {
            put16(c, 0);  // cbSize
            std::memcpy(c + 2, "fact", 4);
            put32(c + 6, 4);
            const std::uint64_t frames = data_bytes_ / f.frame_bytes();
            put32(c + 10, frames > 0xFFFFFFFFu ? 0xFFFFFFFFu : std::uint32_t(frames));
            c += 14;
        }
        std::memcpy(c, "data", 4);
        put32(c + 4, big || data_bytes_ > 0xFFFFFFFFu ? 0xFFFFFFFFu : std::uint32_t(data_bytes_));
        c += 8;
        return std::size_t(c - h) == header_bytes_ && ::pwrite(fd_, h, header_bytes_, 0) == ssize_t(header_bytes_);
    }
    // Writes what is buffered and the final header, and closes; the error, if any.
    std::optional<std::string> finish() {
        if (fd_ < 0) {
            if (!failed_) return std::nullopt;
            failed_ = false;  // the write error was reported when it happened
            return std::nullopt;
        }
        bool ok = drain();
        if (ok && (data_bytes_ & 1)) {  // RIFF pads chunks to even sizes
            const unsigned char zero = 0;
            ok = ::pwrite(fd_, &zero, 1, off_t(header_bytes_ + data_bytes_)) == 1;
        }
        ok = ok && write_header(true);
        ok = ok && ::fsync(fd_) == 0;  // a full disk may say so only now
        const int err = errno;
        ok = ::close(fd_) == 0 && ok;
        fd_ = -1;
        if (ok) return std::nullopt;
        return path_ + ": finishing the file failed after " + std::to_string(data_bytes_) +
               " bytes of audio: " + std::strerror(err != 0 ? err : errno);
    }
    std::string path_;
    int fd_ = -1;
    bool failed_ = false;
    std::vector<std::byte> buffer_;
    std::size_t used_ = 0;
    std::uint64_t written_ = 0;       // data bytes in the file
    std::uint64_t data_bytes_ = 0;    // data bytes handed to us: written_ + used_
    std::uint64_t since_header_ = 0;  // of those, since the header was last rewritten
    std::uint64_t bytes_per_second_ = 0;
    std::size_t header_bytes_ = 0;
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

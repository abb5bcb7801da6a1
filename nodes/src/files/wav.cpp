// SPDX-License-Identifier: MIT
// WAV (RIFF WAVE and RF64) reading and writing: 16-, 24- and 32-bit PCM and 32-bit float, any
// rate and channel count, plain or WAVE_FORMAT_EXTENSIBLE headers.
//
// Our own parser rather than libsndfile: errors must name the byte offset where a file goes
// wrong, a header that claims more data than the file holds must be refused before streaming,
// the reader must not allocate while streaming, and the parser is a fuzzing target.
#include <sluice/wire/wav.hpp>

#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>

#include <algorithm>
#include <utility>
#include <optional>
#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::nodes {

namespace {

using engine::Flow;

// Reads a whole WAV header (it sits in the first few KiB) and validates it against the file size.
Status read_wav_header(const std::string& path, wire::WavInfo& info) {
    std::string error;
    const int fd = detail::open_regular_file(path, error);
    if (fd < 0) return {engine::GraphErrc::io_error, path + ": " + error};
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        ::close(fd);
        return {engine::GraphErrc::io_error, path + ": cannot stat: " + std::strerror(errno)};
    }
    unsigned char head[8192];
    const std::int64_t got = detail::read_fully(fd, head, sizeof head);
    ::close(fd);
    if (got < 0) return {engine::GraphErrc::io_error, path + ": cannot read: " + std::strerror(int(-got))};
    auto parsed = wire::parse_wav_header({head, std::size_t(got)}, std::uint64_t(st.st_size), error);
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
        if (path_.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
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
        if (fd_ < 0) return {engine::GraphErrc::io_error, path_ + ": " + error};
        position_ = 0;
        limit_.produced = 0;
        seeked_ = false;
        return {};
    }
    void stop() override { close_file(); }
    void close_file() {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    // Graph::seek: the data chunk read from the frame at or after `media_ns` (the end when past
    // it), the next sample flagged.
    bool seekable() const override { return true; }
    Status seek(std::int64_t media_ns) override {
        const engine::MediaFormat& f = output(0).format();
        const std::uint64_t frame = engine::frames_at_or_after(media_ns, f.rate);
        const std::uint64_t frames = info_.data_bytes / f.frame_bytes();
        position_ = std::min(frame, frames) * f.frame_bytes();
        seeked_ = true;
        return {};
    }

    Flow produce() override {
        const engine::MediaFormat& f = output(0).format();
        const std::size_t frame_bytes = f.frame_bytes();
        const std::uint64_t frames_done = position_ / frame_bytes;
        const std::int64_t start = engine::frames_to_ns(frames_done, f.rate);
        if (position_ >= info_.data_bytes || limit_reached(limit_, start)) return Flow::end_of_stream;
        auto s = get_buffer(0);
        if (!s) return buffer_failed(s.error());
        std::uint64_t remaining = info_.data_bytes - position_;
        if (const std::int64_t limit = media_limit_ns(); limit >= 0) {  // end exactly at the duration
            const std::uint64_t end_frame = engine::frames_at_or_after(limit, f.rate);
            remaining = std::min<std::uint64_t>(remaining, (end_frame - frames_done) * frame_bytes);
        }
        const std::size_t want = std::size_t(std::min<std::uint64_t>(frames_ * frame_bytes, remaining));
        const std::int64_t got = detail::read_fully(fd_, s->data(), want, std::int64_t(info_.data_offset + position_));
        if (got < 0)
            return report_error(make_error_code(engine::GraphErrc::io_error), path_ + ": read failed: " + std::strerror(int(-got)));
        if (std::size_t(got) < want)
            return report_error(make_error_code(engine::GraphErrc::corrupt_file),
                                detail::at_offset(path_, info_.data_offset + position_ + std::uint64_t(got)) +
                                    "file ended inside the 'data' chunk (it shrank while playing?)");
        (void)s->set_size(std::size_t(got));
        position_ += std::uint64_t(got);
        s->set_times(start, engine::frames_to_ns(position_ / frame_bytes, f.rate));
        if (limit_.produced++ == 0 || std::exchange(seeked_, false)) s->add_flags(SampleFlags::discontinuity);
        return push(0, std::move(*s));
    }

    std::string path_;
    std::size_t frames_ = 1024;
    engine::StreamLimit limit_;
    wire::WavInfo info_;
    int fd_ = -1;
    std::uint64_t position_ = 0;  // bytes of the data chunk already read
    bool seeked_ = false;         // the next sample follows a seek
};

// Writes through a fixed buffer (no allocation while streaming) and keeps the header's sizes
// right: at stop (including Ctrl-C, which stops through the same path) and about once a second,
// so even a killed process leaves a file whose header covers nearly all of its data. Past 4 GiB
// the finished file is RF64 (rf64=auto), or RF64 from the start (always), or the recording stops
// with an error where RIFF's sizes end (never): never a header that lies (see wire::write_wav_header).
class WavSink final : public Node {
public:
    WavSink(std::string name, PropertyReader& r) : Node(std::move(name), Kind::render) {
        path_ = r.text("path");
        const std::size_t choice = r.choice("format", {"auto", "s16", "s24", "s32", "f32"});
        constexpr wire::Rf64 kRf64[] = {wire::Rf64::when_needed, wire::Rf64::always, wire::Rf64::never};
        rf64_ = kRf64[r.choice("rf64", {"auto", "always", "never"})];
        if (path_.empty() && r.ok()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        engine::MediaFormat accepts = engine::MediaFormat::audio();
        constexpr engine::SampleFormat kFormats[] = {engine::SampleFormat::any, engine::SampleFormat::s16, engine::SampleFormat::s24,
                                                     engine::SampleFormat::s32, engine::SampleFormat::f32};
        accepts.sample_format = kFormats[choice];
        add_input("sink", {accepts});
    }
    ~WavSink() override { (void)finish(); }
    std::vector<FileUse> file_uses() const override { return {{path_, true}}; }

private:
    Status start() override {
        (void)finish();
        std::string error;
        fd_ = detail::open_output_file(path_, error);
        if (fd_ < 0) return {engine::GraphErrc::io_error, path_ + ": " + error};
        buffer_.resize(1 << 16);
        used_ = 0;
        written_ = 0;
        data_bytes_ = 0;
        since_header_ = 0;
        const engine::MediaFormat& f = input(0).format();
        header_bytes_ = wire::wav_header_bytes(f);
        riff_limit_ = wire::max_riff_data_bytes(f);
        bytes_per_second_ = std::uint64_t(f.rate) * f.frame_bytes();
        if (!write_header(false)) return {engine::GraphErrc::io_error, path_ + ": cannot write: " + std::strerror(errno)};
        return {};
    }
    // A recording that cannot be finished (a full disk) is an error: never a silently short file.
    void stop() override {
        if (auto error = finish()) (void)report_error(make_error_code(engine::GraphErrc::io_error), *error);
    }
    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        if (fd_ < 0) return Flow::ok;
        if (rf64_ == wire::Rf64::never && data_bytes_ + s.size() > riff_limit_) {
            // The stream ends here; stop() finishes the file, a good RIFF file of what fitted.
            return report_error(make_error_code(engine::GraphErrc::io_error),
                                path_ + ": the audio passes 4 GiB, more than a RIFF file can hold; use rf64=auto");
        }
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
        return report_error(make_error_code(engine::GraphErrc::io_error),
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
    // The header for the data written so far (wire::write_wav_header says what `final` changes).
    bool write_header(bool final) {
        unsigned char h[wire::kMaxWavHeader];
        const std::size_t n = wire::write_wav_header(input(0).format(), data_bytes_, final, h, rf64_);
        return n == header_bytes_ && ::pwrite(fd_, h, n, 0) == ssize_t(n);
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
        // A full disk may say so only now; a device (/dev/null) has nothing to sync (EINVAL).
        ok = ok && (::fsync(fd_) == 0 || errno == EINVAL);
        const int err = errno;
        ok = ::close(fd_) == 0 && ok;
        fd_ = -1;
        if (ok) return std::nullopt;
        return path_ + ": finishing the file failed after " + std::to_string(data_bytes_) +
               " bytes of audio: " + std::strerror(err != 0 ? err : errno);
    }
    std::string path_;
    wire::Rf64 rf64_ = wire::Rf64::when_needed;
    std::uint64_t riff_limit_ = 0;  // the most data a RIFF header can declare (rf64=never stops there)
    int fd_ = -1;
    bool failed_ = false;
    std::vector<std::byte> buffer_;
    std::size_t used_ = 0;
    std::uint64_t written_ = 0;       // data bytes in the file
    std::uint64_t data_bytes_ = 0;    // data bytes handed to us: written_ + used_
    std::uint64_t since_header_ = 0;  // of those, since the header was last rewritten
    std::uint64_t bytes_per_second_ = 0;
    std::size_t header_bytes_ = 0;
};

}  // namespace

NodeSpec wavsrc_spec() {
    return {"wavsrc", Node::Kind::source, "reads a WAV or RF64 file (16-, 24-, 32-bit PCM or 32-bit float; EXTENSIBLE too)",
            {{"path", "", "file to read (required)"},
             {"frames", "1024", "frames per buffer"},
             detail::num_buffers_property()},
            factory<WavSrc>()};
}

NodeSpec wavsink_spec() {
    return {"wavsink", Node::Kind::render, "writes a WAV file; its header is complete after stop and Ctrl-C",
            {{"path", "", "file to write (required)"},
             {"format", "auto", "sample format to accept: auto|s16|s24|s32|f32"},
             {"rf64", "auto", "RF64 header: auto (when the data passes 4 GiB)|always|never (stop with an error there)"}},
            factory<WavSink>()};
}

}  // namespace sluice::nodes

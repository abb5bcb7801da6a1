// SPDX-License-Identifier: MIT
// YUV4MPEG2 (.y4m) reading (8-bit 4:2:0) and writing (also 4:2:2, 4:4:4 and their 10-bit forms):
// raw planar frames behind a one-line text header ("YUV4MPEG2 W320 H240 F30:1 Ip A1:1 C420jpeg") and a "FRAME" line each.
//
// Our own reader rather than libavformat: errors must name the byte offset where a file goes
// wrong, the header is checked before the graph is built (so negotiation knows the size and
// rate), and streaming reads straight into pool samples without allocating.
#include <sluice/wire/y4m.hpp>

#include "core/common.hpp"
#include <sluice/nodes/registry.hpp>
#include "video/video_node.hpp"

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <optional>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

namespace sluice::nodes {
namespace {

using engine::Flow;
using engine::Fraction;
using engine::MediaFormat;
using engine::PixelFormat;

using wire::kY4mMaxHeader;
constexpr std::size_t kMaxFrameHeader = 1024;  // "FRAME" line with its optional parameters
constexpr std::size_t kReadBuffer = 64 * 1024;

// Up to 32 bytes of `s` for a message, non-printable bytes as '?'.
std::string printable(std::string_view s) {
    std::string out(s.substr(0, 32));
    for (char& c : out)
        if (c < 0x20 || c > 0x7e) c = '?';
    return s.size() > 32 ? out + "..." : out;
}

}  // namespace

namespace {

// Opens `path` and parses its header; the Status message is "<path>: byte N: what".
Status read_y4m_header(const std::string& path, wire::Y4mHeader& out) {
    std::string error;
    const int fd = detail::open_regular_file(path, error);
    if (fd < 0) return {engine::GraphErrc::io_error, detail::at_offset(path, 0) + error};
    char head[wire::kY4mMaxHeader];
    const std::int64_t got = detail::read_fully(fd, head, sizeof head);
    ::close(fd);
    if (got < 0) return {engine::GraphErrc::io_error, detail::at_offset(path, 0) + "cannot read: " + std::strerror(int(-got))};
    const std::string_view text(head, std::size_t(got));
    if (auto error = wire::parse_y4m_header(text, std::size_t(got) < sizeof head, out))
        return {engine::GraphErrc::corrupt_file, detail::at_offset(path, error->offset) + error->what};
    return {};
}

// Buffered reading without allocation on the streaming thread: the buffer is made in start();
// small reads (FRAME lines) go through it, frame payloads take what it already holds and then
// are read straight into the sample.
class FileReader {
public:
    void reset(int fd) {
        fd_ = fd;
        buf_.resize(kReadBuffer);
        begin_ = end_ = 0;
        offset_ = 0;
    }
    // Reads until at least `want` bytes are buffered or the file ends; returns how many are
    // buffered, or -errno. `want` <= the buffer's size.
    std::int64_t fill(std::size_t want) noexcept {
        if (end_ - begin_ >= want) return std::int64_t(end_ - begin_);
        std::memmove(buf_.data(), buf_.data() + begin_, end_ - begin_);
        end_ -= begin_;
        begin_ = 0;
        while (end_ < want) {
            const ssize_t n = ::read(fd_, buf_.data() + end_, buf_.size() - end_);
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) return -errno;
            if (n == 0) break;
            end_ += std::size_t(n);
        }
        return std::int64_t(end_);
    }
    const char* data() const noexcept { return buf_.data() + begin_; }
    void consume(std::size_t n) noexcept {
        begin_ += n;
        offset_ += n;
    }
    // Reads `n` bytes into `dst`, buffered ones first; returns how many (fewer only at the end
    // of the file), or -errno.
    std::int64_t read(std::byte* dst, std::size_t n) noexcept {
        std::size_t got = std::min(n, end_ - begin_);
        std::memcpy(dst, buf_.data() + begin_, got);
        consume(got);
        if (got == n) return std::int64_t(got);
        const std::int64_t more = detail::read_fully(fd_, dst + got, n - got);
        if (more < 0) return more;
        offset_ += std::uint64_t(more);
        return std::int64_t(got) + more;
    }
    // File offset of data().
    std::uint64_t offset() const noexcept { return offset_; }

private:
    int fd_ = -1;
    std::vector<char> buf_;
    std::size_t begin_ = 0, end_ = 0;  // unread bytes are buf_[begin_, end_)
    std::uint64_t offset_ = 0;
};

class Y4mSrc final : public detail::VideoNode {
public:
    Y4mSrc(std::string name, PropertyReader& r) : VideoNode(std::move(name), Kind::source) {
        path_ = r.text("path");
        limit_.num_buffers = r.integer("num-buffers", -1, INT64_MAX);
        if (r.ok() && path_.empty()) {
            r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        } else if (r.ok()) {
            if (Status st = read_y4m_header(path_, header_); !st) r.fail(st.code(), st.message());
        }
        add_output("src", {MediaFormat::video(header_.width, header_.height, PixelFormat::i420, header_.fps)});
    }
    ~Y4mSrc() override { close_file(); }
    std::vector<FileUse> file_uses() const override { return {{path_, false}}; }

private:
    // Opens the file again and checks that the header still says what negotiation was told.
    Status start() override {
        close_file();
        std::string error;
        fd_ = detail::open_regular_file(path_, error);
        if (fd_ < 0) return {engine::GraphErrc::io_error, detail::at_offset(path_, 0) + error};
        reader_.reset(fd_);
        auto failed = [this](engine::GraphErrc code, std::uint64_t offset, const std::string& what) -> Status {
            close_file();  // the graph calls stop() only on nodes that started
            return {code, detail::at_offset(path_, offset) + what};
        };
        const std::int64_t got = reader_.fill(wire::kY4mMaxHeader);
        if (got < 0) return failed(engine::GraphErrc::io_error, 0, "cannot read: " + std::string(std::strerror(int(-got))));
        wire::Y4mHeader now;
        // The same bytes make() judged: the buffer may hold more than wire::kY4mMaxHeader.
        const std::string_view head(reader_.data(), std::min(std::size_t(got), wire::kY4mMaxHeader));
        if (auto error = wire::parse_y4m_header(head, std::size_t(got) < wire::kY4mMaxHeader, now))
            return failed(engine::GraphErrc::corrupt_file, error->offset, error->what);
        if (now.width != header_.width || now.height != header_.height || !(now.fps == header_.fps))
            return failed(engine::GraphErrc::corrupt_file, 0, "header changed since the node was made");
        reader_.consume(now.bytes);
        frame_bytes_ = output(0).format().frame_bytes();
        limit_.produced = 0;
        return {};
    }
    void stop() override { close_file(); }

    void close_file() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    MediaTime time_of(std::uint64_t n) const noexcept { return detail::frame_start(header_.fps, n); }

    Flow fail(engine::GraphErrc code, std::uint64_t offset, const std::string& what) {
        return report_error(make_error_code(code), detail::at_offset(path_, offset) + what);
    }

    Flow produce() override {
        const std::uint64_t n = limit_.produced;
        const MediaTime start = time_of(n);
        if (limit_reached(limit_, start)) return Flow::end_of_stream;

        const std::uint64_t at = reader_.offset();
        const std::int64_t got = reader_.fill(kMaxFrameHeader);
        if (got < 0) return fail(engine::GraphErrc::io_error, at, "cannot read: " + std::string(std::strerror(int(-got))));
        if (got == 0) return Flow::end_of_stream;  // the file ends where a frame would start
        const std::string_view head(reader_.data(), std::size_t(got));
        if (!head.starts_with("FRAME") || (head.size() > 5 && head[5] != ' ' && head[5] != '\n')) {
            if (std::string_view("FRAME").starts_with(head))  // "FRA" and the end of the file
                return fail(engine::GraphErrc::corrupt_file, at,
                            "frame " + std::to_string(n) + " is truncated: expected a FRAME line and " +
                                std::to_string(frame_bytes_) + " bytes, found " + std::to_string(head.size()));
            return fail(engine::GraphErrc::corrupt_file, at,
                        "frame " + std::to_string(n) + ": expected \"FRAME\", found \"" + printable(head.substr(0, 8)) + "\"");
        }
        const std::size_t eol = head.substr(0, kMaxFrameHeader).find('\n');
        if (eol == std::string_view::npos)
            return fail(engine::GraphErrc::corrupt_file, at,
                        head.size() < kMaxFrameHeader
                            ? "frame " + std::to_string(n) + " is truncated inside its FRAME line"
                            : "frame " + std::to_string(n) + ": FRAME line longer than " + std::to_string(kMaxFrameHeader) + " bytes");
        reader_.consume(eol + 1);

        SampleRef s;
        if (Flow flow = picture_buffer(frame_bytes_, s); flow != Flow::ok) return flow;
        const std::int64_t read = reader_.read(s.data(), frame_bytes_);
        if (read < 0) {
            s.discard();
            return fail(engine::GraphErrc::io_error, reader_.offset(), "cannot read: " + std::string(std::strerror(int(-read))));
        }
        if (std::size_t(read) < frame_bytes_) {
            s.discard();
            return fail(engine::GraphErrc::corrupt_file, at,
                        "frame " + std::to_string(n) + " is truncated: expected " + std::to_string(frame_bytes_) +
                            " bytes, found " + std::to_string(read));
        }
        s.set_times(start, time_of(n + 1));
        s.set_flags(SampleFlags::sync_point);
        ++limit_.produced;
        return push(0, std::move(s));
    }

    std::string path_;
    wire::Y4mHeader header_;
    engine::StreamLimit limit_;  // limit_.produced is also the index of the next frame
    std::size_t frame_bytes_ = 0;
    int fd_ = -1;  // open from start() to stop()
    FileReader reader_;
};

// Writes every byte the iovecs hold, resuming after partial writes and EINTR; 0 or an errno.
int write_all(int fd, iovec* iov, int count) noexcept {
    while (count > 0) {
        const ssize_t n = ::writev(fd, iov, count);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return errno;
        if (n == 0) return EIO;  // no progress on a non-empty write: do not spin
        std::size_t left = std::size_t(n);
        while (count > 0 && left >= iov->iov_len) {
            left -= iov->iov_len;
            ++iov;
            --count;
        }
        if (count > 0) {
            iov->iov_base = static_cast<char*>(iov->iov_base) + left;
            iov->iov_len -= left;
        }
    }
    return 0;
}

class Y4mSink final : public detail::VideoNode {
public:
    Y4mSink(std::string name, PropertyReader& r) : VideoNode(std::move(name), Kind::render) {
        path_ = r.text("path");
        if (r.ok() && path_.empty()) r.fail(make_error_code(engine::GraphErrc::invalid_argument), "property path is required");
        // I420 first: what a source open to any format is asked for, as before the others. Any
        // layout: padded rows (a decoder's own pool) are written row by row, no copy.
        add_input("sink", {MediaFormat::video(0, 0, PixelFormat::i420).with_any_layout(),
                           MediaFormat::video(0, 0, PixelFormat::i422).with_any_layout(),
                           MediaFormat::video(0, 0, PixelFormat::i444).with_any_layout(),
                           MediaFormat::video(0, 0, PixelFormat::i420p10).with_any_layout(),
                           MediaFormat::video(0, 0, PixelFormat::i422p10).with_any_layout(),
                           MediaFormat::video(0, 0, PixelFormat::i444p10).with_any_layout()});
    }
    ~Y4mSink() override { close_file(); }
    std::vector<FileUse> file_uses() const override { return {{path_, true}}; }

private:
    Status start() override {
        close_file();
        std::string error;
        fd_ = detail::open_output_file(path_, error);
        if (fd_ < 0) return {engine::GraphErrc::io_error, path_ + ": " + error};
        const MediaFormat& f = input(0).format();
        frame_bytes_ = f.frame_bytes();
        // Padded pictures go out as one iovec per row; the list is made here, not per picture.
        const engine::PictureLayout layout = engine::picture_layout(f);
        picture_bytes_ = 0;
        rows_.clear();
        if (!f.packed()) {
            rows_.push_back({const_cast<char*>(kFrame), sizeof kFrame - 1});
            for (int p = 0; p < layout.planes; ++p)
                for (std::size_t y = 0; y < layout.plane[p].rows; ++y)
                    rows_.push_back({reinterpret_cast<void*>(layout.plane[p].offset + y * layout.plane[p].stride),
                                     layout.plane[p].row_bytes});
            row_iov_.resize(rows_.size());
        }
        for (int p = 0; p < layout.planes; ++p) picture_bytes_ += layout.plane[p].rows * layout.plane[p].row_bytes;
        std::string header = wire::y4m_header_line(f);
        iovec iov{header.data(), header.size()};
        if (int err = write_all(fd_, &iov, 1)) {
            close_file();
            return {engine::GraphErrc::io_error, detail::at_offset(path_, 0) + "cannot write the header: " + std::strerror(err)};
        }
        offset_ = header.size();
        return {};
    }

    void stop() override {
        if (fd_ < 0) return;
        // A full disk (or a network file system) may report a failed write only at fsync or
        // close; a device (/dev/null) has nothing to sync (EINVAL).
        const bool synced = ::fsync(fd_) == 0 || errno == EINVAL;
        const int sync_error = errno;
        const bool closed = ::close(fd_) == 0;
        fd_ = -1;
        if (!synced || !closed)
            (void)report_error(make_error_code(engine::GraphErrc::io_error),
                               detail::at_offset(path_, offset_) + "finishing the file failed: " +
                                   std::strerror(!synced ? sync_error : errno));
    }

    void close_file() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

    Flow process(std::size_t, SampleRef&& s) override {
        if (Flow f = present(s); f != Flow::ok) return f;
        if (s.size() != frame_bytes_) return short_sample(s.size(), frame_bytes_);
        int err = 0;
        if (rows_.empty()) {
            iovec iov[2] = {{const_cast<char*>(kFrame), sizeof kFrame - 1}, {s.data(), frame_bytes_}};
            err = write_all(fd_, iov, 2);
        } else {
            // Row offsets made absolute for this picture, written IOV_MAX rows at a time.
            row_iov_[0] = rows_[0];
            for (std::size_t i = 1; i < rows_.size(); ++i)
                row_iov_[i] = {s.data() + reinterpret_cast<std::uintptr_t>(rows_[i].iov_base), rows_[i].iov_len};
            for (std::size_t i = 0; i < row_iov_.size() && err == 0; i += kMaxIov)
                err = write_all(fd_, row_iov_.data() + i, int(std::min(kMaxIov, row_iov_.size() - i)));
        }
        if (err)
            return report_error(make_error_code(engine::GraphErrc::io_error),
                                detail::at_offset(path_, offset_) + "write failed: " + std::strerror(err));
        offset_ += sizeof kFrame - 1 + picture_bytes_;
        return Flow::ok;
    }

    static constexpr char kFrame[] = "FRAME\n";
    static constexpr std::size_t kMaxIov = 1024;  // IOV_MAX on Linux
    std::vector<iovec> rows_;     // padded layout: "FRAME\n", then each row as an offset into the picture
    std::vector<iovec> row_iov_;  // the same with this picture's addresses
    std::size_t picture_bytes_ = 0;  // what a FRAME holds in the file: the rows without padding

    std::string path_;
    int fd_ = -1;  // open from start() to stop()
    std::size_t frame_bytes_ = 0;
    std::uint64_t offset_ = 0;  // bytes written so far: where the next FRAME goes
};

}  // namespace

NodeSpec y4msrc_spec() {
    return {"y4msrc", Node::Kind::source, "reads a YUV4MPEG2 (.y4m) file, 8-bit 4:2:0, as I420 frames",
            {{"path", "", "file to read"}, detail::num_buffers_property()},
            factory<Y4mSrc>()};
}

NodeSpec y4msink_spec() {
    return {"y4msink", Node::Kind::render,
            "writes I420, I422 or I444 frames, 8 or 10 bits, to a YUV4MPEG2 (.y4m) file",
            {{"path", "", "file to write (created or truncated)"}},
            factory<Y4mSink>()};
}

}  // namespace sluice::nodes

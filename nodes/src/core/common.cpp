// SPDX-License-Identifier: MIT
#include "core/common.hpp"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

namespace sluice::nodes::detail {

int open_regular_file(const std::string& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        error = std::string("cannot open: ") + std::strerror(errno);
        return -1;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        const bool fifo = S_ISFIFO(st.st_mode);
        ::close(fd);
        error = fifo ? "is a FIFO; only regular files can be read (their size must be known)" : "not a regular file";
        return -1;
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

int open_output_file(const std::string& path, std::string& error) {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NONBLOCK, 0644);
    if (fd < 0) {
        error = errno == ENXIO ? "is a FIFO nobody reads; only regular files and devices can be written"
                               : std::string("cannot open for writing: ") + std::strerror(errno);
        return -1;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || S_ISFIFO(st.st_mode) || S_ISSOCK(st.st_mode)) {
        ::close(fd);
        error = "is a FIFO or socket; only regular files and devices can be written (a file must be finished at the end)";
        return -1;
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) (void)::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

Status write_text_file(const std::string& path, std::string_view text, const char* what) {
    std::string error;
    const int fd = open_output_file(path, error);
    if (fd < 0) return {engine::GraphErrc::io_error, std::string(what) + " " + path + ": " + error};
    for (std::size_t done = 0; done < text.size();) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const int err = n < 0 ? errno : EIO;
            ::close(fd);
            return {engine::GraphErrc::io_error, std::string(what) + " " + path + ": " + std::strerror(err)};
        }
        done += std::size_t(n);
    }
    if (::close(fd) != 0) return {engine::GraphErrc::io_error, std::string(what) + " " + path + ": " + std::strerror(errno)};
    return {};
}

std::int64_t read_fully(int fd, void* dst, std::size_t n, std::int64_t offset) noexcept {
    auto* out = static_cast<char*>(dst);
    std::size_t got = 0;
    while (got < n) {
        const ssize_t r = offset >= 0 ? ::pread(fd, out + got, n - got, off_t(offset + std::int64_t(got)))
                                      : ::read(fd, out + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) return -errno;
        if (r == 0) break;
        got += std::size_t(r);
    }
    return std::int64_t(got);
}

}  // namespace sluice::nodes::detail

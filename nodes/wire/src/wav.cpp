// SPDX-License-Identifier: MIT
// WAV (RIFF WAVE and RF64) headers: reading, checked against the file, and writing.
//
// Our own parser rather than libsndfile: errors must name the byte offset where a file goes
// wrong, a header that claims more data than the file holds must be refused before streaming,
// the reader must not allocate while streaming, and the parser is a fuzzing target.
#include <sluice/wire/wav.hpp>

#include <algorithm>
#include <cstring>

namespace sluice::wire {

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
constexpr std::size_t kJunkBytes = 36;  // 8 + 28: room for RF64's ds64 chunk
// KSDATAFORMAT_SUBTYPE_PCM and _IEEE_FLOAT after their first two bytes (the format tag):
// {0000000X-0000-0010-8000-00AA00389B71} as stored, little-endian fields first.
constexpr unsigned char kSubformatTail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                              0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};

// WAVE_FORMAT_EXTENSIBLE for more than two channels or more than 16 integer bits, as ffmpeg's
// ff_put_wav_header() decides (it also does for rates above 48 kHz; we keep those plain, which
// every reader takes). Plain 16-bit and float mono and stereo headers stay as they always were.
bool extensible(const engine::MediaFormat& f) {
    return f.channels > 2 || (f.sample_format != engine::SampleFormat::f32 && engine::bytes_per_sample(f.sample_format) > 2);
}

// The speaker positions of ffmpeg's default layout for the channel count (av_channel_layout_default):
// mono FC, stereo, 2.1, 4.0, 5.0, 5.1, 6.1, 7.1; none past 8 channels.
std::uint32_t default_channel_mask(int channels) {
    constexpr std::uint32_t kMasks[] = {0, 0x4, 0x3, 0xB, 0x107, 0x37, 0x3F, 0x70F, 0x63F};
    return channels >= 1 && channels <= 8 ? kMasks[channels] : 0;
}

}  // namespace

Result<WavInfo> parse_wav_header(std::span<const unsigned char> file, std::uint64_t file_size, std::string& error) {
    auto fail = [&](std::uint64_t offset, const std::string& what) -> Result<WavInfo> {
        error = "byte " + std::to_string(offset) + ": " + what;
        return unexpected(make_error_code(engine::GraphErrc::corrupt_file));
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
                // Valid bits (f + 18) may be fewer than the container's: the samples still fill
                // it from the top, so they read the same.
                info.channel_mask = le32(f + 20);
                // The subformat GUID: the format tag in its first two bytes, then the fixed tail
                // of KSDATAFORMAT_SUBTYPE_PCM and _IEEE_FLOAT.
                if (std::memcmp(f + 26, kSubformatTail, sizeof kSubformatTail) != 0)
                    return fail(pos + 32, "WAVE_FORMAT_EXTENSIBLE subformat is not PCM or IEEE float");
                tag = le16(f + 24);
            }
            if (tag == kPcm && bits == 16) info.format = engine::SampleFormat::s16;
            else if (tag == kPcm && bits == 24) info.format = engine::SampleFormat::s24;
            else if (tag == kPcm && bits == 32) info.format = engine::SampleFormat::s32;
            else if (tag == kFloat && bits == 32) info.format = engine::SampleFormat::f32;
            else
                return fail(pos + 8, "unsupported sample format (tag " + std::to_string(tag) + ", " + std::to_string(bits) +
                                         " bits); only 16-, 24- and 32-bit PCM and 32-bit float");
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
            info.rf64 = rf64;
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

std::size_t wav_header_bytes(const engine::MediaFormat& f) noexcept {
    const bool is_float = f.sample_format == engine::SampleFormat::f32;
    const std::size_t fmt = extensible(f) ? 40 : is_float ? 18 : 16;
    return 12 + kJunkBytes + 8 + fmt + (is_float ? 12 : 0) + 8;  // RIFF, JUNK, fmt, [fact], data
}

std::uint64_t max_riff_data_bytes(const engine::MediaFormat& f) noexcept {
    const std::uint64_t frame = std::max<std::uint64_t>(f.frame_bytes(), 1);
    const std::uint64_t room = 0xFFFFFFFFu - (wav_header_bytes(f) - 8);  // what the RIFF size leaves for data
    std::uint64_t bytes = room - room % frame;
    while (bytes + (bytes & 1) > room) bytes -= frame;  // an odd size is padded by a byte
    return bytes;
}

std::size_t write_wav_header(const engine::MediaFormat& f, std::uint64_t data_bytes, bool final,
                             unsigned char* out, Rf64 rf64) noexcept {
    const bool is_float = f.sample_format == engine::SampleFormat::f32;
    const bool is_extensible = extensible(f);
    const std::size_t header_bytes = wav_header_bytes(f);
    unsigned char* h = out;
    std::memset(h, 0, header_bytes);
    const std::uint64_t riff = header_bytes - 8 + data_bytes + (data_bytes & 1);
    const bool big = riff > 0xFFFFFFFFu;
    const bool as_rf64 = rf64 == Rf64::always || (big && final && rf64 == Rf64::when_needed);
    std::memcpy(h, as_rf64 ? "RF64" : "RIFF", 4);
    put32(h + 4, big || as_rf64 ? 0xFFFFFFFFu : std::uint32_t(riff));
    std::memcpy(h + 8, "WAVE", 4);
    unsigned char* c = h + 12;
    const std::uint64_t frames = data_bytes / f.frame_bytes();
    if (as_rf64) {
        std::memcpy(c, "ds64", 4);
        put32(c + 4, kJunkBytes - 8);
        put32(c + 8, std::uint32_t(riff));
        put32(c + 12, std::uint32_t(riff >> 32));
        put32(c + 16, std::uint32_t(data_bytes));
        put32(c + 20, std::uint32_t(data_bytes >> 32));
        put32(c + 24, std::uint32_t(frames));
        put32(c + 28, std::uint32_t(frames >> 32));
        put32(c + 32, 0);  // no table
    } else {
        std::memcpy(c, "JUNK", 4);
        put32(c + 4, kJunkBytes - 8);
    }
    c += kJunkBytes;
    const std::uint16_t tag = is_float ? kFloat : kPcm;
    const auto bits = std::uint16_t(engine::bytes_per_sample(f.sample_format) * 8);
    std::memcpy(c, "fmt ", 4);
    put32(c + 4, is_extensible ? 40 : is_float ? 18 : 16);
    put16(c + 8, is_extensible ? kExtensible : tag);
    put16(c + 10, std::uint16_t(f.channels));
    put32(c + 12, std::uint32_t(f.rate));
    put32(c + 16, std::uint32_t(f.rate * f.frame_bytes()));
    put16(c + 20, std::uint16_t(f.frame_bytes()));
    put16(c + 22, bits);
    c += 24;
    if (is_extensible) {
        put16(c, 22);        // cbSize
        put16(c + 2, bits);  // valid bits: all of them
        put32(c + 4, default_channel_mask(f.channels));
        put16(c + 8, tag);   // the subformat GUID
        std::memcpy(c + 10, kSubformatTail, sizeof kSubformatTail);
        c += 24;
    } else if (is_float) {
        put16(c, 0);  // cbSize
        c += 2;
    }
    if (is_float) {
        std::memcpy(c, "fact", 4);
        put32(c + 4, 4);
        put32(c + 8, frames > 0xFFFFFFFFu ? 0xFFFFFFFFu : std::uint32_t(frames));  // RF64: ds64 has it too
        c += 12;
    }
    std::memcpy(c, "data", 4);
    put32(c + 4, big || as_rf64 ? 0xFFFFFFFFu : std::uint32_t(data_bytes));
    c += 8;
    return std::size_t(c - h);
}

}  // namespace sluice::wire

// SPDX-License-Identifier: MIT
#include <sluice/wire/sdp.hpp>

#include <charconv>
#include <cstdio>
#include <random>
#include <vector>

namespace sluice::wire {

namespace {

constexpr std::size_t kMaxText = 64 * 1024;
constexpr std::size_t kMaxLine = 4096;

// A whole decimal number in [min, max], nothing else.
bool whole(std::string_view s, std::int64_t min, std::int64_t max, std::int64_t& out) {
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && end == s.data() + s.size() && out >= min && out <= max;
}

std::vector<std::string_view> split(std::string_view s, char by) {
    std::vector<std::string_view> parts;
    for (std::size_t at = 0;;) {
        const std::size_t next = s.find(by, at);
        parts.push_back(s.substr(at, next == std::string_view::npos ? std::string_view::npos : next - at));
        if (next == std::string_view::npos) return parts;
        at = next + 1;
    }
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
    return s;
}

std::string printable(std::string_view s) {
    std::string out;
    for (const char c : s.substr(0, 80)) {
        const auto u = static_cast<unsigned char>(c);
        if (u >= 0x20 && u < 0x7F) {
            out += c;
        } else {
            char hex[5];
            std::snprintf(hex, sizeof hex, "\\x%02x", u);
            out += hex;
        }
    }
    return out;
}

}  // namespace

const char* sdp_sampling(engine::PixelFormat f) noexcept {
    switch (f) {
        case engine::PixelFormat::i420: return "YCbCr-4:2:0";
        case engine::PixelFormat::rgba: return "RGBA";
        default: return nullptr;
    }
}

engine::PixelFormat pixel_format_of_sampling(std::string_view sampling) noexcept {
    if (sampling == "YCbCr-4:2:0") return engine::PixelFormat::i420;
    if (sampling == "RGBA") return engine::PixelFormat::rgba;
    return engine::PixelFormat::any;
}

std::string write_sdp(const SdpStream& s) {
    // The session id: any number unique enough to tell two descriptions apart (RFC 8866 5.2
    // suggests an NTP timestamp; a random one serves as well).
    std::random_device random;
    const unsigned long long id = (std::uint64_t(random()) << 32 | random()) & 0x7FFFFFFFFFFFFFFFULL;
    std::string out;
    auto line = [&](const std::string& text) { out += text + "\r\n"; };
    line("v=0");
    line("o=- " + std::to_string(id) + " 1 IN IP4 " + (s.address.empty() ? std::string("127.0.0.1") : s.address));
    line("s=" + (s.session.empty() ? std::string("Sluice") : s.session));
    // RFC 8866 5.7: an IPv4 multicast address carries its TTL.
    line("c=IN IP4 " + s.address + (s.ttl > 0 && !s.address.empty() ? "/" + std::to_string(s.ttl) : std::string()));
    line("t=0 0");
    const std::string pt = std::to_string(s.payload_type);
    if (s.media == SdpStream::Media::audio) {
        line("m=audio " + std::to_string(s.port) + " RTP/AVP " + pt);
        line("a=rtpmap:" + pt + " " + s.encoding + "/" + std::to_string(s.clock_rate) + "/" + std::to_string(s.channels));
        if (s.ptime_ms > 0) {
            char ptime[32];
            std::snprintf(ptime, sizeof ptime, "%g", s.ptime_ms);
            line(std::string("a=ptime:") + ptime);
        }
        if (!s.ts_refclk.empty()) line("a=ts-refclk:" + s.ts_refclk);
        if (!s.mediaclk.empty()) line("a=mediaclk:" + s.mediaclk);
    } else {
        line("m=video " + std::to_string(s.port) + " RTP/AVP " + pt);
        line("a=rtpmap:" + pt + " " + (s.encoding.empty() ? std::string("raw") : s.encoding) + "/" +
             std::to_string(s.clock_rate > 0 ? s.clock_rate : 90000));  // RFC 4175: raw/90000
        std::string fmtp = "a=fmtp:" + pt + " sampling=" + s.sampling + "; width=" + std::to_string(s.width) +
                           "; height=" + std::to_string(s.height) + "; depth=" + std::to_string(s.depth);
        if (s.exactframerate.num > 0)
            fmtp += "; exactframerate=" + std::to_string(s.exactframerate.num) +
                    (s.exactframerate.den != 1 ? "/" + std::to_string(s.exactframerate.den) : std::string());
        if (!s.colorimetry.empty()) fmtp += "; colorimetry=" + s.colorimetry;
        line(fmtp);
    }
    line("a=recvonly");  // the description is for the receiver
    return out;
}

std::optional<SdpParseError> parse_sdp(std::string_view text, SdpStream& out) {
    if (text.size() > kMaxText) return SdpParseError{0, "more than 64 KiB: not a session description"};
    SdpStream s;
    bool in_media = false, found = false, have_rtpmap = false, version = false;
    bool any_media = false;  // an m= line seen: what follows is no longer session level
    std::string session_address, media_address;
    int session_ttl = 0, media_ttl = 0;
    int number = 0;
    for (std::string_view rest = text; !rest.empty();) {
        const std::size_t nl = rest.find('\n');
        const std::string_view raw = rest.substr(0, nl);
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
        ++number;
        if (raw.size() > kMaxLine) return SdpParseError{number, "a line longer than 4 KiB"};
        const std::string_view line = trim(raw);
        if (line.empty()) continue;
        if (line.size() < 2 || line[1] != '=')
            return SdpParseError{number, "'" + printable(line) + "' is not a type=value line"};
        const char type = line[0];
        const std::string_view value = line.substr(2);
        if (number == 1 && type != 'v') return SdpParseError{1, "does not start with v=0: not a session description"};
        if (type == 'v') version = value == "0";
        if (type == 's' && !in_media) s.session = std::string(value);
        if (type == 'm') {
            if (found) break;  // the first RTP stream is the one
            any_media = true;
            const auto words = split(value, ' ');
            in_media = false;
            if (words.size() < 4 || (words[0] != "audio" && words[0] != "video")) continue;  // another kind: skipped
            if (words[2] != "RTP/AVP" && words[2] != "RTP/AVPF") continue;
            std::int64_t port = 0, pt = 0;
            const std::string_view port_word = split(words[1], '/')[0];  // "5004/2": a port count, ignored
            if (!whole(port_word, 1, 65535, port))
                return SdpParseError{number, "port '" + printable(words[1]) + "' is not from 1 to 65535"};
            if (!whole(words[3], 0, 127, pt))
                return SdpParseError{number, "payload type '" + printable(words[3]) + "' is not from 0 to 127"};
            s.media = words[0] == "audio" ? SdpStream::Media::audio : SdpStream::Media::video;
            s.port = std::uint16_t(port);
            s.payload_type = int(pt);
            in_media = found = true;
            if (s.media == SdpStream::Media::audio && (pt == 10 || pt == 11)) {  // RFC 3551's static L16 types
                s.encoding = "L16";
                s.clock_rate = 44100;
                s.channels = pt == 10 ? 2 : 1;
                have_rtpmap = true;
            }
            continue;
        }
        if (type == 'c') {
            const auto words = split(value, ' ');
            if (words.size() != 3 || words[0] != "IN")
                return SdpParseError{number, "connection '" + printable(value) + "' is not 'IN IP4 address'"};
            if (words[1] != "IP4") return SdpParseError{number, "only IPv4 connections are supported, not " + printable(words[1])};
            const auto parts = split(words[2], '/');
            (in_media ? media_address : session_address) = std::string(parts[0]);
            // A multicast address's TTL (a number of hops, 1-255); anything else is not kept.
            int ttl = 0;
            if (parts.size() > 1 && !parts[0].empty()) {
                const std::string_view t = parts[1];
                const auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), ttl);
                if (ec != std::errc() || end != t.data() + t.size() || ttl < 1 || ttl > 255) ttl = 0;
            }
            (in_media ? media_ttl : session_ttl) = ttl;
            continue;
        }
        if (type != 'a') continue;
        const std::size_t colon = value.find(':');
        const std::string_view name = value.substr(0, colon);
        const std::string_view arg = colon == std::string_view::npos ? std::string_view{} : value.substr(colon + 1);
        // RFC 7273: clock lines at session level hold for every stream, a media level one wins.
        if ((name == "ts-refclk" || name == "mediaclk") && (in_media || !any_media)) {
            (name == "ts-refclk" ? s.ts_refclk : s.mediaclk) = printable(trim(arg));
            continue;
        }
        if (!in_media) continue;
        const std::string pt_prefix = std::to_string(s.payload_type) + " ";
        if (name == "rtpmap" && arg.starts_with(pt_prefix)) {
            const auto parts = split(trim(arg.substr(pt_prefix.size())), '/');
            std::int64_t rate = 0, channels = 1;
            if (parts.size() < 2 || !whole(parts[1], 1, 10'000'000, rate))
                return SdpParseError{number, "rtpmap '" + printable(arg) + "' is not 'pt encoding/rate[/channels]'"};
            if (parts.size() >= 3 && !whole(parts[2], 1, 64, channels))
                return SdpParseError{number, "rtpmap channels '" + printable(parts[2]) + "' are not from 1 to 64"};
            s.encoding = std::string(parts[0]);
            s.clock_rate = int(rate);
            s.channels = int(channels);
            have_rtpmap = true;
        } else if (name == "fmtp" && arg.starts_with(pt_prefix)) {
            for (std::string_view p : split(arg.substr(pt_prefix.size()), ';')) {
                p = trim(p);
                const std::size_t eq = p.find('=');
                if (eq == std::string_view::npos) continue;
                const std::string_view key = trim(p.substr(0, eq)), v = trim(p.substr(eq + 1));
                std::int64_t n = 0;
                if (key == "sampling") s.sampling = std::string(v);
                else if (key == "colorimetry") s.colorimetry = std::string(v);
                else if (key == "width" || key == "height" || key == "depth") {
                    if (!whole(v, 1, 32767, n))
                        return SdpParseError{number, "fmtp " + std::string(key) + "=" + printable(v) + " is not from 1 to 32767"};
                    (key == "width" ? s.width : key == "height" ? s.height : s.depth) = int(n);
                } else if (key == "exactframerate") {
                    const auto f = split(v, '/');
                    std::int64_t num = 0, den = 1;
                    if (f.size() > 2 || !whole(f[0], 1, 1'000'000, num) || (f.size() == 2 && !whole(f[1], 1, 1'000'000, den)))
                        return SdpParseError{number, "fmtp exactframerate=" + printable(v) + " is not a rate like 30 or 30000/1001"};
                    s.exactframerate = {int(num), int(den)};
                }
            }
        } else if (name == "ptime") {
            double ms = 0;
            const auto [end, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), ms);
            if (ec == std::errc() && end == arg.data() + arg.size() && ms > 0 && ms < 10'000) s.ptime_ms = ms;
        }
    }
    if (!version) return SdpParseError{0, "no v=0 line: not a session description"};
    if (!found) return SdpParseError{0, "no audio or video RTP stream (m=audio or m=video with RTP/AVP)"};
    if (!have_rtpmap)
        return SdpParseError{0, "no a=rtpmap for payload type " + std::to_string(s.payload_type) + ": its encoding is unknown"};
    s.address = !media_address.empty() ? media_address : session_address;
    s.ttl = !media_address.empty() ? media_ttl : session_ttl;
    out = std::move(s);
    return std::nullopt;
}

}  // namespace sluice::wire

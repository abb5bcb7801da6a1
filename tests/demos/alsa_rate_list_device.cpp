// SPDX-License-Identifier: MIT
// A sound device that takes a list of rates, for the rate negotiation tests: an external PCM
// plugin for alsa-lib (its ioplug interface, as the JACK and PulseAudio plugins are written) that
// plays like alsa-lib's `file` plugin over `null` (every frame written goes to a file, at once)
// but takes only what a USB sound card typically does: 44.1, 48 and 96 kHz, stereo, S16_LE or
// S32_LE. alsa-lib's own software devices take any rate (plug converts, null and file take
// anything), and this machine has no sound card whose hardware parameters hold such a list.
//
//   pcm_type.sluice_rates { lib "/path/libsluice_alsa_rate_list.so" }
//   pcm.card { type sluice_rates file "/tmp/played.raw" }
//
// At hw_params it writes "RATE CHANNELS FORMAT" into FILE.params, the parameters the device was
// opened with, for the test to read. Captured, it gives silence, as fast as it is read.
#include <alsa/asoundlib.h>
#include <alsa/pcm_external.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

namespace {

struct RateListPcm {
    snd_pcm_ioplug_t io{};
    std::string path;
    std::FILE* out = nullptr;
    snd_pcm_uframes_t played = 0;    // frames written, or read
    snd_pcm_uframes_t captured = 0;  // frames the capture side has made
};

RateListPcm& self(snd_pcm_ioplug_t* io) { return *static_cast<RateListPcm*>(io->private_data); }

int start(snd_pcm_ioplug_t*) { return 0; }
int stop(snd_pcm_ioplug_t*) { return 0; }

// Everything written is played at once, as by the null device: the ring is always empty.
// Captured, a period more is there each time alsa-lib asks, up to a full ring. Positions run on
// unwrapped (SND_PCM_IOPLUG_FLAG_BOUNDARY_WA): a write of a whole ring is then progress, where
// its position modulo the ring would look like none.
snd_pcm_sframes_t pointer(snd_pcm_ioplug_t* io) {
    RateListPcm& p = self(io);
    if (io->stream == SND_PCM_STREAM_PLAYBACK) return snd_pcm_sframes_t(p.played);
    if (p.captured + io->period_size <= p.played + io->buffer_size) p.captured += io->period_size;
    return snd_pcm_sframes_t(p.captured);
}

// alsa-lib starts its positions at 0 again.
int prepare(snd_pcm_ioplug_t* io) {
    self(io).played = self(io).captured = 0;
    return 0;
}

snd_pcm_sframes_t transfer(snd_pcm_ioplug_t* io, const snd_pcm_channel_area_t* areas, snd_pcm_uframes_t offset,
                           snd_pcm_uframes_t size) {
    RateListPcm& p = self(io);
    auto* base = static_cast<char*>(areas[0].addr) + (areas[0].first + offset * areas[0].step) / 8;
    const std::size_t bytes = std::size_t(size) * (areas[0].step / 8);  // interleaved: step is a frame
    if (io->stream == SND_PCM_STREAM_CAPTURE) std::memset(base, 0, bytes);
    else if (std::fwrite(base, 1, bytes, p.out) != bytes) return -EIO;
    p.played += size;
    return snd_pcm_sframes_t(size);
}

int hw_params(snd_pcm_ioplug_t* io, snd_pcm_hw_params_t*) {
    std::FILE* f = std::fopen((self(io).path + ".params").c_str(), "w");
    if (f == nullptr) return -errno;
    std::fprintf(f, "%u %u %s\n", io->rate, io->channels, snd_pcm_format_name(io->format));
    std::fclose(f);
    return 0;
}

int close_pcm(snd_pcm_ioplug_t* io) {
    RateListPcm* p = &self(io);
    if (p->out) std::fclose(p->out);
    if (io->poll_fd >= 0) ::close(io->poll_fd);
    delete p;
    return 0;
}

const snd_pcm_ioplug_callback_t kCallbacks = [] {
    snd_pcm_ioplug_callback_t c{};
    c.start = start;
    c.stop = stop;
    c.pointer = pointer;
    c.transfer = transfer;
    c.hw_params = hw_params;
    c.prepare = prepare;
    c.close = close_pcm;
    return c;
}();

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int _snd_pcm_sluice_rates_open(snd_pcm_t** pcmp, const char* name, snd_config_t*,
                                                                     snd_config_t* conf, snd_pcm_stream_t stream, int mode) {
    const char* file = nullptr;
    snd_config_iterator_t i, next;
    snd_config_for_each(i, next, conf) {
        snd_config_t* n = snd_config_iterator_entry(i);
        const char* id = nullptr;
        if (snd_config_get_id(n, &id) < 0) continue;
        const std::string key = id;
        if (key == "comment" || key == "type" || key == "hint") continue;
        if (key == "file" && snd_config_get_string(n, &file) >= 0) continue;
        SNDERR("sluice_rates: unknown field %s", id);
        return -EINVAL;
    }
    if (file == nullptr) {
        SNDERR("sluice_rates: needs file \"PATH\"");
        return -EINVAL;
    }
    RateListPcm* p = nullptr;
    try {  // nothing may throw into alsa-lib's C
        p = new RateListPcm;
        p->path = file;
    } catch (...) {
        delete p;
        return -ENOMEM;
    }
    if (stream == SND_PCM_STREAM_PLAYBACK) p->out = std::fopen(file, "wb");
    // An eventfd with a count is always readable and writable: poll says there is room, or
    // something to read, as the null device's does.
    const int fd = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    if ((stream == SND_PCM_STREAM_PLAYBACK && p->out == nullptr) || fd < 0) {
        const int err = errno;
        if (p->out) std::fclose(p->out);
        if (fd >= 0) ::close(fd);
        delete p;
        return -err;
    }
    p->io.version = SND_PCM_IOPLUG_VERSION;
    p->io.flags = SND_PCM_IOPLUG_FLAG_BOUNDARY_WA;
    p->io.name = "Sluice test card: 44.1, 48 and 96 kHz";
    p->io.callback = &kCallbacks;
    p->io.private_data = p;
    p->io.poll_fd = fd;
    p->io.poll_events = stream == SND_PCM_STREAM_PLAYBACK ? POLLOUT : POLLIN;
    p->io.mmap_rw = 0;
    if (int e = snd_pcm_ioplug_create(&p->io, name, stream, mode); e < 0) {
        if (p->out) std::fclose(p->out);
        ::close(fd);
        delete p;
        return e;
    }
    const unsigned access[] = {SND_PCM_ACCESS_RW_INTERLEAVED};
    const unsigned formats[] = {SND_PCM_FORMAT_S16_LE, SND_PCM_FORMAT_S32_LE};
    const unsigned rates[] = {44100, 48000, 96000};
    int e = snd_pcm_ioplug_set_param_list(&p->io, SND_PCM_IOPLUG_HW_ACCESS, 1, access);
    if (e >= 0) e = snd_pcm_ioplug_set_param_list(&p->io, SND_PCM_IOPLUG_HW_FORMAT, 2, formats);
    if (e >= 0) e = snd_pcm_ioplug_set_param_minmax(&p->io, SND_PCM_IOPLUG_HW_CHANNELS, 2, 2);
    if (e >= 0) e = snd_pcm_ioplug_set_param_list(&p->io, SND_PCM_IOPLUG_HW_RATE, 3, rates);
    if (e < 0) {
        snd_pcm_ioplug_delete(&p->io);  // calls close_pcm
        return e;
    }
    *pcmp = p->io.pcm;
    return 0;
}

// alsa-lib checks this marker before it calls an open function from a library: what
// SND_PCM_PLUGIN_SYMBOL(sluice_rates) gives in a PIC build (alsa-lib's header picks that form by a
// PIC macro that CMake does not define).
__attribute__((visibility("default"))) char __snd_pcm_sluice_rates_open_dlsym_pcm_001;

}  // extern "C"

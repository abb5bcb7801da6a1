// SPDX-License-Identifier: MIT
// A sound device one program at a time, for the "device already in use" tests: a hook for
// alsa-lib's own `hooks` PCM plugin that makes the PCM it wraps exclusive, as a hw device is
// (the kernel answers a second open of a card's PCM with EBUSY). This machine has no sound card,
// no snd modules and no CUSE, and none of alsa-lib's software devices (file, null, jack) is ever
// busy; so the test configuration wraps a `file` device in this hook:
//
//   pcm_hook_type.sluice_exclusive { lib "/path/libsluice_alsa_exclusive.so" install "sluice_exclusive_install" }
//   pcm.excl { type hooks slave.pcm { type file ... } hooks.0 { type sluice_exclusive hook_args { lock "/tmp/x.lock" } } }
//
// At open the hook takes an exclusive, non-blocking flock on `lock`; a second open while the
// first holds it fails with -EBUSY, which alsa-lib returns from snd_pcm_open as a hw device's
// open would. The lock goes with the first PCM's close (or its process's end).
#include <alsa/asoundlib.h>

#include <cerrno>
#include <cstdint>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

namespace {

int release_lock(snd_pcm_hook_t* hook) {
    ::close(int(reinterpret_cast<std::intptr_t>(snd_pcm_hook_get_private(hook))));
    return 0;
}

}  // namespace

extern "C" {

// alsa-lib calls this from snd_pcm_open for each hook of type sluice_exclusive; a negative
// return fails the open with that error.
__attribute__((visibility("default"))) int sluice_exclusive_install(snd_pcm_t* pcm, snd_config_t* args) {
    const char* lock = nullptr;
    snd_config_t* node = nullptr;
    if (args == nullptr || snd_config_search(args, "lock", &node) < 0 || snd_config_get_string(node, &lock) < 0) {
        SNDERR("sluice_exclusive: hook_args needs lock \"PATH\"");
        return -EINVAL;
    }
    const int fd = ::open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return -errno;
    if (::flock(fd, LOCK_EX | LOCK_NB) < 0) {
        const int err = errno == EWOULDBLOCK ? EBUSY : errno;
        ::close(fd);
        return -err;
    }
    snd_pcm_hook_t* hook = nullptr;
    if (int e = snd_pcm_hook_add(&hook, pcm, SND_PCM_HOOK_TYPE_CLOSE, &release_lock,
                                 reinterpret_cast<void*>(std::intptr_t(fd)));
        e < 0) {
        ::close(fd);
        return e;
    }
    return 0;
}

// alsa-lib checks this marker before it calls an install function from a library: what
// SND_DLSYM_BUILD_VERSION(sluice_exclusive_install, SND_PCM_DLSYM_VERSION) gives in a PIC build
// (alsa-lib's header picks that form by a PIC macro that CMake does not define).
__attribute__((visibility("default"))) char _sluice_exclusive_install_dlsym_pcm_001;

}  // extern "C"

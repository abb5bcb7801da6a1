// SPDX-License-Identifier: MIT
#include <sluice/version.hpp>

namespace sluice {
const char* version() noexcept { return SLUICE_VERSION_STRING; }
}  // namespace sluice

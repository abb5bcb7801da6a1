// SPDX-License-Identifier: MIT
#pragma once

// Each node file contributes its NodeSpec; registry.cpp lists them.

#include <sluice/nodes/registry.hpp>

namespace sluice::nodes {

// audio_nodes.cpp
NodeSpec tone_spec();
NodeSpec noise_spec();
NodeSpec gain_spec();
NodeSpec mix_spec();
NodeSpec audioconvert_spec();
// wav.cpp
NodeSpec wavsrc_spec();
NodeSpec wavsink_spec();
// common_nodes.cpp
NodeSpec tee_spec();
NodeSpec nullsink_spec();
// video_nodes.cpp
NodeSpec videotest_spec();
NodeSpec videoconvert_spec();
NodeSpec scale_spec();
// y4m.cpp
NodeSpec y4msrc_spec();
NodeSpec y4msink_spec();
// png.cpp
NodeSpec pngsink_spec();
// rtp.cpp
NodeSpec rtpsrc_spec();
NodeSpec rtpsink_spec();
// rtp_video.cpp
NodeSpec rtpvrawsrc_spec();
NodeSpec rtpvrawsink_spec();

}  // namespace sluice::nodes

// SPDX-License-Identifier: MIT
#pragma once

// Pipelines in a gst-launch-like text syntax:
//
//   tone freq=440 ! gain db=-6 ! wavsink path=a.wav
//   videotest ! tee name=t  t. ! y4msink path=a.y4m  t. ! pngsink path=a.png
//   tone freq=440 ! m.  tone freq=660 ! m.  mix name=m ! wavsink path=chord.wav
//
//   avsrc path=movie.mp4 name=d  d.audio ! wavsink path=a.wav  d.video ! y4msink path=v.y4m
//   tone ! audioresample ! audio/x-raw,rate=44100 ! wavsink path=a.wav
//
// A word is a node type, a `key=value` property of the node before it (values may be quoted:
// path="my file.wav"), `!` (link the node before to the node after), `name.` (a reference to
// the node called name, to link from or to: its next free pin whose media fits; each link to a
// tee adds a branch, to a mix an input), `name.pin` (that node's pin of that name), or caps
// (`audio/x-raw,...`, `video/x-raw,...`: a capsfilter that constrains the link's format).
// A node not preceded by `!` starts a new chain. Nodes are named by `name=` or, by default,
// type plus a counter (tone0, tone1, ...).

#include <sluice/engine/graph.hpp>
#include <sluice/engine/status.hpp>

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace sluice::nodes {

// Builds the pipeline into `graph` (which should be empty) and prepares it, so format, link and
// pool errors surface here. Errors are one line naming the offending word and its position:
//   "unknown node 'tonee' at character 1 ('tonee')".
// Control thread; allocates.
struct PipelineOptions {
    std::int64_t num_buffers = -1;  // >= 0: given to every source that does not set num-buffers
};
Status build_pipeline(engine::Graph& graph, std::string_view text, const PipelineOptions& options = {});

// The converters that would make `offered` fit one of `accepted`, as prepare()'s errors suggest
// them ("put 'audioresample rate=44100' between them"), or what no node can convert yet, or "".
// build_pipeline gives it to the graph; an app that builds graphs by hand can too
// (Graph::set_format_advisor).
std::string converter_advice(const engine::MediaFormat& offered, const engine::FormatSet& accepted);

}  // namespace sluice::nodes

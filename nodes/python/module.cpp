// SPDX-License-Identifier: MIT
// The Python module `sluice` (pybind11): build a graph from a pipeline, run it, read its stats
// and events, change live properties, and feed or drain it through appsrc and appsink.
//
//   import sluice, numpy
//   g = sluice.parse_launch("appsrc name=in format=f32 channels=1 ! gain db=-6 ! appsink name=out")
//   g.run()
//   g.appsrc("in").push(numpy.ones(1024, numpy.float32), pts=0)
//   s = g.appsink("out").pull(timeout=1.0)      # None at end of stream
//   x = numpy.frombuffer(s.data, numpy.float32)  # the pool buffer itself, no copy
//
// Rules kept here: no Python code ever runs on a streaming thread (nothing is called back; events
// are polled); the GIL is released whenever C++ may wait (run, stop, pull, push, waits), so other
// Python threads go on; every failure raises sluice.Error with the engine's one-line message.
#include <sluice/sluice.hpp>

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <chrono>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>
#include <string>

namespace py = pybind11;
using namespace sluice;
using namespace std::chrono_literals;

namespace {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void check(const Status& st) {
    if (!st) throw Error(st.message());
}

// A timeout in seconds from Python (None: wait for ever).
std::chrono::milliseconds to_timeout(std::optional<double> seconds) {
    if (!seconds) return nodes::kForever;
    if (!(*seconds >= 0) || !std::isfinite(*seconds)) throw Error("timeout must be a number of seconds >= 0, or None");
    return std::chrono::milliseconds(std::int64_t(std::ceil(*seconds * 1000)));
}

// A rendered sample handed to Python: it holds the SampleRef (the pool buffer stays the app's
// until the Sample is released or collected) and exposes its bytes through the buffer protocol.
struct Sample {
    SampleRef ref;
    std::string format;
    std::size_t size() const { return ref ? ref.size() : 0; }
};

class Graph;

struct AppSrcHandle {
    std::shared_ptr<Graph> owner;  // keeps the graph (and so the node) alive
    nodes::AppSrc* node;
};
struct AppSinkHandle {
    std::shared_ptr<Graph> owner;
    nodes::AppSink* node;
};

class Graph {
public:
    engine::Graph graph;

    void run() { check(graph.run()); }
    void pause() { check(graph.pause()); }
    void stop() { check(graph.stop()); }
    void seek(double seconds) { check(graph.seek(std::int64_t(seconds * 1e9))); }
    void follow_ptp(const std::string& socket, int domain, double wait) {
        engine::PtpOptions o;
        o.socket = socket;
        o.domain = domain;
        o.wait = std::chrono::milliseconds(std::int64_t(wait * 1000));
        check(graph.follow_ptp(o));
    }
    bool wait_until_ended(std::optional<double> seconds) {
        const auto timeout = seconds ? to_timeout(seconds) : std::chrono::milliseconds(INT32_MAX);
        return graph.wait_until_ended(timeout);
    }
    void set_property(const std::string& node, const std::string& key, const std::string& value) {
        check(graph.set_property(node, key, value));
    }
    std::string property(const std::string& node, const std::string& key) const {
        std::string value;
        check(graph.property(node, key, value));
        return value;
    }
};

std::string value_text(const py::handle& value) {
    if (py::isinstance<py::bool_>(value)) return value.cast<bool>() ? "true" : "false";
    if (py::isinstance<py::str>(value)) return value.cast<std::string>();
    if (py::isinstance<py::int_>(value) || py::isinstance<py::float_>(value)) return py::str(value).cast<std::string>();
    throw Error("a property value must be a str, int, float or bool");
}

// The graph's statistics as a dict, in the shape of sluice-play --stats-json.
py::dict stats_dict(const engine::Graph& graph) {
    const engine::GraphStats s = graph.stats();
    py::dict out, nodes, pools;
    out["state"] = engine::to_string(s.state);
    out["running_time_s"] = double(s.running_time_ns) / 1e9;
    out["last_stop_ms"] = std::chrono::duration<double, std::milli>(s.last_stop).count();
    out["clock"] = s.clock;
    out["clock_drift_ppm"] = s.clock_drift_ppm;
    if (s.ptp) {
        py::dict ptp;
        ptp["port_state"] = s.ptp->port_state;
        ptp["grandmaster"] = s.ptp->grandmaster;
        ptp["grandmaster_here"] = s.ptp->grandmaster_here;
        ptp["holdover"] = s.ptp->holdover;
        ptp["offset_ns"] = s.ptp->offset_ns;
        ptp["answers"] = s.ptp->answers;
        ptp["silences"] = s.ptp->silences;
        out["ptp"] = ptp;
    }
    py::list links;
    for (const engine::NodeReport& n : s.nodes) {
        py::dict d;
        d["type"] = n.type;
        d["samples_in"] = n.stats.samples_in;
        d["samples_out"] = n.stats.samples_out;
        d["drops"] = n.stats.drops;
        d["late"] = n.stats.late;
        d["deadline_misses"] = n.stats.deadline_misses;
        d["max_lateness_ms"] = double(n.stats.max_lateness_ns) / 1e6;
        d["lateness_p999_ms"] = double(n.stats.lateness_p999_ns) / 1e6;
        d["position_s"] = n.stats.position_ns == kNoTime ? 0.0 : double(n.stats.position_ns) / 1e9;
        for (const auto& [key, value] : n.extras) d[py::str(key)] = value;
        for (const engine::LinkReport& l : n.links) {
            py::dict link;
            link["from"] = l.from;
            link["to"] = l.to;
            link["format"] = l.format.to_string();
            links.append(link);
        }
        nodes[py::str(n.name)] = d;
    }
    for (const engine::PoolReport& p : s.pools) {
        py::dict d;
        d["buffers"] = p.properties.buffers;
        d["buffer_bytes"] = p.properties.buffer_bytes;
        d["needed"] = p.needed;
        d["gets"] = p.stats.gets;
        d["waits"] = p.stats.waits;
        d["outstanding"] = p.stats.outstanding;
        pools[py::str(p.pin)] = d;
    }
    out["nodes"] = nodes;
    out["links"] = links;
    out["pools"] = pools;
    return out;
}

}  // namespace

PYBIND11_MODULE(sluice, m) {
    m.doc() = "Sluice: a real-time audio/video engine (graphs from pipelines, appsrc/appsink, live properties)";
    static py::exception<Error> error(m, "Error");
    py::register_exception_translator([](std::exception_ptr p) {
        try {
            if (p) std::rethrow_exception(p);
        } catch (const Error& e) {
            error(e.what());
        }
    });
    m.attr("__version__") = sluice::version();

    py::class_<Sample>(m, "Sample", py::buffer_protocol(), "A rendered sample: its pool buffer, held until released")
        .def_buffer([](Sample& s) -> py::buffer_info {
            if (!s.ref) throw Error("the sample was released");
            return py::buffer_info(s.ref.data(), 1, py::format_descriptor<std::uint8_t>::format(), 1,
                                   {py::ssize_t(s.ref.size())}, {py::ssize_t(1)}, /*readonly=*/true);
        })
        .def_property_readonly("data", [](py::object self) { return py::memoryview(py::buffer(self)); },
                               "the bytes, as a read-only memoryview of the pool buffer (numpy.frombuffer works)")
        .def_property_readonly("pts", [](const Sample& s) { return s.ref ? s.ref.start_time() : kNoTime; },
                               "start time in ns")
        .def_property_readonly("duration", [](const Sample& s) {
            return s.ref && s.ref.stop_time() != kNoTime ? s.ref.stop_time() - s.ref.start_time() : 0;
        }, "duration in ns")
        .def_property_readonly("format", [](const Sample& s) { return s.format; })
        .def("__len__", &Sample::size)
        .def("release", [](Sample& s) { s.ref.reset(); }, "gives the buffer back to its pool now");

    py::class_<AppSrcHandle>(m, "AppSrc")
        .def("push", [](AppSrcHandle& h, py::buffer data, std::optional<std::int64_t> pts, std::optional<double> timeout) {
                 const auto wait = to_timeout(timeout);
                 // The bytes in C order; a strided view (numpy: a slice with a step) is refused.
                 Py_buffer view;
                 if (PyObject_GetBuffer(data.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) {
                     PyErr_Clear();
                     throw Error(h.node->name() + ": push wants contiguous bytes (numpy: numpy.ascontiguousarray)");
                 }
                 struct Release {
                     Py_buffer* view;
                     ~Release() { PyBuffer_Release(view); }
                 } release{&view};
                 const std::span<const std::byte> bytes(static_cast<const std::byte*>(view.buf), std::size_t(view.len));
                 Status st;
                 {
                     py::gil_scoped_release unlocked;  // may wait for a buffer
                     st = h.node->push(bytes, pts.value_or(kNoTime), wait);
                 }
                 check(st);
             },
             py::arg("data"), py::arg("pts") = py::none(), py::arg("timeout") = py::none(),
             "copies `data` (bytes or any buffer) into a pool buffer and pushes it at `pts` ns (None: after the last)")
        .def("end_of_stream", [](AppSrcHandle& h) { check(h.node->end_of_stream()); })
        .def_property_readonly("format", [](const AppSrcHandle& h) { return h.node->format().to_string(); })
        .def_property_readonly("buffer_bytes", [](const AppSrcHandle& h) { return h.node->buffer_bytes(); });

    py::class_<AppSinkHandle>(m, "AppSink")
        .def("pull", [](AppSinkHandle& h, std::optional<double> timeout) -> py::object {
                 const auto wait = to_timeout(timeout);
                 nodes::AppSink::Pulled pulled(SampleRef{});
                 {
                     py::gil_scoped_release unlocked;  // waits for the stream
                     pulled = h.node->pull(wait);
                 }
                 if (pulled) return py::cast(Sample{std::move(*pulled), h.node->format().to_string()});
                 if (pulled.error() == engine::GraphErrc::end_of_stream) return py::none();
                 if (pulled.error() == Errc::timeout) throw Error(h.node->name() + ": pull timed out");
                 throw Error(h.node->name() + ": pull: the graph is stopped");
             },
             py::arg("timeout") = py::none(),
             "the next sample (zero copy), None at end of stream; raises sluice.Error on timeout or stop")
        .def_property_readonly("dropped", [](const AppSinkHandle& h) { return h.node->dropped(); });

    py::class_<Graph, std::shared_ptr<Graph>>(m, "Graph")
        .def("run", [](Graph& g) { py::gil_scoped_release u; g.run(); })
        .def("pause", [](Graph& g) { py::gil_scoped_release u; g.pause(); })
        .def("stop", [](Graph& g) { py::gil_scoped_release u; g.stop(); }, "deterministic stop; raises if a file could not be finished")
        .def("seek", [](Graph& g, double seconds) { py::gil_scoped_release u; g.seek(seconds); })
        .def("follow_ptp", [](Graph& g, const std::string& socket, int domain, double wait) {
                py::gil_scoped_release u;
                g.follow_ptp(socket, domain, wait);
            }, py::arg("socket") = "/var/run/ptp4l", py::arg("domain") = 0, py::arg("wait") = 10.0,
            "the graph's clock follows PTP time as linuxptp's ptp4l keeps it (stopped graphs only)")
        .def("wait_until_ended", [](Graph& g, std::optional<double> seconds) {
                 py::gil_scoped_release u;
                 return g.wait_until_ended(seconds);
             },
             py::arg("seconds") = py::none(), "True at end of stream; False on an error or the timeout")
        .def("stats", [](const Graph& g) { return stats_dict(g.graph); })
        .def("set_property", [](Graph& g, const std::string& node, const std::string& key, py::handle value) {
                 const std::string text = value_text(value);
                 py::gil_scoped_release u;
                 g.set_property(node, key, text);
             })
        .def("property", &Graph::property)
        .def("events", [](Graph& g) {
                 py::list out;
                 while (auto e = g.graph.poll_event()) {
                     py::dict d;
                     d["type"] = engine::to_string(e->type);
                     d["node"] = e->node;
                     d["message"] = e->message;
                     out.append(d);
                 }
                 return out;
             },
             "every event queued since the last call, oldest first")
        .def("to_dot", [](const Graph& g) { return g.graph.to_dot(); })
        .def_property_readonly("state", [](const Graph& g) { return std::string(engine::to_string(g.graph.state())); })
        .def("appsrc", [](std::shared_ptr<Graph> g, const std::string& name) {
            nodes::AppSrc* node = nodes::appsrc(g->graph, name);
            if (node == nullptr) throw Error("no appsrc named '" + name + "'");
            return AppSrcHandle{std::move(g), node};
        })
        .def("appsink", [](std::shared_ptr<Graph> g, const std::string& name) {
            nodes::AppSink* node = nodes::appsink(g->graph, name);
            if (node == nullptr) throw Error("no appsink named '" + name + "'");
            return AppSinkHandle{std::move(g), node};
        });

    m.def("parse_launch", [](const std::string& text) {
              auto g = std::make_shared<Graph>();
              check(nodes::build_pipeline(g->graph, text));
              return g;
          },
          py::arg("pipeline"), "builds a graph from a pipeline such as 'tone ! gain db=-6 ! appsink name=out'");
}

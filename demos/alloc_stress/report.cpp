// SPDX-License-Identifier: MIT
#include "report.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace sluice::stress {
namespace {

std::string ns_text(std::uint64_t ns) {
    char buf[32];
    if (ns < 10'000) std::snprintf(buf, sizeof buf, "%llu ns", static_cast<unsigned long long>(ns));
    else if (ns < 10'000'000) std::snprintf(buf, sizeof buf, "%.1f us", double(ns) / 1e3);
    else std::snprintf(buf, sizeof buf, "%.1f ms", double(ns) / 1e6);
    return buf;
}

nlohmann::json histogram_json(const Histogram& h) {
    return {{"count", h.count()},          {"p50_ns", h.quantile(0.5)},    {"p99_ns", h.quantile(0.99)},
            {"p999_ns", h.quantile(0.999)}, {"max_ns", h.max()}};
}

}  // namespace

void print_table(std::ostream& out, const std::vector<ScenarioResult>& results) {
    char line[256];
    // cycles: decommits (decommit-storm, reconfigure) or graphs built (graph); wake: decommit to a
    // waiter's return, or for graph the time stop() took.
    std::snprintf(line, sizeof line, "%-15s %10s %9s | %9s %9s %9s %9s | %6s %9s %9s | %s\n", "scenario", "ops",
                  "Mops/s", "get p50", "p99", "p99.9", "max", "cycles", "wake p50", "wake max", "result");
    out << line;
    for (const auto& r : results) {
        const auto& g = r.get_latency;
        const auto& w = r.wake_latency.count() ? r.wake_latency : r.stop_latency;  // graph: stop() times
        // A histogram nothing was recorded in shows "-", not 0 ns (the graph scenario's gets
        // happen inside the nodes and are not timed).
        auto cell = [](const auto& h, std::uint64_t ns) { return h.count() ? ns_text(ns) : std::string("-"); };
        std::snprintf(line, sizeof line, "%-15s %10llu %9.2f | %9s %9s %9s %9s | %6llu %9s %9s | %s\n", r.name.c_str(),
                      static_cast<unsigned long long>(r.ops), r.seconds > 0 ? double(r.ops) / r.seconds / 1e6 : 0.0,
                      cell(g, g.quantile(0.5)).c_str(), cell(g, g.quantile(0.99)).c_str(),
                      cell(g, g.quantile(0.999)).c_str(), cell(g, g.max()).c_str(),
                      static_cast<unsigned long long>(r.decommits), cell(w, w.quantile(0.5)).c_str(),
                      cell(w, w.max()).c_str(), r.violations.empty() ? "ok" : "VIOLATION");
        out << line;
    }
}

std::string to_json(const Config& config, const std::vector<ScenarioResult>& results) {
    nlohmann::json j;
    j["config"] = {{"threads", config.threads}, {"buffers", config.buffers}, {"bytes", config.bytes},
                   {"alignment", config.alignment}, {"numa_node", config.numa_node}, {"seconds", config.seconds},
                   {"ops", config.ops}, {"seed", config.seed}, {"checked", config.alternate ? "both" : config.checked ? "on" : "off"}};
    for (const auto& r : results) {
        const auto& s = r.final_stats;
        j["scenarios"].push_back({{"name", r.name},
                                  {"seconds", r.seconds},
                                  {"ops", r.ops},
                                  {"ops_per_second", r.seconds > 0 ? double(r.ops) / r.seconds : 0.0},
                                  {"get_buffer", histogram_json(r.get_latency)},
                                  {"decommit_to_wake", histogram_json(r.wake_latency)},
                                  {"graph_stop", histogram_json(r.stop_latency)},
                                  {"decommits", r.decommits},
                                  {"violations", r.violations},
                                  {"allocator", {{"gets", s.gets}, {"waits", s.waits}, {"timeouts", s.timeouts},
                                                 {"cancels", s.cancels}, {"refused", s.refused},
                                                 {"commits", s.commits}, {"corruptions", s.corruptions}}}});
    }
    return j.dump(2) + "\n";
}

std::string to_svg(const std::vector<ScenarioResult>& results) {
    // Log-log axes: x from 10 ns to 100 ms, y from 1 down to 1e-6.
    constexpr double W = 900, H = 520, L = 70, R = 190, T = 40, B = 60;
    const double x0 = 1, x1 = 8, y0 = 0, y1 = -6;  // log10 bounds
    auto px = [&](double ns) { return L + (std::log10(std::max(ns, 10.0)) - x0) / (x1 - x0) * (W - L - R); };
    auto py = [&](double frac) { return T + (std::log10(std::max(frac, 1e-6)) - y0) / (y1 - y0) * (H - T - B); };
    static const char* colors[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

    std::ostringstream s;
    s << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H
      << "' font-family='sans-serif' font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
    s << "<text x='" << L << "' y='22' font-size='15'>sluice-stress: latency tail (fraction of operations slower than x)</text>\n";
    for (int d = int(x0); d <= int(x1); ++d) {
        const double x = px(std::pow(10.0, d));
        static const char* labels[] = {"1ns", "10ns", "100ns", "1us", "10us", "100us", "1ms", "10ms", "100ms"};
        s << "<line x1='" << x << "' y1='" << T << "' x2='" << x << "' y2='" << H - B << "' stroke='#ddd'/>\n"
          << "<text x='" << x << "' y='" << H - B + 16 << "' text-anchor='middle'>" << labels[d] << "</text>\n";
    }
    for (int d = 0; d >= int(y1); --d) {
        const double y = py(std::pow(10.0, d));
        s << "<line x1='" << L << "' y1='" << y << "' x2='" << W - R << "' y2='" << y << "' stroke='#ddd'/>\n"
          << "<text x='" << L - 6 << "' y='" << y + 4 << "' text-anchor='end'>1e" << d << "</text>\n";
    }
    s << "<text x='" << (L + W - R) / 2 << "' y='" << H - 18 << "' text-anchor='middle'>latency</text>\n";
    int series = 0;
    auto curve = [&](const Histogram& h, const std::string& label, bool dashed) {
        if (h.count() == 0) return;
        const char* color = colors[series % 8];
        std::ostringstream pts;
        std::uint64_t above = h.count();
        h.for_each_bucket([&](std::uint64_t upper, std::uint64_t count) {
            pts << px(double(upper)) << ',' << py(double(above) / double(h.count())) << ' ';
            above -= count;
            pts << px(double(upper)) << ',' << py(std::max(double(above), 0.5) / double(h.count())) << ' ';
        });
        s << "<polyline fill='none' stroke='" << color << "' stroke-width='1.8'" << (dashed ? " stroke-dasharray='6,3'" : "")
          << " points='" << pts.str() << "'/>\n";
        const double ly = T + 14 + 18 * series;
        s << "<line x1='" << W - R + 12 << "' y1='" << ly - 4 << "' x2='" << W - R + 36 << "' y2='" << ly - 4
          << "' stroke='" << color << "' stroke-width='2'" << (dashed ? " stroke-dasharray='6,3'" : "") << "/>\n"
          << "<text x='" << W - R + 42 << "' y='" << ly << "'>" << label << "</text>\n";
        ++series;
    };
    for (const auto& r : results) curve(r.get_latency, r.name + " get", false);
    for (const auto& r : results) curve(r.wake_latency, r.name + " wake", true);
    for (const auto& r : results) curve(r.stop_latency, r.name + " stop()", true);
    s << "<rect x='" << L << "' y='" << T << "' width='" << W - L - R << "' height='" << H - T - B
      << "' fill='none' stroke='black'/>\n</svg>\n";
    return s.str();
}

}  // namespace sluice::stress

// SPDX-License-Identifier: MIT
// sluice-stress: hammers a SampleAllocator from many threads and checks its invariants all the
// time. With no argument it plays every scenario, about 10 s in all.

#include "report.hpp"
#include "scenarios.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>
#include <cerrno>
#include <cstring>
#include <utility>

#include <unistd.h>

int main(int argc, char** argv) {
    using namespace sluice::stress;
    Config config;
    config.seed = std::random_device{}() & 0xFFFFFFFF;
    std::vector<std::string> scenarios;
    std::string json_path, plot_path;
    bool no_check = false, quiet = false;
    std::string check_mode = "both";

    CLI::App app{"sluice-stress: stress-test the Sluice sample allocator.\n"
                 "Invariants checked on every operation: no buffer handed out twice, none lost, no write to a\n"
                 "sample after its release (guard and poison bytes), every waiter woken by decommit.\n"
                 "Exit status: 0 all passed, 1 an invariant was violated, 2 bad arguments."};
    app.add_option("scenarios,-s,--scenario", scenarios,
                   "Scenarios to run (default: all): handoff, contend, decommit-storm, share, reconfigure, graph")
        ->check(CLI::IsMember(scenario_names()));
    app.add_option("-t,--threads", config.threads, "Worker threads per scenario")->check(CLI::Range(1u, 256u))->capture_default_str();
    app.add_option("-b,--buffers", config.buffers, "Buffers in the pool")->check(CLI::Range(std::size_t(1), std::size_t(65536)))->capture_default_str();
    app.add_option("--bytes", config.bytes, "Bytes per buffer")->check(CLI::Range(std::size_t(1), std::size_t(1) << 26))->capture_default_str();
    app.add_option("--alignment", config.alignment, "Buffer alignment (power of two)")->capture_default_str();
    app.add_option("--numa-node", config.numa_node, "NUMA node for the pool, -1 for the committing thread's")->capture_default_str();
    app.add_option("-d,--duration", config.seconds, "Seconds per scenario")->check(CLI::Range(0.01, 86400.0))->capture_default_str();
    app.add_option("-n,--ops", config.ops, "Stop each scenario after this many operations instead");
    app.add_option("--seed", config.seed, "Random seed (printed on failure so a run can be replayed)");
    app.add_option("--json", json_path, "Write the results as JSON to this file");
    app.add_option("--plot", plot_path, "Write an SVG plot of the latency distributions to this file");
    app.add_option("--check", check_mode,
                   "Guard and poison bytes: on, off, or both (half of each scenario's time each; checked pools "
                   "never use the per-thread caches, so 'both' tests the caches too)")
        ->check(CLI::IsMember({"on", "off", "both"}))
        ->capture_default_str();
    app.add_flag("--no-check", no_check, "Same as --check off (faster, fewer checks)");
    app.add_flag("-q,--quiet", quiet, "No progress line");
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        if (e.get_exit_code() == 0) return app.exit(e);
        std::cerr << "sluice-stress: " << e.what() << "\n";
        return 2;
    }
    if ((config.alignment & (config.alignment - 1)) != 0 || config.alignment == 0) {
        std::cerr << "sluice-stress: --alignment must be a power of two\n";
        return 2;
    }
    if (!std::isfinite(config.seconds) || config.seconds <= 0) {
        std::cerr << "sluice-stress: --duration must be a positive number of seconds\n";
        return 2;
    }
    if (no_check) check_mode = "off";
    config.checked = check_mode != "off";
    config.alternate = check_mode == "both";
    if (config.numa_node >= 0) {
        // The allocator refuses a node without memory; say so now, as a bad argument.
        sluice::SampleAllocator probe;
        if (!probe.set_properties({.buffers = 1, .buffer_bytes = 64, .numa_node = config.numa_node})) {
            std::cerr << "sluice-stress: --numa-node " << config.numa_node << ": no such NUMA node on this machine\n";
            return 2;
        }
    }
    // Output files are opened before the run, so a path that cannot be written is a bad argument
    // found at once, not after minutes of work.
    std::ofstream json_file, plot_file;
    for (auto [path, file] : {std::pair{&json_path, &json_file}, std::pair{&plot_path, &plot_file}}) {
        if (path->empty()) continue;
        file->open(*path);
        if (!*file) {
            std::cerr << "sluice-stress: cannot write " << *path << ": " << std::strerror(errno) << "\n";
            return 2;
        }
    }
    config.progress = !quiet && ::isatty(STDERR_FILENO);
    if (scenarios.empty()) scenarios = scenario_names();

    std::printf("sluice-stress: %u threads, %zu x %zu-byte buffers aligned %zu, seed %llu, %s\n", config.threads,
                config.buffers, config.bytes, config.alignment, static_cast<unsigned long long>(config.seed),
                config.alternate ? "checked and unchecked pools" : config.checked ? "checked pools" : "unchecked pools");
    std::fflush(stdout);
    std::vector<ScenarioResult> results;
    bool failed = false;
    for (const auto& name : scenarios) {
        results.push_back(run_scenario(name, config));
        for (const auto& v : results.back().violations) {
            std::fprintf(stderr, "sluice-stress: %s: %s\n", name.c_str(), v.c_str());
            failed = true;
        }
    }
    print_table(std::cout, results);
    // A write that fails (a full disk, /dev/full) is reported and fails the run.
    bool write_failed = false;
    auto finish = [&](std::ofstream& file, const std::string& path, const std::string& text, const char* what) {
        if (path.empty()) return;
        file << text;
        file.close();
        if (!file) {
            std::cerr << "sluice-stress: writing " << path << " failed: " << std::strerror(errno) << "\n";
            write_failed = true;
            return;
        }
        std::cout << what << " written to " << path << "\n";
    };
    finish(json_file, json_path, to_json(config, results), "results");
    finish(plot_file, plot_path, to_svg(results), "latency plot");
    if (failed) {
        std::fprintf(stderr, "sluice-stress: FAILED; replay with --seed %llu\n", static_cast<unsigned long long>(config.seed));
        return 1;
    }
    std::cout << "all invariants held\n";
    return write_failed ? 1 : 0;
}

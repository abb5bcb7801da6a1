// SPDX-License-Identifier: MIT
// sluice-stress: hammers a SampleAllocator from many threads and checks its invariants all the
// time. With no argument it plays every scenario, about 10 s in all.

#include "report.hpp"
#include "scenarios.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <random>

#include <unistd.h>

int main(int argc, char** argv) {
    using namespace sluice::stress;
    Config config;
    config.seed = std::random_device{}() & 0xFFFFFFFF;
    std::vector<std::string> scenarios;
    std::string json_path, plot_path;
    bool no_check = false, quiet = false;

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
    app.add_flag("--no-check", no_check, "Turn off guard and poison bytes (faster, fewer checks)");
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
    config.checked = !no_check;
    config.progress = !quiet && ::isatty(STDERR_FILENO);
    if (scenarios.empty()) scenarios = scenario_names();

    std::printf("sluice-stress: %u threads, %zu x %zu-byte buffers aligned %zu, seed %llu%s\n", config.threads,
                config.buffers, config.bytes, config.alignment, static_cast<unsigned long long>(config.seed),
                config.checked ? ", checked" : "");
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
    if (!json_path.empty()) {
        std::ofstream(json_path) << to_json(config, results);
        std::cout << "results written to " << json_path << "\n";
    }
    if (!plot_path.empty()) {
        std::ofstream(plot_path) << to_svg(results);
        std::cout << "latency plot written to " << plot_path << "\n";
    }
    if (failed) {
        std::fprintf(stderr, "sluice-stress: FAILED; replay with --seed %llu\n", static_cast<unsigned long long>(config.seed));
        return 1;
    }
    std::cout << "all invariants held\n";
    return 0;
}

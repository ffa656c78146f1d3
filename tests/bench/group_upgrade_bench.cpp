// Group upgrade time against group size, concurrent (one slave per target) against sequential,
// in the same run: every module needing 20 ms to drain, then a group of 64 that needs none (the
// framework's own cost per target). Prints a table; not a pass/fail test.
#include <nonstop/runtime.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

using namespace nonstop;

namespace {

struct Figure {
    double median_ms, min_ms, max_ms;
};

Figure measure(Runtime& rt, int n, Mode mode, int repeats, int& version) {
    std::vector<double> times;
    for (int r = 0; r < repeats; ++r) {
        std::vector<Change> changes;
        version = version == 1 ? 2 : 1;
        for (int i = 0; i < n; ++i)
            changes.push_back(
                {"m" + std::to_string(i), "libbench_v" + std::to_string(version) + ".so"});
        auto report = rt.syn_replace(changes, mode);
        if (!report.ok()) {
            std::fprintf(stderr, "%s", report.to_string().c_str());
            std::exit(1);
        }
        times.push_back(std::chrono::duration<double, std::milli>(report.duration).count());
    }
    std::sort(times.begin(), times.end());
    return {times[times.size() / 2], times.front(), times.back()};
}

// A group of n modules replaced concurrently and sequentially: the medians, in that order.
std::pair<Figure, Figure> group(const Config& config, int n, int repeats) {
    Runtime rt(config);
    for (int i = 0; i < n; ++i)
        if (!rt.load("m" + std::to_string(i), "libbench_v1.so").ok()) std::exit(1);
    int version = 1;
    const Figure c = measure(rt, n, Mode::concurrent, repeats, version);
    const Figure s = measure(rt, n, Mode::sequential, repeats, version);
    return {c, s};
}

}  // namespace

// usage: group_upgrade_bench [REPEATS] [--data FILE] [--figures FILE] [--kept-threads]
//   --data          FILE receives "N concurrent sequential" (ms, 20 ms drain each)
//   --figures       FILE receives the group64_* figures for scripts/bench --json
//   --kept-threads  module threads are kept for reuse (Config::module_thread_keep); the
//                   figures' keys end in _kept_threads
int main(int argc, char** argv) {
    int repeats = 5;
    std::FILE* data = nullptr;
    std::FILE* figures = nullptr;
    const char* suffix = "";
    Config config;
    config.module_path = {NONSTOP_BENCH_MODULE_DIR};
    for (int i = 1; i < argc; ++i) {
        if (std::string(argv[i]) == "--data" && i + 1 < argc) {
            data = std::fopen(argv[++i], "w");
        } else if (std::string(argv[i]) == "--figures" && i + 1 < argc) {
            figures = std::fopen(argv[++i], "w");
        } else if (std::string(argv[i]) == "--kept-threads") {
            config.module_thread_keep = std::chrono::seconds(10);
            suffix = "_kept_threads";
        } else {
            repeats = std::atoi(argv[i]);
        }
    }
    setenv("NONSTOP_BENCH_DRAIN_MS", "20", 1);
    std::printf(
        "group upgrade time, every module draining 20 ms, %d runs each (median [min-max] ms)%s\n",
        repeats, *suffix ? ", module threads kept" : "");
    std::printf("%4s  %28s  %28s  %s\n", "N", "concurrent", "sequential", "seq/conc");
    double concurrent_one = 0, concurrent_max = 0;
    for (int n : {1, 2, 4, 8, 16, 32, 64}) {
        const auto [c, s] = group(config, n, repeats);
        std::printf("%4d  %8.1f [%7.1f-%7.1f]  %8.1f [%7.1f-%7.1f]  %6.1fx\n", n, c.median_ms,
                    c.min_ms, c.max_ms, s.median_ms, s.min_ms, s.max_ms, s.median_ms / c.median_ms);
        if (data) std::fprintf(data, "%d %.3f %.3f\n", n, c.median_ms, s.median_ms);
        if (n == 1) concurrent_one = c.median_ms;
        concurrent_max = c.median_ms;
    }
    if (data) std::fclose(data);
    std::printf("concurrent(64) / concurrent(1) = %.2f (target <= 1.2)\n",
                concurrent_max / concurrent_one);
    setenv("NONSTOP_BENCH_DRAIN_MS", "0", 1);
    const auto [c, s] = group(config, 64, repeats);
    std::printf(
        "group of 64, no drain: concurrent %.2f ms, sequential %.2f ms, conc/seq = %.2f "
        "(target <= 0.5)\n",
        c.median_ms, s.median_ms, c.median_ms / s.median_ms);
    if (figures) {
        std::fprintf(figures, "group64_drain_conc_ratio%s\t%.6f\t%.6f\tms\n", suffix,
                     concurrent_max, concurrent_one);
        std::fprintf(figures, "group64_nodrain_conc_over_seq%s\t%.6f\t%.6f\tms\n", suffix,
                     c.median_ms, s.median_ms);
        std::fclose(figures);
    }
    return 0;
}

// What preflight costs a transaction: the same replacement (bench module, version 1 ↔ 2) without
// preflight, with it, and with the state check too, several rounds each, interleaved so that
// the machine's load falls on all three alike. Prints min / median / max of each figure and the
// ratio of the medians against the same run's replacement without preflight. A producer sends
// to the module throughout (one message every 50 µs), so that every swap has a blackout. Preflight
// runs before buffering, so it should leave the blackout alone; the state check runs during voting,
// so what it adds to the blackout is printed too.
//   preflight_bench [--rounds N] [--state-bytes N]
#include <nonstop/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

using namespace nonstop;

namespace {

struct Series {
    std::vector<double> ms;
    void add(std::chrono::nanoseconds d) { ms.push_back(static_cast<double>(d.count()) / 1e6); }
    double at(double q) const {
        std::vector<double> v = ms;
        std::sort(v.begin(), v.end());
        return v.empty() ? 0 : v[std::min(v.size() - 1, static_cast<std::size_t>(q * v.size()))];
    }
};

struct Variant {
    const char* name;
    TransactionOptions options;
    Series duration, preflight, state, blackout;
};

void row(const char* figure, const Series& s, double baseline_median) {
    std::printf("%-46s %9.3f %9.3f %9.3f", figure, s.at(0), s.at(0.5), s.at(1.0));
    if (baseline_median > 0) std::printf("   x%.2f", s.at(0.5) / baseline_median);
    std::printf("\n");
}

// Replaces "m" with each variant in turn, `rounds` times after one warm-up round (the first
// loads fill the page cache), while a producer sends; false with the report of a failure.
bool run(Runtime& rt, Variant (&variants)[3], int rounds) {
    std::atomic<bool> stop{false};
    std::thread producer([&] {
        while (!stop.load(std::memory_order_relaxed)) {
            rt.send("m", Message{1, 1, {}, "x"});
            std::this_thread::sleep_for(std::chrono::microseconds(50));
        }
    });
    int version = 1;
    bool ok = true;
    for (int r = 0; r < rounds + 1 && ok; ++r) {
        for (auto& v : variants) {
            version = 3 - version;
            const auto report =
                rt.replace("m", "libbench_v" + std::to_string(version) + ".so", v.options);
            if (!report.ok()) {
                std::fprintf(stderr, "%s", report.to_string().c_str());
                ok = false;
                break;
            }
            if (r == 0) continue;
            const auto& t = report.targets.at(0);
            v.duration.add(report.duration);
            v.preflight.add(t.preflight_time);
            v.state.add(t.preflight_state_time);
            v.blackout.add(t.blackout);
        }
    }
    stop = true;
    producer.join();
    return ok;
}

}  // namespace

int main(int argc, char** argv) {
    int rounds = 30;
    long state_bytes = 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--rounds") == 0) rounds = std::atoi(argv[i + 1]);
        if (std::strcmp(argv[i], "--state-bytes") == 0) state_bytes = std::atol(argv[i + 1]);
    }
    ::setenv("NONSTOP_BENCH_STATE_BYTES", std::to_string(state_bytes).c_str(), 1);
    Config config;
    config.module_path = {NONSTOP_BENCH_MODULE_DIR};
    Runtime rt(config);
    if (!rt.load("m", "libbench_v1.so").ok()) return 1;

    Variant variants[3] = {{"without preflight", {}, {}, {}, {}, {}},
                           {"with preflight", {}, {}, {}, {}, {}},
                           {"with preflight and state check", {}, {}, {}, {}, {}}};
    variants[0].options.preflight = false;
    variants[1].options.preflight = true;
    variants[2].options.preflight = true;
    variants[2].options.preflight_state = true;
    if (!run(rt, variants, rounds)) return 1;

    std::printf("preflight cost per transaction: %d rounds, state %ld B (ms)\n", rounds,
                state_bytes);
    std::printf("%-46s %9s %9s %9s   %s\n", "figure", "min", "median", "max", "ratio of medians");
    const double base = variants[0].duration.at(0.5);
    const double base_blackout = variants[0].blackout.at(0.5);
    for (const auto& v : variants) {
        row((std::string("replace, ") + v.name).c_str(), v.duration, base);
    }
    row("  of which preflight (child, initialize, reap)", variants[1].preflight, 0);
    row("  of which preflight, child kept for the check", variants[2].preflight, 0);
    row("  state check (added to voting)", variants[2].state, 0);
    for (const auto& v : variants)
        row((std::string("blackout, ") + v.name).c_str(), v.blackout, base_blackout);
    return 0;
}

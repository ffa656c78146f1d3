// The coordination cost of fleet upgrades over 3 members on loopback ZooKeeper (issue 14), each
// against a baseline measured in the same run: a rolling replace's time per batch beyond the
// members' local transactions, and an atomic fleet transaction's time beyond the slowest
// member's local syn_replace. The members are three runtimes in this process, each a member of
// its own; the server is scripts/zookeeper. Prints a table; not a pass/fail test.
#include <nonstop/fleet/fleet.hpp>
#include <nonstop/runtime.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "fleet_harness.hpp"

using namespace nonstop;
using Clock = std::chrono::steady_clock;

namespace {

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

std::string lib(int v) {
    return std::string(NONSTOP_BENCH_MODULE_DIR) + "/libbench_v" + std::to_string(v) + ".so";
}

}  // namespace

// usage: fleet_bench [ROUNDS]
int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
    constexpr int kMembers = 3;
    test::ZooKeeperServer zk;
    Config config;
    config.module_path = {NONSTOP_BENCH_MODULE_DIR};
    std::vector<std::unique_ptr<Runtime>> runtimes;
    std::vector<std::unique_ptr<Fleet>> members;
    for (int i = 0; i < kMembers; ++i) {
        runtimes.push_back(std::make_unique<Runtime>(config));
        if (!runtimes.back()->load("m", lib(1)).ok()) return 1;
        FleetConfig fc;
        fc.zookeeper = zk.connect();
        fc.cluster = "bench";
        fc.member = "b" + std::to_string(i + 1);
        members.push_back(std::make_unique<Fleet>(fc, runtimes.back().get()));
    }
    FleetConfig fc;
    fc.zookeeper = zk.connect();
    fc.cluster = "bench";
    Fleet coordinator(fc, nullptr);
    if (!test::eventually([&] { return coordinator.members().size() == kMembers; })) return 1;

    int version = 1;
    std::vector<double> rolling_total, rolling_local, rolling_cost;
    std::vector<double> atomic_total, atomic_local, atomic_cost;
    for (int r = 0; r < rounds; ++r) {
        version = 3 - version;
        auto t0 = Clock::now();
        const auto plan = coordinator.replace("m", lib(version), 1, std::chrono::milliseconds(0));
        const double total = ms(Clock::now() - t0);
        if (!plan.ok()) {
            std::fprintf(stderr, "%s\n", plan.to_string().c_str());
            return 1;
        }
        double local = 0;
        for (auto& rt : runtimes) local += ms(rt->history(1).front().duration);
        rolling_total.push_back(total);
        rolling_local.push_back(local / kMembers);
        rolling_cost.push_back((total - local) / kMembers);

        // Baseline: each member's plain local syn_replace, one after the other; the slowest.
        version = 3 - version;
        double slowest = 0;
        for (auto& rt : runtimes) {
            const auto rep = rt->syn_replace({{"m", lib(version)}});
            if (!rep.ok()) return 1;
            slowest = std::max(slowest, ms(rep.duration));
        }
        version = 3 - version;
        t0 = Clock::now();
        const auto atomic = coordinator.syn_replace({{"m", lib(version)}});
        const double atomic_ms = ms(Clock::now() - t0);
        if (!atomic.ok()) {
            std::fprintf(stderr, "%s\n", atomic.to_string().c_str());
            return 1;
        }
        atomic_total.push_back(atomic_ms);
        atomic_local.push_back(slowest);
        atomic_cost.push_back(atomic_ms - slowest);
    }
    std::printf(
        "fleet coordination cost, %d members on loopback ZooKeeper, %d rounds (median ms)\n",
        kMembers, rounds);
    std::printf(
        "  rolling replace, batch 1:  plan %.1f  local transaction per member %.2f  "
        "coordination per batch %.1f  (target <= 50)\n",
        median(rolling_total), median(rolling_local), median(rolling_cost));
    std::printf(
        "  atomic syn_replace:        plan %.1f  slowest local syn_replace %.2f  "
        "coordination %.1f  (target <= 50)\n",
        median(atomic_total), median(atomic_local), median(atomic_cost));
    coordinator.history();  // the plans stay in ZooKeeper until the server goes
    members.clear();
    return 0;
}

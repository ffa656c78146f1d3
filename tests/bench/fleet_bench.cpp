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

// Three members, each a runtime of its own with "m" loaded, and a coordinator.
struct Bench {
    static constexpr int kMembers = 3;
    test::ZooKeeperServer zk;
    std::vector<std::unique_ptr<Runtime>> runtimes;
    std::vector<std::unique_ptr<Fleet>> members;
    std::unique_ptr<Fleet> coordinator;
    int version = 1;

    bool start() {
        Config config;
        config.module_path = {NONSTOP_BENCH_MODULE_DIR};
        for (int i = 0; i < kMembers; ++i) {
            runtimes.push_back(std::make_unique<Runtime>(config));
            if (!runtimes.back()->load("m", lib(1)).ok()) return false;
            members.push_back(std::make_unique<Fleet>(member("b" + std::to_string(i + 1)),
                                                      runtimes.back().get()));
        }
        coordinator = std::make_unique<Fleet>(member(""), nullptr);
        return test::eventually([&] { return coordinator->members().size() == kMembers; });
    }
    FleetConfig member(const std::string& name) {
        FleetConfig fc;
        fc.zookeeper = zk.connect();
        fc.cluster = "bench";
        fc.member = name;
        return fc;
    }
    std::string next() {
        version = 3 - version;
        return lib(version);
    }
};

struct Figures {
    std::vector<double> total, local, cost;
    void add(double total_ms, double local_ms, double cost_ms) {
        total.push_back(total_ms);
        local.push_back(local_ms);
        cost.push_back(cost_ms);
    }
};

// A rolling replace in batches of 1: its time beyond the members' local transactions, per batch.
bool rolling(Bench& b, Figures& f) {
    const auto t0 = Clock::now();
    const auto plan = b.coordinator->replace("m", b.next(), 1, std::chrono::milliseconds(0));
    const double total = ms(Clock::now() - t0);
    if (!plan.ok()) {
        std::fprintf(stderr, "%s\n", plan.to_string().c_str());
        return false;
    }
    double local = 0;
    for (auto& rt : b.runtimes) local += ms(rt->history(1).front().duration);
    f.add(total, local / Bench::kMembers, (total - local) / Bench::kMembers);
    return true;
}

// An atomic fleet syn_replace against the slowest member's plain local syn_replace.
bool atomic(Bench& b, Figures& f) {
    const std::string library = b.next();
    double slowest = 0;
    for (auto& rt : b.runtimes) {
        const auto rep = rt->syn_replace({{"m", library}});
        if (!rep.ok()) return false;
        slowest = std::max(slowest, ms(rep.duration));
    }
    const auto t0 = Clock::now();
    const auto report = b.coordinator->syn_replace({{"m", b.next()}});
    const double total = ms(Clock::now() - t0);
    if (!report.ok()) {
        std::fprintf(stderr, "%s\n", report.to_string().c_str());
        return false;
    }
    f.add(total, slowest, total - slowest);
    return true;
}

}  // namespace

// usage: fleet_bench [ROUNDS]
int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 10;
    Bench bench;
    if (!bench.start()) return 1;
    Figures rolled, atomics;
    for (int r = 0; r < rounds; ++r)
        if (!rolling(bench, rolled) || !atomic(bench, atomics)) return 1;
    std::printf(
        "fleet coordination cost, %d members on loopback ZooKeeper, %d rounds (median ms)\n",
        Bench::kMembers, rounds);
    std::printf(
        "  rolling replace, batch 1:  plan %.1f  local transaction per member %.2f  "
        "coordination per batch %.1f  (target <= 50)\n",
        median(rolled.total), median(rolled.local), median(rolled.cost));
    std::printf(
        "  atomic syn_replace:        plan %.1f  slowest local syn_replace %.2f  "
        "coordination %.1f  (target <= 50)\n",
        median(atomics.total), median(atomics.local), median(atomics.cost));
    bench.coordinator->history();  // the plans stay in ZooKeeper until the server goes
    bench.members.clear();
    return 0;
}

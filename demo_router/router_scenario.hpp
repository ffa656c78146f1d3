// The six transactions of thesis chapter 5 (figures 5.4-5.9), driven through the C++ API: what
// the upgrade batch scripts/router-transactions.tcl does through the shell, for hosts and tests
// that run without one.
#pragma once

#include <nonstop/runtime.hpp>

#include <chrono>
#include <functional>
#include <string>
#include <vector>

namespace nonstop::router {

class RouterScenario {
public:
    struct Options {
        /// SetTimer before transaction 5: shorter than IP's slow drain, so it aborts.
        std::chrono::milliseconds abort_limit{2000};
        /// How long IP's disable takes in transaction 5 (the kSlowDrain control message).
        std::chrono::milliseconds slow_drain{3000};
        /// SetTimer before transaction 6.
        std::chrono::milliseconds commit_limit{10000};
        Upgrader::Mode mode = Upgrader::Mode::concurrent;
        /// Lets traffic flow after transaction `done` (1-6); returning false ends the scenario.
        std::function<bool(int done)> traffic;
        /// Where progress lines go (the transaction separators and outcomes).
        std::function<void(const std::string&)> print;
    };

    /// One command of the scenario and what the upgrader reported.
    struct Step {
        int transaction = 0;  // 1-6 as numbered in the thesis
        TransactionReport report;
        /// False for the one command the thesis shows aborting (transaction 5's Syn_Replace).
        bool should_commit = true;
        /// Whether the command ended as in the thesis.
        bool as_expected() const { return report.ok() == should_commit; }
    };

    /// Runs the scenario from an empty runtime; stops early only when `traffic` says so.
    static std::vector<Step> run(Runtime& runtime, const Options& options);
    /// Stops the router in dependency order: the event source first, then the relay sources,
    /// then OSPF, so every relay number consumed is served before its receiver goes.
    static void shut_down(Runtime& runtime);
};

}  // namespace nonstop::router

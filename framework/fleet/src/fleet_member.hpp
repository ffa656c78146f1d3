// This process as a member of its fleet: its ephemeral node under /nonstop/<cluster>/members
// (modules, versions, library digests, health), kept current from the runtime's observers, and
// the work plans address to it: a rolling replace's local transaction and rollback, an atomic
// fleet transaction's prepare, vote and decision.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/fleet/fleet_config.hpp"
#include "nonstop/release_transition.hpp"
#include "record.hpp"

namespace nonstop {

class Runtime;
class ZkSession;

class FleetMember {
public:
    /// Registers the member (throws Error if ZooKeeper refuses) and starts serving plans.
    FleetMember(ZkSession& session, const FleetConfig& config, Runtime& runtime);
    /// Stops serving and removes the member node.
    ~FleetMember();
    FleetMember(const FleetMember&) = delete;
    FleetMember& operator=(const FleetMember&) = delete;

private:
    void enroll();
    std::string describe() const;
    void work();
    void serve_plans();
    void serve_rolling(const std::string& plan, const Record& spec, Record mine);
    void upgrade(const std::string& plan, const Record& spec, Record mine);
    void await_probation(const std::string& plan, Record mine);
    void roll_back(const std::string& plan, const Record& spec, Record mine);
    void serve_atomic(const std::string& plan, const Record& spec, const Record& mine);
    void prepare_and_vote(const std::string& plan, Record spec);
    std::string refusal(const std::vector<Change>& changes,
                        const std::vector<std::string>& digests) const;
    std::string await_decision(const std::string& plan, std::uint64_t sessions);
    void apply_decided(const std::string& plan, const Record& spec, Record mine);
    std::string versions(const std::vector<std::string>& names) const;
    void write(const std::string& plan, const Record& mine);

    ZkSession& session_;
    const FleetConfig& config_;
    Runtime& runtime_;
    FleetPaths paths_;
    std::string fault_;  // NONSTOP_FLEET_FAULT: the tests' way to kill a member at a set point
    std::uint64_t observer_ = 0;
    std::uint64_t release_observer_ = 0;
    std::mutex releases_mutex_;
    /// The latest releases that left probation (permanent or rolled back), by transaction: a
    /// member on probation in a rolling plan reports the runtime's verdict from here.
    std::map<std::uint64_t, ReleaseTransition> settled_;
    std::atomic<bool> dirty_{true};
    std::atomic<bool> reenroll_{false};
    std::atomic<bool> stop_{false};
    std::set<std::string> finished_;  // plans with nothing left for this member (worker only)
    std::mutex voting_mutex_;
    std::set<std::string> voting_;  // atomic plans this process is preparing or holding
    std::set<std::string> voted_;   // atomic plans this process has voted on
    std::map<std::string, std::thread> voters_;  // one per atomic plan while it votes
    std::thread worker_;
};

}  // namespace nonstop

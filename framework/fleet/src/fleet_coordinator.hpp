// The coordinator's side of fleet upgrades: it writes plans into ZooKeeper and drives them
// (batches, probation, rollback; votes and the decision). A plan's whole progress is in
// ZooKeeper, so any coordinator of the cluster can resume or abort one whose driver died; the
// driver holds an ephemeral "driver" node under the plan while it drives.
#pragma once

#include <chrono>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/fleet/fleet_config.hpp"
#include "nonstop/fleet/member_info.hpp"
#include "nonstop/fleet/plan_report.hpp"
#include "record.hpp"

namespace nonstop {

class Runtime;
class ZkSession;

class FleetCoordinator {
public:
    /// `runtime` (may be null) only resolves library names through its module path.
    FleetCoordinator(ZkSession& session, const FleetConfig& config, Runtime* runtime);

    std::vector<MemberInfo> members();
    PlanReport replace(const std::string& name, const std::string& library, int batch,
                       std::chrono::milliseconds probation);
    PlanReport syn_replace(const std::vector<Change>& changes);
    PlanReport resume(const std::string& id);
    PlanReport abort(const std::string& id);
    PlanReport report(const std::string& id);
    std::vector<PlanReport> history();

private:
    using Slots = std::map<std::string, Record>;
    std::string resolve(const std::string& library) const;
    std::string create_plan(Record spec, const std::vector<std::string>& members);
    void take(const std::string& id);
    void release(const std::string& id);
    PlanReport drive(const std::string& id);
    void drive_rolling(const std::string& id);
    std::string in_flight(const std::string& id, Slots& slots, const std::set<std::string>& alive,
                          std::int64_t probation_ms, int& busy, std::int64_t& last_done);
    bool rolling_step(const std::string& id, Record& spec, Slots& slots,
                      const std::set<std::string>& alive);
    bool rollback_step(const std::string& id, Slots& slots, const std::set<std::string>& alive);
    void drive_atomic(const std::string& id);
    std::string atomic_verdict(const Record& spec, const Slots& slots,
                               const std::set<std::string>& alive, bool& decided);
    Slots slots(const std::string& id, bool watch);
    std::set<std::string> alive(bool watch);
    void put(const std::string& id, const std::string& member, const Record& slot);
    void set_state(const std::string& id, Record& spec, const std::string& state,
                   const std::string& reason = {});

    ZkSession& session_;
    const FleetConfig& config_;
    Runtime* runtime_;
    FleetPaths paths_;
    bool ensured_ = false;  // the plans' parent node exists
};

}  // namespace nonstop

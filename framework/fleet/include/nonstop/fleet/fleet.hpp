// A process's handle on its fleet: it joins the ZooKeeper ensemble, registers this process as a
// member (when it has a member name and a runtime) and coordinates fleet upgrades. Everything is
// kept in ZooKeeper, so any process of the cluster can list the members, follow a plan, resume or
// abort it.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "nonstop/change.hpp"
#include "nonstop/fleet/fleet_config.hpp"
#include "nonstop/fleet/member_info.hpp"
#include "nonstop/fleet/plan_report.hpp"

namespace nonstop {

class Runtime;
class FleetMember;
class FleetCoordinator;
class ZkSession;

class Fleet {
public:
    /// Connects (within config.connect_timeout) and, if config.member is set and `runtime` is
    /// not null, registers the member and starts serving the fleet's plans. Throws Error.
    Fleet(FleetConfig config, Runtime* runtime);
    /// Leaves the fleet: the member node goes with the session.
    ~Fleet();
    Fleet(const Fleet&) = delete;
    Fleet& operator=(const Fleet&) = delete;

    const FleetConfig& config() const;

    /// Every registered member, sorted by id.
    std::vector<MemberInfo> members();
    /// A rolling replace of module `name` on every member that runs it, `batch` members at a
    /// time, each batch observed for `probation` before the next starts; a failure rolls the
    /// upgraded members back. Returns once the plan ended.
    PlanReport replace(const std::string& name, const std::string& library, int batch = 1,
                       std::chrono::milliseconds probation = std::chrono::milliseconds(0));
    /// An atomic fleet transaction: every member that runs one of the names applies all the
    /// changes, or none does (two-phase commit through ZooKeeper).
    PlanReport syn_replace(const std::vector<Change>& changes);
    /// Drives a plan whose coordinator died to its end.
    PlanReport resume(const std::string& id);
    /// Stops a plan and rolls back what it upgraded (rolling); aborts it if undecided (atomic).
    PlanReport abort(const std::string& id);
    /// One plan as it stands.
    PlanReport plan(const std::string& id);
    /// Every plan, oldest first.
    std::vector<PlanReport> history();
    /// The ZooKeeper sessions this process has had: 1, plus one per re-registration.
    std::uint64_t sessions() const;

private:
    FleetConfig config_;
    std::unique_ptr<ZkSession> session_;
    std::unique_ptr<FleetCoordinator> coordinator_;
    std::unique_ptr<FleetMember> member_;
};

}  // namespace nonstop

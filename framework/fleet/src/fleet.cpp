#include "nonstop/fleet/fleet.hpp"

#include <sstream>

#include "fleet_coordinator.hpp"
#include "fleet_member.hpp"
#include "nonstop/error.hpp"
#include "zk_session.hpp"

namespace nonstop {

bool PlanReport::finished() const {
    return state == "done" || state == "rolled-back" || state == "aborted" || state == "committed";
}

std::string PlanReport::to_string() const {
    std::ostringstream out;
    out << id << " " << kind << " " << state;
    if (!decision.empty()) out << " (decision " << decision << ")";
    out << ": " << command;
    if (!reason.empty()) out << "\n  reason: " << reason;
    for (const auto& m : members) {
        out << "\n  " << m.member << ": " << m.state << "  before [" << m.before << "] after ["
            << m.after << "] blackout " << m.blackout_ms << " ms";
        if (!m.reason.empty()) out << "  (" << m.reason << ")";
        if (!m.release.empty()) out << "\n    release " << m.release;
    }
    return out.str();
}

namespace {

FleetConfig checked(FleetConfig c) {
    if (c.zookeeper.empty()) throw Error("a fleet needs a ZooKeeper ensemble (HOST:PORT)");
    if (c.cluster.empty() || c.cluster.find('/') != std::string::npos)
        throw Error("a fleet needs a cluster name without '/'");
    if (c.member.find('/') != std::string::npos) throw Error("a member name cannot contain '/'");
    return c;
}

}  // namespace

Fleet::Fleet(FleetConfig config, Runtime* runtime) : config_(checked(std::move(config))) {
    session_ = std::make_unique<ZkSession>(config_.zookeeper, config_.session_timeout,
                                           config_.connect_timeout);
    coordinator_ = std::make_unique<FleetCoordinator>(*session_, config_, runtime);
    if (runtime && !config_.member.empty())
        member_ = std::make_unique<FleetMember>(*session_, config_, *runtime);
}

Fleet::~Fleet() {
    member_.reset();
    coordinator_.reset();
    session_.reset();
}

const FleetConfig& Fleet::config() const { return config_; }
std::vector<MemberInfo> Fleet::members() { return coordinator_->members(); }
PlanReport Fleet::replace(const std::string& name, const std::string& library, int batch,
                          std::chrono::milliseconds probation) {
    return coordinator_->replace(name, library, batch, probation);
}
PlanReport Fleet::syn_replace(const std::vector<Change>& changes) {
    return coordinator_->syn_replace(changes);
}
PlanReport Fleet::resume(const std::string& id) { return coordinator_->resume(id); }
PlanReport Fleet::abort(const std::string& id) { return coordinator_->abort(id); }
PlanReport Fleet::plan(const std::string& id) { return coordinator_->report(id); }
std::vector<PlanReport> Fleet::history() { return coordinator_->history(); }
std::uint64_t Fleet::sessions() const { return session_->sessions(); }

}  // namespace nonstop

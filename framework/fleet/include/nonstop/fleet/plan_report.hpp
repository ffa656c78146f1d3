// The record of one fleet upgrade (a rolling replace or an atomic fleet transaction), as kept in
// ZooKeeper: the plan and every member's outcome.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nonstop {

struct MemberOutcome {
    std::string member;
    std::string state;   // pending, work, upgrading, probation (its runtime's), done (its release
                         // permanent), failed, rollback, rolled-back, skipped;
                         // prepare, yes, no, committed, aborted (atomic)
    std::string before;  // versions before and after, "NAME VERSION" joined by ", "
    std::string after;
    double blackout_ms = 0;
    std::string reason;
    /// Rolling: the runtime's verdict on the member's release, "permanent (RULE: EVIDENCE)" or
    /// "rolled back (RULE: EVIDENCE)"; empty until there is one.
    std::string release;
    std::uint64_t transaction = 0;  // rolling: the id of the member runtime's local transaction
};

struct PlanReport {
    std::string id;        // the plan's node name, e.g. "plan-0000000003"
    std::string kind;      // "rolling" or "atomic"
    std::string command;   // as the operator typed it
    std::string state;     // running, done, rolling-back, rolled-back, aborted (rolling);
                           // voting, committed, aborted (atomic)
    std::string reason;    // one sentence; empty when it succeeded
    std::string decision;  // atomic: commit or abort, once written
    std::vector<MemberOutcome> members;
    bool finished() const;
    bool ok() const { return state == "done" || state == "committed"; }
    /// A few lines for an operator's console.
    std::string to_string() const;
};

}  // namespace nonstop

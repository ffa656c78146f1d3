// A change in the standing of a committed release (OTP's release handler: a new release is
// temporary until made permanent): what a host, or a release store, follows to know which
// versions are provisional, permanent, or were taken back.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "nonstop/export.hpp"

namespace nonstop {

enum class ReleaseState {
    provisional,  // committed, under probation: the health rules may still roll it back
    permanent,    // accepted, its probation ended clean, or committed with probation off
    rolled_back,  // undone by a rollback transaction: the previous versions serve again
};
NONSTOP_API const char* to_string(ReleaseState s);

/// One module of a release: the version it replaced and the one it brought.
struct ModuleChange {
    std::string name;
    std::string old_version;
    std::string new_version;
    std::string old_library;  // real path of the old version's library, and its SHA-256
    std::string old_sha256;
    std::string new_library;
    std::string new_sha256;
};

struct ReleaseTransition {
    std::uint64_t transaction = 0;  // the transaction that committed the release
    std::string command;            // as the operator typed it
    ReleaseState state = ReleaseState::provisional;
    /// Why: provisional: "probation"; permanent: "accepted", "expired" (probation ended clean)
    /// or "no probation"; rolled_back: the rule ("operator", "failures", "failure rate",
    /// "stuck", "idle", "audit").
    std::string rule;
    std::string evidence;                    // one sentence; empty when there is nothing to add
    std::uint64_t rollback = 0;              // rolled_back: the id of the rollback transaction
    std::chrono::milliseconds probation{0};  // provisional: how long
    std::vector<ModuleChange> modules;
    std::chrono::system_clock::time_point time;
};

}  // namespace nonstop

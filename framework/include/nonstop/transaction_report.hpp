// The record of one upgrader command: every command yields a report.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "nonstop/export.hpp"

namespace nonstop {

enum class Outcome {
    committed,  // every change took effect
    aborted,    // a step failed or a target voted no: every module is as it was
    rejected,   // the command failed validation: nothing was attempted
};
NONSTOP_API const char* to_string(Outcome o);

/// How a group transaction runs its targets (thesis 4.8.1).
enum class Mode {
    concurrent,  // one slave thread per target, phases separated by a barrier
    sequential,  // the same steps, one target at a time
};
NONSTOP_API const char* to_string(Mode m);

/// What a transaction does to one module.
enum class Action { load, unload, replace, enable, disable };
NONSTOP_API const char* to_string(Action a);

/// A target's answer to CanCommit (thesis 3.7.1); none when it did not vote.
enum class Vote { none, yes, no };
NONSTOP_API const char* to_string(Vote v);

/// What happened to one module in a transaction.
struct TargetReport {
    std::string name;
    Action action = Action::load;
    std::string library;
    std::string old_version;
    std::string new_version;
    std::string old_kind;  // the kinds of module the libraries declare (they differ only when
    std::string new_kind;  // a forced replacement changed it)
    std::string sha256;    // of the new version's library
    Vote vote = Vote::none;
    std::chrono::nanoseconds quiescence{0};  // prepare → quiescent
    std::size_t checkpoint_bytes = 0;
    std::uint64_t buffered = 0;  // messages that arrived during the swap
    /// First buffered message → first message served afterwards; zero if none was buffered.
    std::chrono::nanoseconds blackout{0};
    /// The version of an instance given up on (a hook or handler past its limit; its thread is
    /// left to end on its own), and the call it was in; empty when none was.
    std::string abandoned_version;
    std::string abandoned_in;
    /// Forced commands: the transaction went on without a checkpoint (the new version started
    /// from an empty state), and how many accepted messages were never served.
    bool forced = false;
    std::uint64_t dropped = 0;
    /// Preflight of the new library in a sandbox child: whether it ran, and its cost, spent
    /// before buffering (not part of the blackout): spawning the child, loading the library,
    /// initialize().
    bool preflight = false;
    std::chrono::nanoseconds preflight_time{0};
    /// Whether the child ran get_state() on the old version's checkpoint, and what that added
    /// to voting (it is part of the blackout).
    bool preflight_state = false;
    std::chrono::nanoseconds preflight_state_time{0};
    /// Rollbacks: how the older version got its state back ("down-converted to schema 1",
    /// "checkpoint schema 2 as is", "commit-time checkpoint"), and how many messages the newer
    /// version served since its commit whose effects the commit-time checkpoint discards.
    std::string state_transfer;
    std::uint64_t discarded = 0;
};

struct TransactionReport {
    std::uint64_t id = 0;
    std::string command;       // as the operator would type it
    std::string issuer;        // who issued it: current_issuer() of the calling thread
    std::optional<Mode> mode;  // for transactions that replace or load
    Outcome outcome = Outcome::rejected;
    std::string reason;  // one sentence; empty when committed
    std::vector<TargetReport> targets;
    std::chrono::system_clock::time_point started;
    std::chrono::nanoseconds waited{0};    // queued behind another transaction
    std::chrono::nanoseconds duration{0};  // from the start of validation to the end
    /// A committed replacement under probation: provisional for this long (0: permanent now).
    std::chrono::milliseconds probation{0};
    /// A rollback: the transaction it undoes, the rule that asked for it ("operator",
    /// "failures", "failure rate", "stuck", "idle", "audit") and the evidence, one sentence.
    std::uint64_t undoes = 0;
    std::string rule;
    std::string evidence;
    bool ok() const { return outcome == Outcome::committed; }
    /// A few lines for an operator's console.
    NONSTOP_API std::string to_string() const;
};

}  // namespace nonstop

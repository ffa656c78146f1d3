// The record of one upgrader command (issue: every command yields a report).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace nonstop {

enum class Outcome {
    committed,  // every change took effect
    aborted,    // a step failed or a target voted no: every module is as it was
    rejected,   // the command failed validation: nothing was attempted
};

const char* to_string(Outcome o);

/// What happened to one module in a transaction.
struct TargetReport {
    std::string name;
    std::string action;  // load, unload, replace, enable, disable
    std::string library;
    std::string old_version;
    std::string new_version;
    std::string vote;  // yes, no, or empty when the target did not vote
    std::chrono::nanoseconds quiescence{0};  // prepare → quiescent
    std::size_t checkpoint_bytes = 0;
    std::uint64_t buffered = 0;  // messages that arrived during the swap
    /// First buffered message → first message served afterwards; zero if none was buffered.
    std::chrono::nanoseconds blackout{0};
};

struct TransactionReport {
    std::uint64_t id = 0;
    std::string command;  // as the operator would type it
    std::string mode;     // concurrent or sequential, for group transactions
    Outcome outcome = Outcome::rejected;
    std::string reason;  // one sentence; empty when committed
    std::vector<TargetReport> targets;
    std::chrono::system_clock::time_point started;
    std::chrono::nanoseconds waited{0};    // queued behind another transaction
    std::chrono::nanoseconds duration{0};  // from the start of validation to the end
    bool ok() const { return outcome == Outcome::committed; }
    /// A few lines for an operator's console.
    std::string to_string() const;
};

}  // namespace nonstop

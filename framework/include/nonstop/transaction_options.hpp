// What a caller may decide per transaction, beyond the changes themselves.
#pragma once

#include <chrono>
#include <optional>

namespace nonstop {

struct TransactionOptions {
    /// Try each new library in a sandbox child process first (Config::preflight); empty: the
    /// Config default.
    std::optional<bool> preflight;
    /// Also run get_state() on the old version's checkpoint in that child during voting
    /// (Config::preflight_state); true implies preflight. Empty: the Config default.
    std::optional<bool> preflight_state;
    /// replace: as Runtime::replace's `force` (another kind allowed, a stuck version abandoned).
    bool force = false;
    /// How long this transaction's release stays provisional (as Runtime::set_probation, for
    /// this one transaction only; 0: permanent at once). Empty: the runtime's probation.
    std::optional<std::chrono::milliseconds> probation;
};

}  // namespace nonstop

// What a caller may decide per transaction, beyond the changes themselves.
#pragma once

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
};

}  // namespace nonstop

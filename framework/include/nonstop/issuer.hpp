// Who issues the commands of the calling thread: each transaction report (and the release
// store's record of it) names its issuer, e.g. "local shell" or "console 127.0.0.1:40112".
#pragma once

#include <string>

#include "nonstop/export.hpp"

namespace nonstop {

/// Names the issuer of every command the calling thread makes while it lives; scopes nest (the
/// innermost wins, the previous one is back when it ends).
class NONSTOP_API IssuerScope {
public:
    explicit IssuerScope(std::string issuer);
    ~IssuerScope();
    IssuerScope(const IssuerScope&) = delete;
    IssuerScope& operator=(const IssuerScope&) = delete;

private:
    std::string previous_;
};

/// The issuer of a host's shutdown: commands issued under it (e.g. unloading modules in a
/// chosen order before the runtime ends) are recorded, but the release kept in the state
/// directory stays the one to come back to. unload_all() issues its removals so.
inline constexpr const char* kShutdownIssuer = "shutdown";
/// The issuer of Runtime::restore()'s transactions, which restart the stored release.
inline constexpr const char* kRestoreIssuer = "restore";

/// The calling thread's issuer: the innermost IssuerScope's, or "host" when none is open.
NONSTOP_API std::string current_issuer();

}  // namespace nonstop

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

/// The calling thread's issuer: the innermost IssuerScope's, or "host" when none is open.
NONSTOP_API std::string current_issuer();

}  // namespace nonstop

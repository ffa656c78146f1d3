#include "nonstop/issuer.hpp"

namespace nonstop {

namespace {
thread_local std::string issuer_of_thread;
}

IssuerScope::IssuerScope(std::string issuer) : previous_(std::move(issuer_of_thread)) {
    issuer_of_thread = std::move(issuer);
}

IssuerScope::~IssuerScope() { issuer_of_thread = std::move(previous_); }

std::string current_issuer() { return issuer_of_thread.empty() ? "host" : issuer_of_thread; }

}  // namespace nonstop

// A snapshot of one module for introspection (shell `info`, host dashboards).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "nonstop/export.hpp"

namespace nonstop {

/// The states of a module implementation (thesis figure 4.14).
enum class ModuleStatus {
    initializing,  // created, running initialize()
    waiting,       // initialized, blocked until its transaction starts it
    service,       // serving and allowed to initiate requests
    passive,       // serving its queue but initiating nothing (disabled)
    quiescent,     // reached its termination message; checkpoint or resume next
    stopped,       // service has ended
    failed,        // its thread ended inside module code (pthread_exit, cancellation)
};

NONSTOP_API const char* to_string(ModuleStatus s);

struct ModuleInfo {
    std::string name;
    std::string kind;
    std::string version;
    std::string library;
    std::string sha256;  // of the library content the current version was loaded from
    ModuleStatus status = ModuleStatus::stopped;
    bool enabled = false;
    bool in_transaction = false;
    std::size_t queue_depth = 0;       // messages waiting, including a swap buffer
    std::uint64_t handled = 0;         // messages served by every version of this module
    std::uint64_t handler_errors = 0;  // handle() calls (or hooks) that threw
    std::uint64_t failed = 0;          // handle() calls that threw (not counted in handled)
    std::string last_failure;          // the latest of those failures: where and why
    std::chrono::system_clock::time_point last_failure_time{};
    /// The watchdog's view: the module has been inside one handle() call (or hook) longer than
    /// Config::stuck_after; how long so far, and in which call.
    bool stuck = false;
    std::chrono::nanoseconds stuck_for{0};
    std::string stuck_in;
    std::uint64_t ticks_coalesced = 0;        // timer ticks dropped: its queue was full
    std::uint64_t notifications_dropped = 0;  // event notifications refused: its queue was full
    /// Under probation: the transaction that brought this version in is provisional, for
    /// probation_left more; the health rules may still roll it back.
    bool provisional = false;
    std::uint64_t provisional_transaction = 0;
    std::chrono::milliseconds probation_left{0};
    /// The latest audit (Config::audit_period); audited is false before the first.
    bool audited = false;
    bool audit_healthy = true;
    std::string audit_detail;
    std::chrono::system_clock::time_point audit_time{};
    /// Consecutive failed audits, and the latest step of the escalation ladder they climbed
    /// ("report", "restart", "rollback", "disable"; empty when none).
    std::uint32_t audit_failures = 0;
    std::string audit_step;
};

/// A module instance the framework gave up on (a hook or handler that did not return within
/// its limit): its thread still runs module code, so its library stays mapped.
struct AbandonedInstance {
    std::string name;
    std::string version;
    std::string library;
    std::string in;  // the call it is still in ("handle", "initialize", ...); empty if it left
    std::chrono::nanoseconds busy_for{0};
};

}  // namespace nonstop

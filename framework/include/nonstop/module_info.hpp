// A snapshot of one module for introspection (shell `info`, host dashboards).
#pragma once

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
};

NONSTOP_API const char* to_string(ModuleStatus s);

struct ModuleInfo {
    std::string name;
    std::string kind;
    std::string version;
    std::string library;
    ModuleStatus status = ModuleStatus::stopped;
    bool enabled = false;
    bool in_transaction = false;
    std::size_t queue_depth = 0;       // messages waiting, including a swap buffer
    std::uint64_t handled = 0;         // messages served by every version of this module
    std::uint64_t handler_errors = 0;  // handle() calls that threw
};

}  // namespace nonstop

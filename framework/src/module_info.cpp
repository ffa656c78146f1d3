#include "nonstop/module_info.hpp"

namespace nonstop {

const char* to_string(ModuleStatus s) {
    switch (s) {
        case ModuleStatus::initializing: return "initializing";
        case ModuleStatus::waiting: return "waiting";
        case ModuleStatus::service: return "service";
        case ModuleStatus::passive: return "passive";
        case ModuleStatus::quiescent: return "quiescent";
        case ModuleStatus::stopped: return "stopped";
        case ModuleStatus::failed: return "failed";
    }
    return "?";
}

}  // namespace nonstop

// One step in the life of a module implementation (thesis figures 4.14 and 5.4-5.9): what a
// host prints, logs or tests on. Steps: "init", "wait to start", "start", "disable",
// "get TERM message", "reach quiescent state", "put state", "prepared", "get state", "commit",
// "hot swapped", "abort", "unloaded", "enable".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

namespace nonstop {

struct LifecycleEvent {
    std::uint64_t transaction = 0;  // the upgrader's report id; 0 outside a transaction
    std::string module;
    std::string version;
    std::string step;
    std::chrono::system_clock::time_point time;
};

}  // namespace nonstop

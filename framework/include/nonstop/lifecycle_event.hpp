// One step in the life of a module implementation (thesis figures 4.14 and 5.4-5.9): what a
// host prints, logs or tests on. Steps, in the order a replacement takes them:
//   new version: "init", "wait to start"
//   old version: "disable", "get TERM message", "reach quiescent state", "put state",
//                "prepared" — or "timeout" when quiescence did not come in time
//   new version: "get state"; old version: "commit"; new version: "hot swapped", "start";
//   old version: "unloaded"
// After an abort the old version takes "abort" then "resume". A removal takes "disable",
// "get TERM message", "reach quiescent state", "unloaded".
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

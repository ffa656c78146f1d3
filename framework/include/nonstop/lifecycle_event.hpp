// One step in the life of a module implementation (thesis figures 4.14 and 5.4-5.9): what a
// host prints, logs or tests on. Steps, in the order a replacement takes them:
//   new version: init, wait to start
//   old version: disable, will term, get TERM message, reach quiescent state, put state,
//                prepared — or timeout when quiescence did not come in time
//   new version: get state; old version: commit; hot swapped; new version: start;
//   old version: unloaded
// After an abort each old version takes abort, then wait to start, and once every target of
// the group has aborted, start; a discarded new version is unloaded. A removal takes disable,
// will term, get TERM message, reach quiescent state, unloaded. An operator's Enable and
// Disable take enable and disable.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "nonstop/export.hpp"

namespace nonstop {

enum class Step {
    init,           // initialize() returned, in the new version's thread
    wait_to_start,  // parked until its transaction starts it
    start,          // serving (again)
    enable,         // made active
    disable,        // made passive
    will_term,      // the termination message is appended behind its queue
    get_term,       // the service loop took the termination message
    quiescent,      // everything before the termination message is served
    put_state,      // checkpoint taken
    prepared,       // voted yes
    timeout,        // quiescence did not come within the limit: votes no
    get_state,      // the checkpoint restored into the new version
    commit,         // the old version leaves
    hot_swapped,    // the proxy points at the new version
    abort,          // the transaction aborted: the old version keeps the module
    unloaded,       // the instance is destroyed (its library unmaps with its last instance)
};

/// The step's text as the thesis prints it ("wait to start", "get TERM message", ...).
NONSTOP_API const char* to_string(Step step);

struct LifecycleEvent {
    std::uint64_t transaction = 0;  // the upgrader's report id; 0 outside a transaction
    std::string module;
    std::string version;
    Step step = Step::init;
    std::chrono::system_clock::time_point time;
};

}  // namespace nonstop

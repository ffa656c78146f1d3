// The router's scenario itself, the six transactions of thesis chapter 5, is the upgrade batch
// scripts/router-transactions.tcl (the demo runs it over the remote console, the test sources
// it in process). What hosts of the router share besides is how it stops.
#pragma once

#include <nonstop/runtime.hpp>

namespace nonstop::router {

class RouterScenario {
public:
    /// Stops the router in dependency order: the event source first, then the relay sources,
    /// then OSPF, so every relay number consumed is served before its receiver goes. With
    /// `checkpoint` (a state directory), each module is checkpointed just before it goes.
    static void shut_down(Runtime& runtime, bool checkpoint = false);
};

}  // namespace nonstop::router

#include "router_scenario.hpp"

#include <cstdio>

namespace nonstop::router {

void RouterScenario::shut_down(Runtime& runtime, bool checkpoint) {
    for (const char* name : {"TIMER", "IP", "VRRP", "OSPF"}) {
        if (!runtime.info(name)) continue;
        // Taken just before the module goes, once its sources have gone: checkpointed all at
        // once, IP could still relay a tick after its checkpoint, and resend it after a restart.
        if (checkpoint)
            for (const auto& c : runtime.checkpoint(name))
                if (!c.error.empty())
                    std::fprintf(stderr, "nonstop-router: no checkpoint of %s saved: %s\n", name,
                                 c.error.c_str());
        runtime.unload(name);
    }
    runtime.unload_all();  // anything else, checkpointed first when there is a store
}

}  // namespace nonstop::router

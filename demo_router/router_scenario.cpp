#include "router_scenario.hpp"

namespace nonstop::router {

void RouterScenario::shut_down(Runtime& runtime) {
    for (const char* name : {"TIMER", "IP", "VRRP", "OSPF"})
        if (runtime.info(name)) runtime.unload(name);
    runtime.unload_all();
}

}  // namespace nonstop::router

// The VRRP module of the non-stop router (thesis 5.1.2): broadcasts HEARTBEAT packets and relays
// consecutive numbers to OSPF in the plain message protocol.
#include <nonstop/module.hpp>

#include "relay_source.hpp"

#ifndef ROUTER_VERSION
#error ROUTER_VERSION must be defined
#endif
#define ROUTER_STR2(x) #x
#define ROUTER_STR(x) ROUTER_STR2(x)

namespace {

using namespace nonstop::router;

class Vrrp : public RelaySource {
public:
    Vrrp() : RelaySource("HEARTBEAT", kVrrpMonitorEnv, kDefaultVrrpMonitorPort, ROUTER_VERSION) {}
};

}  // namespace

NONSTOP_MODULE(Vrrp, "VRRP", ROUTER_STR(ROUTER_VERSION))

// The VRRP module of the non-stop router (thesis 5.1.2): broadcasts HEARTBEAT packets and relays
// consecutive numbers to OSPF in the plain message protocol.
#include <nonstop/module.hpp>

#include "relay_source.hpp"

#include "router_version.hpp"

namespace {

using namespace nonstop::router;

class Vrrp : public RelaySource {
public:
    Vrrp() : RelaySource("HEARTBEAT", kVrrpMonitorEnv, kDefaultVrrpMonitorPort, ROUTER_VERSION) {}
};

}  // namespace

NONSTOP_MODULE(Vrrp, "VRRP", ROUTER_STR(ROUTER_VERSION))

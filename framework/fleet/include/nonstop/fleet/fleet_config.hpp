// How a process joins a fleet: the ZooKeeper ensemble, the cluster, its member name, and the
// fleet's time limits (their defaults are stated here, once).
#pragma once

#include <chrono>
#include <string>

namespace nonstop {

struct FleetConfig {
    /// The ensemble, as ZooKeeper's clients spell it: "HOST:PORT[,HOST:PORT...][/chroot]".
    std::string zookeeper;
    /// The cluster's name: its nodes live under /nonstop/<cluster>.
    std::string cluster;
    /// This process's member name; empty: a coordinator only, which hosts nothing.
    std::string member;
    /// ZooKeeper's session timeout: a member that dies leaves the fleet after this long.
    std::chrono::milliseconds session_timeout{6000};
    /// Connecting (and reconnecting) to the ensemble; an operation waits this long for it.
    std::chrono::milliseconds connect_timeout{10000};
    /// A member's local transaction, as the coordinator waits for it.
    std::chrono::milliseconds step_timeout{60000};
    /// An atomic fleet transaction: collecting the votes, and a member waiting for the decision.
    std::chrono::milliseconds vote_timeout{15000};
    /// How often a member refreshes its node (health, messages handled) when nothing happens.
    std::chrono::milliseconds refresh_period{1000};
};

}  // namespace nonstop

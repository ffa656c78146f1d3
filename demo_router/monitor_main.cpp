// nonstop-ip-monitor, nonstop-ospf-monitor, nonstop-vrrp-monitor: the monitor nodes of thesis
// figure 5.1. Each receives its module's packets on a loopback UDP port, prints the version and
// time of each, and on SIGINT/SIGTERM (or after --duration) prints one SUMMARY line and exits 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "monitor_log.hpp"
#include "router_protocol.hpp"
#include "udp_receiver.hpp"

#ifndef MONITOR_MODE
#define MONITOR_MODE ""
#endif

namespace {

using namespace nonstop::router;

volatile std::sig_atomic_t stopping = 0;

void on_stop(int) { stopping = 1; }

}  // namespace

int main(int argc, char** argv) {
    std::string mode = MONITOR_MODE;
    long port = -1;
    long period_ms = kDefaultPeriod.count();
    double duration_s = 0;
    bool quiet_mode = false;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "monitor: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--mode")
            mode = value();
        else if (arg == "--port")
            port = std::atol(value().c_str());
        else if (arg == "--period")
            period_ms = std::atol(value().c_str());
        else if (arg == "--duration")
            duration_s = std::atof(value().c_str());
        else if (arg == "--quiet")
            quiet_mode = true;
        else {
            std::fprintf(stderr,
                         "usage: %s [--mode ip|ospf|vrrp] [--port PORT] [--period MS] "
                         "[--duration SECONDS] [--quiet]\n",
                         argv[0]);
            return arg == "--help" ? 0 : 2;
        }
    }
    std::string name;
    std::uint16_t default_port = 0;
    if (mode == "ip")
        name = "IP", default_port = kDefaultIpMonitorPort;
    else if (mode == "ospf")
        name = "OSPF", default_port = kDefaultOspfMonitorPort;
    else if (mode == "vrrp")
        name = "VRRP", default_port = kDefaultVrrpMonitorPort;
    else {
        std::fprintf(stderr, "monitor: --mode must be ip, ospf or vrrp\n");
        return 2;
    }
    if (port < 0) port = default_port;
    if (port > 65535 || period_ms <= 0) {
        std::fprintf(stderr, "monitor: bad --port or --period\n");
        return 2;
    }

    struct sigaction action {};
    action.sa_handler = on_stop;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);

    try {
        UdpReceiver receiver(static_cast<std::uint16_t>(port));
        // Three periods without a packet: the module is out of service (thesis figure 5.3).
        MonitorLog log(std::chrono::milliseconds(3 * period_ms));
        std::printf("%s monitor listening on %s:%u\n", name.c_str(), kMonitorHost, receiver.port());
        std::fflush(stdout);
        const auto deadline = MonitorLog::Clock::now() +
                              std::chrono::milliseconds(static_cast<long long>(duration_s * 1000));
        while (!stopping && (duration_s <= 0 || MonitorLog::Clock::now() < deadline)) {
            auto text = receiver.receive(std::chrono::milliseconds(100));
            if (!text) continue;
            const auto seen = log.record(*text);
            const auto& f = seen.fields;
            auto field = [&](const char* key) {
                auto it = f.find(key);
                return it == f.end() ? std::string("?") : it->second;
            };
            long long sent_ms = 0;
            try {
                sent_ms = std::stoll(field("time_ms"));
            } catch (...) {
            }
            if (seen.outage_ms > 0)
                std::printf("%s monitor: OUTAGE of %lld ms ended\n", name.c_str(), seen.outage_ms);
            if (!seen.anomaly.empty())
                std::printf("%s monitor: ANOMALY %s\n", name.c_str(), seen.anomaly.c_str());
            if (!quiet_mode) {
                const std::string kind = field("kind");
                if (kind == "RELAY")
                    std::printf(
                        "%s monitor: relay %s from %s V%s served by %s V%s (protocol %s) at %s\n",
                        name.c_str(), field("number").c_str(), field("from").c_str(),
                        field("from_version").c_str(), field("module").c_str(),
                        field("version").c_str(), field("protocol").c_str(),
                        format_time(sent_ms).c_str());
                else
                    std::printf("%s monitor: %s from %s V%s at %s\n", name.c_str(), kind.c_str(),
                                field("module").c_str(), field("version").c_str(),
                                format_time(sent_ms).c_str());
            }
            std::fflush(stdout);
        }
        // What arrived before the stop is part of the record, or a stopped router would seem to
        // have lost its last relays.
        while (auto text = receiver.receive(std::chrono::milliseconds(0))) log.record(*text);
        std::printf("%s\n", log.summary(name).c_str());
        std::fflush(stdout);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s monitor: %s\n", name.c_str(), e.what());
        return 1;
    }
    return 0;
}

// nonstop-ip-monitor, nonstop-ospf-monitor, nonstop-vrrp-monitor: the monitor nodes of thesis
// figure 5.1. Each receives its module's packets on a loopback UDP port, prints the version and
// time of each, and on SIGINT/SIGTERM (or after --duration) prints one SUMMARY line and exits 0.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
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

struct Options {
    std::string mode = MONITOR_MODE;
    std::string name;  // IP, OSPF or VRRP
    long port = -1;
    long period_ms = kDefaultPeriod.count();
    double duration_s = 0;
    bool quiet = false;
};

// The options; an exit status when the monitor should not run.
std::optional<int> parse(int argc, char** argv, Options& o) {
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "monitor: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--mode") {
            o.mode = value();
        } else if (arg == "--port") {
            o.port = std::atol(value().c_str());
        } else if (arg == "--period") {
            o.period_ms = std::atol(value().c_str());
        } else if (arg == "--duration") {
            o.duration_s = std::atof(value().c_str());
        } else if (arg == "--quiet") {
            o.quiet = true;
        } else {
            std::fprintf(stderr,
                         "usage: %s [--mode ip|ospf|vrrp] [--port PORT] [--period MS] "
                         "[--duration SECONDS] [--quiet]\n",
                         argv[0]);
            return arg == "--help" ? 0 : 2;
        }
    }
    std::uint16_t default_port = 0;
    if (o.mode == "ip") {
        o.name = "IP", default_port = kDefaultIpMonitorPort;
    } else if (o.mode == "ospf") {
        o.name = "OSPF", default_port = kDefaultOspfMonitorPort;
    } else if (o.mode == "vrrp") {
        o.name = "VRRP", default_port = kDefaultVrrpMonitorPort;
    } else {
        std::fprintf(stderr, "monitor: --mode must be ip, ospf or vrrp\n");
        return 2;
    }
    if (o.port < 0) o.port = default_port;
    if (o.port > 65535 || o.period_ms <= 0) {
        std::fprintf(stderr, "monitor: bad --port or --period\n");
        return 2;
    }
    return std::nullopt;
}

// One packet as the monitor prints it: outages and anomalies always, the packet unless quiet.
void print(const Options& o, const MonitorLog::Observation& seen) {
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
    const char* name = o.name.c_str();
    if (seen.outage_ms > 0)
        std::printf("%s monitor: OUTAGE of %lld ms ended\n", name, seen.outage_ms);
    if (!seen.anomaly.empty()) std::printf("%s monitor: ANOMALY %s\n", name, seen.anomaly.c_str());
    if (o.quiet) return;
    const std::string kind = field("kind");
    if (kind == "RELAY")
        std::printf("%s monitor: relay %s from %s V%s served by %s V%s (protocol %s) at %s\n", name,
                    field("number").c_str(), field("from").c_str(), field("from_version").c_str(),
                    field("module").c_str(), field("version").c_str(), field("protocol").c_str(),
                    format_time(sent_ms).c_str());
    else
        std::printf("%s monitor: %s from %s V%s at %s\n", name, kind.c_str(),
                    field("module").c_str(), field("version").c_str(),
                    format_time(sent_ms).c_str());
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (auto status = parse(argc, argv, o)) return *status;
    struct sigaction action {};
    action.sa_handler = on_stop;
    sigaction(SIGINT, &action, nullptr);
    sigaction(SIGTERM, &action, nullptr);
    try {
        UdpReceiver receiver(static_cast<std::uint16_t>(o.port));
        // Three periods without a packet: the module is out of service (thesis figure 5.3).
        MonitorLog log(std::chrono::milliseconds(3 * o.period_ms));
        std::printf("%s monitor listening on %s:%u\n", o.name.c_str(), kMonitorHost,
                    receiver.port());
        std::fflush(stdout);
        const auto deadline =
            MonitorLog::Clock::now() +
            std::chrono::milliseconds(static_cast<long long>(o.duration_s * 1000));
        while (!stopping && (o.duration_s <= 0 || MonitorLog::Clock::now() < deadline)) {
            auto text = receiver.receive(std::chrono::milliseconds(100));
            if (!text) continue;
            print(o, log.record(*text));
            std::fflush(stdout);
        }
        // What arrived before the stop is part of the record, or a stopped router would seem to
        // have lost its last relays.
        while (auto text = receiver.receive(std::chrono::milliseconds(0))) log.record(*text);
        std::printf("%s\n", log.summary(o.name).c_str());
        std::fflush(stdout);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "%s monitor: %s\n", o.name.c_str(), e.what());
        return 1;
    }
    return 0;
}

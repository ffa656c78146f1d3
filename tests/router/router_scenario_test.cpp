// End to end: the six transactions of thesis chapter 5 with the real router module libraries,
// watched by monitor nodes on real loopback UDP sockets in this process.
#include <gtest/gtest.h>
#include <nonstop/runtime.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "lifecycle_printer.hpp"
#include "monitor_log.hpp"
#include "router_protocol.hpp"
#include "router_scenario.hpp"
#include "udp_receiver.hpp"
#include "udp_sender.hpp"

namespace nonstop::router {
namespace {

using namespace std::chrono_literals;

constexpr auto kPeriod = 50ms;
// Upper bounds on waiting for a condition; reaching one is a failure, not a pace.
constexpr auto kPatience = 15s;

/// A monitor node: a receiving thread feeding a MonitorLog.
class MonitorNode {
public:
    MonitorNode() : log(3 * kPeriod), thread_([this] {
        while (!stop_) {
            if (auto text = receiver_.receive(20ms)) log.record(*text);
        }
    }) {}
    ~MonitorNode() {
        stop_ = true;
        thread_.join();
    }
    std::uint16_t port() const { return receiver_.port(); }
    /// Waits until every datagram sent before this call has been recorded: loopback delivers
    /// into the receiving socket during send(), so an END marker sent now is queued behind them.
    bool drain() {
        UdpSender marker;
        marker.open(port());
        marker.send("END");
        return log.wait_until([](const MonitorLog::Snapshot& s) { return s.ended; }, kPatience);
    }

    MonitorLog log;

private:
    UdpReceiver receiver_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

long long relay_last(const MonitorLog::Snapshot& s, const std::string& source) {
    auto it = s.relays.find(source);
    return it == s.relays.end() ? 0 : it->second.last;
}

TEST(RouterScenarioTest, SixTransactionsEndAsInTheThesis) {
    MonitorNode ip, ospf, vrrp;
    ::setenv(kIpMonitorEnv, std::to_string(ip.port()).c_str(), 1);
    ::setenv(kOspfMonitorEnv, std::to_string(ospf.port()).c_str(), 1);
    ::setenv(kVrrpMonitorEnv, std::to_string(vrrp.port()).c_str(), 1);
    ::setenv(kPeriodEnv, std::to_string(kPeriod.count()).c_str(), 1);
    ::setenv(kQuietEnv, "1", 1);

    Config config;
    config.module_path = {NONSTOP_ROUTER_MODULE_DIR};
    auto runtime = std::make_unique<Runtime>(config);
    std::mutex lines_mutex;
    std::vector<std::string> lines;
    runtime->observe([&](const LifecycleEvent& e) {
        std::lock_guard lock(lines_mutex);
        lines.push_back(LifecyclePrinter::line(e));
    });

    std::optional<ModuleInfo> ip_after_abort, ospf_after_abort;
    RouterScenario::Options options;
    options.abort_limit = 300ms;
    options.slow_drain = 1500ms;
    options.commit_limit = 10s;
    // Between transactions: a few more relay numbers from every running source, which also
    // shows that each transaction put its modules back into service.
    options.traffic = [&](int done) {
        if (done == 5) {
            ip_after_abort = runtime->info("IP");
            ospf_after_abort = runtime->info("OSPF");
        }
        const auto before = ospf.log.snapshot();
        const bool with_vrrp = done >= 4;
        const bool flowed = ospf.log.wait_until(
            [&](const MonitorLog::Snapshot& s) {
                return relay_last(s, "IP") >= relay_last(before, "IP") + 5 &&
                       (!with_vrrp || relay_last(s, "VRRP") >= relay_last(before, "VRRP") + 5);
            },
            kPatience);
        EXPECT_TRUE(flowed) << "no relay traffic after transaction " << done;
        return flowed;
    };
    const auto steps = RouterScenario::run(*runtime, options);

    ASSERT_EQ(steps.size(), 9u);
    for (const auto& step : steps) {
        if (!step.should_commit) {
            EXPECT_EQ(step.transaction, 5);
            EXPECT_EQ(step.report.outcome, Outcome::aborted) << step.report.to_string();
            EXPECT_NE(step.report.reason.find("IP"), std::string::npos) << step.report.reason;
            EXPECT_NE(step.report.reason.find("quiescence"), std::string::npos) << step.report.reason;
            for (const auto& target : step.report.targets) {
                if (target.name == "IP") {
                    EXPECT_EQ(target.vote, "no");
                }
            }
        } else {
            EXPECT_EQ(step.report.outcome, Outcome::committed) << step.report.to_string();
        }
    }
    ASSERT_TRUE(ip_after_abort && ospf_after_abort);
    EXPECT_EQ(ip_after_abort->version, "1");
    EXPECT_EQ(ospf_after_abort->version, "1");
    EXPECT_EQ(runtime->info("IP")->version, "3");
    EXPECT_EQ(runtime->info("OSPF")->version, "3");
    EXPECT_EQ(runtime->info("VRRP")->version, "1");
    EXPECT_EQ(runtime->info("TIMER")->version, "1");

    RouterScenario::shut_down(*runtime);
    EXPECT_TRUE(runtime->modules().empty());
    ASSERT_TRUE(ip.drain() && ospf.drain() && vrrp.drain());

    const auto at_ospf = ospf.log.snapshot();
    const auto at_ip = ip.log.snapshot();
    const auto at_vrrp = vrrp.log.snapshot();
    for (const char* source : {"IP", "VRRP"}) {
        SCOPED_TRACE(source);
        ASSERT_TRUE(at_ospf.relays.count(source));
        const auto& track = at_ospf.relays.at(source);
        EXPECT_EQ(track.first, 1);
        EXPECT_EQ(track.gaps, 0u);
        EXPECT_EQ(track.repeats, 0u);
        EXPECT_EQ(track.count, static_cast<std::uint64_t>(track.last));
        // Nothing lost: every number the source consumed reached OSPF and was served.
        const auto& sent = std::string(source) == "IP" ? at_ip.relay_sent : at_vrrp.relay_sent;
        ASSERT_TRUE(sent.count(source));
        EXPECT_EQ(sent.at(source), track.last);
    }
    // Version 3 of OSPF decoded the plain protocol (from VRRP 1) and the timestamped one (IP 3).
    EXPECT_TRUE(at_ospf.decoded.count("3:1")) << ospf.log.summary("OSPF");
    EXPECT_TRUE(at_ospf.decoded.count("3:2")) << ospf.log.summary("OSPF");
    EXPECT_FALSE(at_ospf.decoded.count("1:2"));
    EXPECT_FALSE(at_ospf.decoded.count("2:2"));
    EXPECT_EQ(at_ip.versions, (std::set<std::string>{"1", "2", "3"}));
    EXPECT_EQ(at_ospf.versions, (std::set<std::string>{"1", "2", "3"}));
    EXPECT_EQ(at_vrrp.versions, (std::set<std::string>{"1"}));
    EXPECT_EQ(at_ip.unparsed + at_ospf.unparsed + at_vrrp.unparsed, 0u);

    std::lock_guard lock(lines_mutex);
    auto printed = [&](const std::string& line) {
        return std::find(lines.begin(), lines.end(), line) != lines.end();
    };
    EXPECT_TRUE(printed("IP V1: abort transaction.."));
    EXPECT_TRUE(printed("OSPF V1: abort transaction.."));
    EXPECT_TRUE(printed("IP : is hot swapped.."));
    EXPECT_TRUE(printed("VRRP V1: wait to start"));
    EXPECT_TRUE(printed("IP V3: get state.."));
}

TEST(MonitorLogTest, CountsGapsRepeatsAndOutages) {
    MonitorLog log(100ms);
    const auto t0 = MonitorLog::Clock::now();
    log.record("ICMP module=IP version=1 time_ms=1", t0);
    log.record("ICMP module=IP version=2 time_ms=2", t0 + 50ms);
    log.record("ICMP module=IP version=2 time_ms=3", t0 + 400ms);
    for (int n : {1, 2, 4, 4, 5})
        log.record("RELAY module=OSPF version=1 from=IP from_version=1 protocol=1 number=" + std::to_string(n));
    log.record("garbage");
    const auto s = log.snapshot();
    EXPECT_EQ(s.received, 9u);
    EXPECT_EQ(s.packets, 3u);
    EXPECT_EQ(s.versions, (std::set<std::string>{"1", "2"}));
    EXPECT_EQ(s.outages, 1u);
    EXPECT_EQ(s.longest_outage_ms, 350);
    const auto& track = s.relays.at("IP");
    EXPECT_EQ(track.first, 1);
    EXPECT_EQ(track.last, 5);
    EXPECT_EQ(track.gaps, 1u);
    EXPECT_EQ(track.missing, 1u);
    EXPECT_EQ(track.repeats, 1u);
    EXPECT_EQ(s.unparsed, 1u);
    EXPECT_NE(log.summary("OSPF").find("relay_IP_first=1 relay_IP_last=5"), std::string::npos);
}

TEST(LifecyclePrinterTest, PrintsTheThesisLines) {
    auto line = [](const char* step, const char* version = "1") {
        return LifecyclePrinter::line(LifecycleEvent{0, "IP", version, step, {}});
    };
    EXPECT_EQ(line("disable"), "IP V1: disable..");
    EXPECT_EQ(line("get TERM message"), "IP V1 get TERM message");
    EXPECT_EQ(line("reach quiescent state"), "IP V1: reach quiescent state..");
    EXPECT_EQ(line("prepared"), "IP V1 : is prepared for a transaction..");
    EXPECT_EQ(line("get state", "2"), "IP V2: get state..");
    EXPECT_EQ(line("hot swapped", "2"), "IP : is hot swapped..");
    EXPECT_EQ(line("unloaded"), "IP V1: is unloaded from memory..");
}

}  // namespace
}  // namespace nonstop::router

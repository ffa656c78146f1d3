// End to end: the six transactions of thesis chapter 5, as the upgrade batch
// scripts/router-transactions.tcl declares them, sourced into a Tcl interpreter bound to this
// test's runtime, with the real router module libraries, watched by monitor nodes on real
// loopback UDP sockets in this process.
#include <gtest/gtest.h>
#include <tcl.h>
#include <nonstop/runtime.hpp>
#include <nonstop/tcl_commands.hpp>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "monitor_log.hpp"
#include "nonstop/lifecycle_printer.hpp"
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
    MonitorNode()
        : log(3 * kPeriod), thread_([this] {
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

/// A Tcl interpreter holding the nonstop commands (thesis spellings included) of `runtime`, as
/// nonstop-shell has them, and the host's `traffic DONE` command the batch calls between
/// transactions.
class BatchInterpreter {
public:
    BatchInterpreter(Runtime& runtime, std::function<bool(int done)> traffic)
        : traffic_(std::move(traffic)) {
        Tcl_FindExecutable(nullptr);
        interp_ = Tcl_CreateInterp();
        TclCommands::Policy policy;
        policy.thesis_spellings = true;
        if (TclCommands::install(interp_, runtime, policy) != TCL_OK)
            ADD_FAILURE() << Tcl_GetStringResult(interp_);
        Tcl_CreateObjCommand(interp_, "traffic", &BatchInterpreter::traffic, this, nullptr);
    }
    ~BatchInterpreter() { Tcl_DeleteInterp(interp_); }

    void set(const char* name, const std::string& value) {
        Tcl_SetVar(interp_, name, value.c_str(), TCL_GLOBAL_ONLY);
    }
    /// Sources `file`; on error, the message and where it happened.
    ::testing::AssertionResult source(const char* file) {
        if (Tcl_EvalFile(interp_, file) == TCL_OK) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << Tcl_GetStringResult(interp_) << "\n"
                                             << Tcl_GetVar(interp_, "errorInfo", TCL_GLOBAL_ONLY);
    }
    /// The result of a script that must succeed.
    std::string eval(const std::string& script) {
        if (Tcl_Eval(interp_, script.c_str()) != TCL_OK)
            ADD_FAILURE() << script << ": " << Tcl_GetStringResult(interp_);
        return Tcl_GetStringResult(interp_);
    }

private:
    static int traffic(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
        int done = 0;
        if (objc != 2 || Tcl_GetIntFromObj(interp, objv[1], &done) != TCL_OK) {
            Tcl_WrongNumArgs(interp, 1, objv, "DONE");
            return TCL_ERROR;
        }
        if (static_cast<BatchInterpreter*>(data)->traffic_(done)) return TCL_OK;
        Tcl_SetObjResult(interp, Tcl_ObjPrintf("no relay traffic after transaction %d", done));
        return TCL_ERROR;
    }

    std::function<bool(int)> traffic_;
    Tcl_Interp* interp_ = nullptr;
};

/// One command of the batch as it recorded it in ::steps.
struct BatchStep {
    int transaction = 0;
    std::string expected, outcome, command, reason, serving;
    std::vector<std::string> target_names, votes;
};

std::vector<BatchStep> steps_of(BatchInterpreter& tcl) {
    std::vector<BatchStep> steps;
    const int count = std::stoi(tcl.eval("llength $::steps"));
    for (int i = 0; i < count; ++i) {
        const std::string step = "[lindex $::steps " + std::to_string(i) + "]";
        auto field = [&](const char* key) { return tcl.eval("dict get " + step + " " + key); };
        BatchStep s;
        s.transaction = std::stoi(field("transaction"));
        s.expected = field("expected");
        s.outcome = field("outcome");
        s.command = field("command");
        s.reason = field("reason");
        s.serving = " " + field("serving") + " ";
        const std::string targets = "[dict get " + step + " report targets]";
        const int n = std::stoi(tcl.eval("llength " + targets));
        for (int t = 0; t < n; ++t) {
            const std::string target = "[lindex " + targets + " " + std::to_string(t) + "]";
            s.target_names.push_back(tcl.eval("dict get " + target + " name"));
            s.votes.push_back(tcl.eval("dict get " + target + " vote"));
        }
        steps.push_back(std::move(s));
    }
    return steps;
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

    // Between transactions: a few more relay numbers from every running source, which also
    // shows that each transaction put its modules back into service.
    auto traffic = [&](int done) {
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
    std::vector<BatchStep> steps;
    {
        BatchInterpreter tcl(*runtime, traffic);
        // Shorter limits than the demo's: transaction 5's SetTimer below IP's slow drain.
        tcl.set("abort_limit_s", "0.3");
        tcl.set("slow_drain_ms", "1500");
        tcl.set("commit_limit_s", "10");
        ASSERT_TRUE(tcl.source(NONSTOP_ROUTER_BATCH));
        steps = steps_of(tcl);
    }

    ASSERT_EQ(steps.size(), 9u);
    int aborts = 0;
    for (const auto& step : steps) {
        SCOPED_TRACE("transaction " + std::to_string(step.transaction) + ": " + step.command);
        EXPECT_EQ(step.outcome, step.expected) << step.reason;
        if (step.expected == "aborted") {
            ++aborts;
            EXPECT_EQ(step.transaction, 5);
            EXPECT_NE(step.reason.find("IP"), std::string::npos) << step.reason;
            EXPECT_NE(step.reason.find("quiescence"), std::string::npos) << step.reason;
            for (std::size_t t = 0; t < step.target_names.size(); ++t) {
                if (step.target_names[t] == "IP") {
                    EXPECT_EQ(step.votes[t], "no");
                }
            }
            // The abort left version 1 serving both modules.
            EXPECT_NE(step.serving.find(" IP=1 "), std::string::npos) << step.serving;
            EXPECT_NE(step.serving.find(" OSPF=1 "), std::string::npos) << step.serving;
        } else {
            EXPECT_EQ(step.expected, "committed");
        }
    }
    EXPECT_EQ(aborts, 1);
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
        log.record("RELAY module=OSPF version=1 from=IP from_version=1 protocol=1 number=" +
                   std::to_string(n));
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
    auto line = [](Step step, const char* version = "1") {
        return LifecyclePrinter::line(LifecycleEvent{0, "IP", version, step, {}});
    };
    EXPECT_EQ(line(Step::disable), "IP V1: disable..");
    EXPECT_EQ(line(Step::will_term), "IP V1: will term..");
    EXPECT_EQ(line(Step::get_term), "IP V1 get TERM message");
    EXPECT_EQ(line(Step::quiescent), "IP V1: reach quiescent state..");
    EXPECT_EQ(line(Step::prepared), "IP V1 : is prepared for a transaction..");
    EXPECT_EQ(line(Step::timeout), "IP V1 : is timeout for preparing a transaction..");
    EXPECT_EQ(line(Step::abort), "IP V1: abort transaction..");
    EXPECT_EQ(line(Step::wait_to_start), "IP V1: wait to start");
    EXPECT_EQ(line(Step::get_state, "2"), "IP V2: get state..");
    EXPECT_EQ(line(Step::hot_swapped, "2"), "IP : is hot swapped..");
    EXPECT_EQ(line(Step::unloaded), "IP V1: is unloaded from memory..");
}

}  // namespace
}  // namespace nonstop::router

#include "router_scenario.hpp"

#include "router_protocol.hpp"

namespace nonstop::router {

std::vector<RouterScenario::Step> RouterScenario::run(Runtime& runtime, const Options& options) {
    std::vector<Step> steps;
    auto print = [&](const std::string& line) {
        if (options.print) options.print(line);
    };
    auto& upgrader = runtime.upgrader();
    auto take = [&](int transaction, TransactionReport report, bool should_commit = true) {
        print(report.command + ": " + to_string(report.outcome) +
              (report.reason.empty() ? "" : " (" + report.reason + ")"));
        steps.push_back({transaction, std::move(report), should_commit});
    };
    auto traffic = [&](int done) { return !options.traffic || options.traffic(done); };

    print("-----");
    take(1, runtime.load("TIMER", "libTIMERImp1.so"));
    print("-----");
    take(1, upgrader.syn_load({{"OSPF", "libOSPFImp1.so"}, {"IP", "libIPImp1.so"}}, options.mode));
    if (!traffic(1)) return steps;

    print("-----");
    take(2, runtime.replace("IP", "libIPImp2.so"));
    if (!traffic(2)) return steps;

    print("-----");
    take(3, runtime.replace("OSPF", "libOSPFImp2.so"));
    if (!traffic(3)) return steps;

    print("-----");
    take(4, upgrader.syn_upgrade({{"OSPF", "libOSPFImp1.so"}, {"IP", "libIPImp1.so"},
                                  {"VRRP", "libVRRPImp1.so"}},
                                 options.mode));
    if (!traffic(4)) return steps;

    print("-----");
    take(5, upgrader.set_timer(options.abort_limit));
    runtime.send("IP", Message{kSlowDrain, kProtocolPlain, {}, std::to_string(options.slow_drain.count())});
    take(5, upgrader.syn_replace({{"OSPF", "libOSPFImp2.so"}, {"IP", "libIPImp2.so"}}, options.mode),
         false);
    if (!traffic(5)) return steps;

    print("-----");
    take(6, upgrader.set_timer(options.commit_limit));
    take(6, upgrader.syn_replace({{"OSPF", "libOSPFImp3.so"}, {"IP", "libIPImp3.so"}}, options.mode));
    traffic(6);
    return steps;
}

void RouterScenario::shut_down(Runtime& runtime) {
    for (const char* name : {"TIMER", "IP", "VRRP", "OSPF"})
        if (runtime.info(name)) runtime.unload(name);
    runtime.upgrader().unload_all();
}

}  // namespace nonstop::router

// nonstop-router: the non-stop router of thesis chapter 5. Embeds a nonstop::Runtime, starts
// TIMER, OSPF and IP (transaction 1) unless told not to, prints the module lifecycle as the
// thesis figures do, and runs until SIGINT or SIGTERM, then removes every module and exits 0.
#include <unistd.h>
#include <nonstop/issuer.hpp>
#include <nonstop/remote_console.hpp>
#include <nonstop/runtime.hpp>
#include <nonstop/tcl_commands.hpp>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "nonstop/lifecycle_printer.hpp"
#ifdef NONSTOP_WITH_FLEET
#include "nonstop/fleet/fleet.hpp"
#endif
#include "router_protocol.hpp"
#include "router_scenario.hpp"

#ifndef NONSTOP_ROUTER_DEFAULT_MODULE_DIR
#define NONSTOP_ROUTER_DEFAULT_MODULE_DIR "."
#endif

namespace {

using namespace nonstop;
using namespace nonstop::router;

void usage(std::FILE* out) {
    std::fprintf(
        out,
        "usage: nonstop-router [options]\n"
        "  --module-path DIR      where libTIMERImp1.so ... live (default %s)\n"
        "  --ip-monitor PORT      UDP port of the IP monitor (default %u)\n"
        "  --ospf-monitor PORT    UDP port of the OSPF monitor (default %u)\n"
        "  --vrrp-monitor PORT    UDP port of the VRRP monitor (default %u)\n"
        "  --period MS            TIMER's broadcast period (default %lld)\n"
        "  --empty                start with no module (for scripts/router-transactions.tcl)\n"
        "  --quiet                print neither lifecycle nor OSPF lines\n"
        "  --console PORT [--token-file FILE] remote console on 127.0.0.1:PORT (0: any port)\n"
        "  --state-dir DIR        keep the release in DIR (default $NONSTOP_STATE_DIR); a\n"
        "                         restart comes back on the same modules and versions\n"
        "  --console-address ADDR  listen on ADDR instead (other than 127.x: needs TLS)\n"
        "  --tls-cert FILE --tls-key FILE  the console speaks TLS with this certificate and key\n"
        "                         (PEM); every console command is logged on stdout\n"
        "  --zookeeper HOST:PORT[/chroot] --cluster NAME [--member ID]\n"
        "                         join a fleet as member ID (default HOSTNAME-PID)\n",
        NONSTOP_ROUTER_DEFAULT_MODULE_DIR, kDefaultIpMonitorPort, kDefaultOspfMonitorPort,
        kDefaultVrrpMonitorPort, static_cast<long long>(kDefaultPeriod.count()));
}

std::mutex print_mutex;

void print_line(const std::string& line) {
    std::lock_guard lock(print_mutex);
    std::puts(line.c_str());
    std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
    Config config;
    std::string module_dir = NONSTOP_ROUTER_DEFAULT_MODULE_DIR;
    bool empty = false, quiet_mode = false;
    std::string console_port, token_file, console_address = "127.0.0.1", tls_cert, tls_key;
    std::string zookeeper, cluster, member;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        auto value = [&]() -> std::string {
            if (i + 1 >= argc) {
                std::fprintf(stderr, "nonstop-router: %s needs a value\n", arg.c_str());
                std::exit(2);
            }
            return argv[++i];
        };
        if (arg == "--module-path")
            module_dir = value();
        else if (arg == "--ip-monitor")
            ::setenv(kIpMonitorEnv, value().c_str(), 1);
        else if (arg == "--ospf-monitor")
            ::setenv(kOspfMonitorEnv, value().c_str(), 1);
        else if (arg == "--vrrp-monitor")
            ::setenv(kVrrpMonitorEnv, value().c_str(), 1);
        else if (arg == "--period")
            ::setenv(kPeriodEnv, value().c_str(), 1);
        else if (arg == "--empty")
            empty = true;
        else if (arg == "--quiet")
            quiet_mode = true;
        else if (arg == "--console")
            console_port = value();
        else if (arg == "--token-file")
            token_file = value();
        else if (arg == "--state-dir")
            config.state_dir = value();
        else if (arg == "--console-address")
            console_address = value();
        else if (arg == "--tls-cert")
            tls_cert = value();
        else if (arg == "--tls-key")
            tls_key = value();
        else if (arg == "--zookeeper")
            zookeeper = value();
        else if (arg == "--cluster")
            cluster = value();
        else if (arg == "--member")
            member = value();
        else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "nonstop-router: unknown option %s\n", arg.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (zookeeper.empty() != cluster.empty() || (!member.empty() && zookeeper.empty())) {
        std::fprintf(stderr, "nonstop-router: a fleet needs --zookeeper and --cluster\n");
        return 2;
    }
#ifndef NONSTOP_WITH_FLEET
    if (!zookeeper.empty()) {
        std::fprintf(stderr, "nonstop-router: built without ZooKeeper's client: no fleet\n");
        return 2;
    }
#endif
    if (quiet_mode) ::setenv(kQuietEnv, "1", 1);
    config.module_path.push_back(module_dir);
    if (const char* dir = std::getenv("NONSTOP_STATE_DIR"); dir && config.state_dir.empty())
        config.state_dir = dir;

    // Blocked before the runtime starts any thread, so only the waiter below receives them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    std::mutex stop_mutex;
    std::condition_variable stop_changed;
    bool stop = false;
    std::thread waiter([&] {
        int signal = 0;
        sigwait(&stop_signals, &signal);
        std::lock_guard lock(stop_mutex);
        stop = true;
        stop_changed.notify_all();
    });

    int status = 0;
    {
        std::optional<Runtime> holder;
        try {
            holder.emplace(config);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "nonstop-router: %s\n", e.what());
            ::kill(::getpid(), SIGTERM);  // ends the waiter
            waiter.join();
            return 1;
        }
        Runtime& runtime = *holder;
        if (!quiet_mode)
            runtime.observe([](const LifecycleEvent& e) { print_line(LifecyclePrinter::line(e)); });
        print_line("Non-Stop Router");
        // A stored release replaces the default start.
        const auto restored = runtime.restore();
        for (const auto& c : restored.crashes)
            std::fprintf(stderr, "nonstop-router: the previous run died of %s in module '%s' %s\n",
                         c.signal_name.c_str(), c.module.c_str(), c.version.c_str());
        for (const auto& e : restored.errors)
            std::fprintf(stderr, "nonstop-router: %s\n", e.c_str());
        if (restored.restored > 0 || !restored.errors.empty()) {
            empty = true;
            print_line("restored " + std::to_string(restored.restored) + " module(s) from " +
                       config.state_dir);
        }

        std::unique_ptr<RemoteConsole> console;
        if (!console_port.empty()) {
            RemoteConsole::Options options;
            options.port = static_cast<std::uint16_t>(std::atoi(console_port.c_str()));
            options.token_file = token_file;
            options.address = console_address;
            options.tls_certificate_file = tls_cert;
            options.tls_key_file = tls_key;
            options.log = print_line;
            console = std::make_unique<RemoteConsole>(runtime, options);
            try {
                console->start();
                print_line(std::string("remote console on ") + console_address + ":" +
                           std::to_string(console->port()) + (tls_cert.empty() ? "" : " (TLS)") +
                           ", token in " + console->token_file());
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nonstop-router: %s\n", e.what());
                console.reset();
                status = 1;
                empty = true;
                ::kill(::getpid(), SIGTERM);  // the waiter ends the run
            }
        }

        if (!empty) {
            print_line("-----");
            auto report = runtime.load("TIMER", "libTIMERImp1.so");
            if (report.ok()) {
                print_line("-----");
                report = runtime.syn_load({{"OSPF", "libOSPFImp1.so"}, {"IP", "libIPImp1.so"}});
            }
            if (!report.ok()) {
                std::fprintf(stderr, "nonstop-router: %s\n", report.to_string().c_str());
                status = 1;
            }
        }

#ifdef NONSTOP_WITH_FLEET
        // A member once its modules run; it leaves the fleet before they are removed.
        std::unique_ptr<Fleet> fleet;
        if (!zookeeper.empty() && status == 0) {
            FleetConfig fc;
            fc.zookeeper = zookeeper;
            fc.cluster = cluster;
            char host[256] = {};
            ::gethostname(host, sizeof host - 1);
            fc.member =
                member.empty() ? std::string(host) + "-" + std::to_string(::getpid()) : member;
            try {
                fleet = std::make_unique<Fleet>(fc, &runtime);
                print_line("member " + fc.member + " of fleet " + cluster);
            } catch (const std::exception& e) {
                std::fprintf(stderr, "nonstop-router: %s\n", e.what());
                status = 1;
                ::kill(::getpid(), SIGTERM);
            }
        }
#endif
        {
            std::unique_lock lock(stop_mutex);
            stop_changed.wait(lock, [&] { return stop; });
        }
#ifdef NONSTOP_WITH_FLEET
        fleet.reset();
#endif
        print_line("-----");
        if (console) console->stop();
        // A console command that stopped waiting may have left a transaction running.
        if (!TclCommands::wait_for_background(runtime.config().shutdown_timeout * 4))
            std::fprintf(stderr, "nonstop-router: a console transaction is still running\n");
        {
            // Stopping is not a change of release: the restart comes back on these modules,
            // from these checkpoints.
            IssuerScope issuer(kShutdownIssuer);
            if (!config.state_dir.empty()) runtime.checkpoint();
            RouterScenario::shut_down(runtime);
        }
        print_line("Non-Stop Router stopped");
    }
    waiter.join();
    return status;
}

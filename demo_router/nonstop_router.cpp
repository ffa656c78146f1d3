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

// What the command line asks for.
struct Options {
    Config config;
    std::string module_dir = NONSTOP_ROUTER_DEFAULT_MODULE_DIR;
    bool empty = false, quiet_mode = false;
    std::string console_port, token_file, console_address = "127.0.0.1", tls_cert, tls_key;
    std::string zookeeper, cluster, member;
};

// Reads the command line into `o`; returns an exit status when the program should end now.
std::optional<int> parse(int argc, char** argv, Options& o) {
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
            o.module_dir = value();
        else if (arg == "--ip-monitor")
            ::setenv(kIpMonitorEnv, value().c_str(), 1);
        else if (arg == "--ospf-monitor")
            ::setenv(kOspfMonitorEnv, value().c_str(), 1);
        else if (arg == "--vrrp-monitor")
            ::setenv(kVrrpMonitorEnv, value().c_str(), 1);
        else if (arg == "--period")
            ::setenv(kPeriodEnv, value().c_str(), 1);
        else if (arg == "--empty")
            o.empty = true;
        else if (arg == "--quiet")
            o.quiet_mode = true;
        else if (arg == "--console")
            o.console_port = value();
        else if (arg == "--token-file")
            o.token_file = value();
        else if (arg == "--state-dir")
            o.config.state_dir = value();
        else if (arg == "--console-address")
            o.console_address = value();
        else if (arg == "--tls-cert")
            o.tls_cert = value();
        else if (arg == "--tls-key")
            o.tls_key = value();
        else if (arg == "--zookeeper")
            o.zookeeper = value();
        else if (arg == "--cluster")
            o.cluster = value();
        else if (arg == "--member")
            o.member = value();
        else if (arg == "--help" || arg == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "nonstop-router: unknown option %s\n", arg.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (o.zookeeper.empty() != o.cluster.empty() || (!o.member.empty() && o.zookeeper.empty())) {
        std::fprintf(stderr, "nonstop-router: a fleet needs --zookeeper and --cluster\n");
        return 2;
    }
#ifndef NONSTOP_WITH_FLEET
    if (!o.zookeeper.empty()) {
        std::fprintf(stderr, "nonstop-router: built without ZooKeeper's client: no fleet\n");
        return 2;
    }
#endif
    if (o.quiet_mode) ::setenv(kQuietEnv, "1", 1);
    o.config.module_path.push_back(o.module_dir);
    if (const char* dir = std::getenv("NONSTOP_STATE_DIR"); dir && o.config.state_dir.empty())
        o.config.state_dir = dir;
    return std::nullopt;
}

// A stored release replaces the default start: true when there was one to restart.
bool restore_release(Runtime& runtime, const Options& o) {
    const auto restored = runtime.restore();
    for (const auto& c : restored.crashes)
        std::fprintf(stderr, "nonstop-router: the previous run died of %s in module '%s' %s\n",
                     c.signal_name.c_str(), c.module.c_str(), c.version.c_str());
    for (const auto& e : restored.errors) std::fprintf(stderr, "nonstop-router: %s\n", e.c_str());
    if (restored.restored == 0 && restored.errors.empty()) return false;
    print_line("restored " + std::to_string(restored.restored) + " module(s) from " +
               o.config.state_dir);
    return true;
}

// The remote console, started; null (with the reason on stderr) when it cannot start.
std::unique_ptr<RemoteConsole> start_console(Runtime& runtime, const Options& o) {
    RemoteConsole::Options options;
    options.port = static_cast<std::uint16_t>(std::atoi(o.console_port.c_str()));
    options.token_file = o.token_file;
    options.address = o.console_address;
    options.tls_certificate_file = o.tls_cert;
    options.tls_key_file = o.tls_key;
    options.log = print_line;
    auto console = std::make_unique<RemoteConsole>(runtime, options);
    try {
        console->start();
        print_line(std::string("remote console on ") + o.console_address + ":" +
                   std::to_string(console->port()) + (o.tls_cert.empty() ? "" : " (TLS)") +
                   ", token in " + console->token_file());
        return console;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nonstop-router: %s\n", e.what());
        return nullptr;
    }
}

// The thesis's first transaction (TIMER, then OSPF and IP together); false on failure.
bool start_default(Runtime& runtime) {
    print_line("-----");
    auto report = runtime.load("TIMER", "libTIMERImp1.so");
    if (report.ok()) {
        print_line("-----");
        report = runtime.syn_load({{"OSPF", "libOSPFImp1.so"}, {"IP", "libIPImp1.so"}});
    }
    if (report.ok()) return true;
    std::fprintf(stderr, "nonstop-router: %s\n", report.to_string().c_str());
    return false;
}

#ifdef NONSTOP_WITH_FLEET
// Joins the fleet the command line names; null (with the reason on stderr) when it cannot.
std::unique_ptr<Fleet> join_fleet(Runtime& runtime, const Options& o) {
    FleetConfig fc;
    fc.zookeeper = o.zookeeper;
    fc.cluster = o.cluster;
    char host[256] = {};
    ::gethostname(host, sizeof host - 1);
    fc.member = o.member.empty() ? std::string(host) + "-" + std::to_string(::getpid()) : o.member;
    try {
        auto fleet = std::make_unique<Fleet>(fc, &runtime);
        print_line("member " + fc.member + " of fleet " + o.cluster);
        return fleet;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nonstop-router: %s\n", e.what());
        return nullptr;
    }
}
#endif

// Stops the console, lets its background transactions end, checkpoints and removes every
// module. Stopping is not a change of release: a restart comes back on these modules, from
// these checkpoints.
void shut_down(Runtime& runtime, RemoteConsole* console) {
    print_line("-----");
    if (console) console->stop();
    // A console command that stopped waiting may have left a transaction running.
    if (!TclCommands::wait_for_background(runtime.config().shutdown_timeout * 4))
        std::fprintf(stderr, "nonstop-router: a console transaction is still running\n");
    {
        IssuerScope issuer(kShutdownIssuer);
        RouterScenario::shut_down(runtime, !runtime.config().state_dir.empty());
    }
    print_line("Non-Stop Router stopped");
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (const auto status = parse(argc, argv, o)) return *status;
    bool empty = o.empty;

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
            holder.emplace(o.config);
        } catch (const std::exception& e) {
            std::fprintf(stderr, "nonstop-router: %s\n", e.what());
            ::kill(::getpid(), SIGTERM);  // ends the waiter
            waiter.join();
            return 1;
        }
        Runtime& runtime = *holder;
        if (!o.quiet_mode)
            runtime.observe([](const LifecycleEvent& e) { print_line(LifecyclePrinter::line(e)); });
        print_line("Non-Stop Router");
        if (restore_release(runtime, o)) empty = true;

        std::unique_ptr<RemoteConsole> console;
        if (!o.console_port.empty()) {
            console = start_console(runtime, o);
            if (!console) {
                status = 1;
                empty = true;
                ::kill(::getpid(), SIGTERM);  // the waiter ends the run
            }
        }
        if (!empty && !start_default(runtime)) status = 1;

#ifdef NONSTOP_WITH_FLEET
        // A member once its modules run; it leaves the fleet before they are removed.
        std::unique_ptr<Fleet> fleet;
        if (!o.zookeeper.empty() && status == 0) {
            fleet = join_fleet(runtime, o);
            if (!fleet) {
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
        shut_down(runtime, console.get());
    }
    waiter.join();
    return status;
}

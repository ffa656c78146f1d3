// nonstop-router: the non-stop router of thesis chapter 5. Embeds a nonstop::Runtime, starts
// TIMER, OSPF and IP (transaction 1) unless told not to, prints the module lifecycle as the
// thesis figures do, and runs until SIGINT or SIGTERM, then removes every module and exits 0.
#include <unistd.h>
#include <nonstop/issuer.hpp>
#include <nonstop/remote_console.hpp>
#include <nonstop/runtime.hpp>
#include <nonstop/tcl_commands.hpp>

#include <algorithm>
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

// The options that set a field, and those that pass their value to the modules (environment).
const std::pair<const char*, std::string Options::*> field_options[] = {
    {"--module-path", &Options::module_dir}, {"--console", &Options::console_port},
    {"--token-file", &Options::token_file},  {"--console-address", &Options::console_address},
    {"--tls-cert", &Options::tls_cert},      {"--tls-key", &Options::tls_key},
    {"--zookeeper", &Options::zookeeper},    {"--cluster", &Options::cluster},
    {"--member", &Options::member}};
const std::pair<const char*, const char*> environment_options[] = {
    {"--ip-monitor", kIpMonitorEnv},
    {"--ospf-monitor", kOspfMonitorEnv},
    {"--vrrp-monitor", kVrrpMonitorEnv},
    {"--period", kPeriodEnv}};

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
        auto named = [&](const auto& o) { return arg == o.first; };
        if (auto f = std::find_if(std::begin(field_options), std::end(field_options), named);
            f != std::end(field_options)) {
            o.*(f->second) = value();
        } else if (auto e = std::find_if(std::begin(environment_options),
                                         std::end(environment_options), named);
                   e != std::end(environment_options)) {
            ::setenv(e->second, value().c_str(), 1);
        } else if (arg == "--state-dir") {
            o.config.state_dir = value();
        } else if (arg == "--empty" || arg == "--quiet") {
            (arg == "--empty" ? o.empty : o.quiet_mode) = true;
        } else if (arg == "--help" || arg == "-h") {
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

// SIGINT and SIGTERM, blocked in every thread before the runtime starts any, taken by one
// thread of their own: wait() returns once one came (or stop() sent one).
class StopSignal {
public:
    StopSignal() {
        sigemptyset(&signals_);
        sigaddset(&signals_, SIGINT);
        sigaddset(&signals_, SIGTERM);
        pthread_sigmask(SIG_BLOCK, &signals_, nullptr);
        waiter_ = std::thread([this] {
            int signal = 0;
            sigwait(&signals_, &signal);
            std::lock_guard lock(mutex_);
            stop_ = true;
            changed_.notify_all();
        });
    }
    ~StopSignal() {
        stop();
        waiter_.join();
    }
    void stop() {
        std::lock_guard lock(mutex_);
        if (!stop_) ::kill(::getpid(), SIGTERM);
    }
    void wait() {
        std::unique_lock lock(mutex_);
        changed_.wait(lock, [&] { return stop_; });
    }

private:
    sigset_t signals_;
    std::mutex mutex_;
    std::condition_variable changed_;
    bool stop_ = false;
    std::thread waiter_;
};

// The router from start to stop; its exit status.
int serve(Runtime& runtime, const Options& o, StopSignal& stop) {
    int status = 0;
    bool empty = o.empty;
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
            stop.stop();
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
            stop.stop();
        }
    }
#endif
    stop.wait();
#ifdef NONSTOP_WITH_FLEET
    fleet.reset();
#endif
    shut_down(runtime, console.get());
    return status;
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    if (const auto status = parse(argc, argv, o)) return *status;
    StopSignal stop;
    std::optional<Runtime> runtime;
    try {
        runtime.emplace(o.config);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "nonstop-router: %s\n", e.what());
        return 1;
    }
    return serve(*runtime, o, stop);
}

// nonstop-shell: the operator's Tcl shell. Locally it is tclsh with the
// ::nonstop commands and the thesis spellings bound to this process's runtime; with --connect
// it forwards commands to a host's RemoteConsole.
#include <pthread.h>
#include <termios.h>
#include <unistd.h>

#include <csignal>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <variant>
#include <vector>

#include <tcl.h>

#include "nonstop/console_client.hpp"
#include "nonstop/error.hpp"
#include "nonstop/issuer.hpp"
#include "nonstop/lifecycle_printer.hpp"
#include "nonstop/runtime.hpp"
#include "nonstop/tcl_commands.hpp"
#include "repl.hpp"
#ifdef NONSTOP_WITH_FLEET
#include "nonstop/fleet/fleet.hpp"
#include "nonstop/fleet_commands.hpp"
#endif

#ifndef NONSTOP_PACKAGE_VERSION
#error NONSTOP_PACKAGE_VERSION must be defined
#endif

namespace {

struct Arguments {
    std::optional<std::string> module_path;
    std::optional<std::string> connect;
    std::optional<std::string> token_file;
    std::optional<std::string> state_dir;
    std::optional<std::string> tls_ca;  // verify the console's certificate against this CA
    bool tls = false, tls_insecure = false;
    bool lifecycle = false;  // print each module's lifecycle steps as the thesis's figures do
    std::optional<std::string> zookeeper;  // join a fleet (issue 14)
    std::optional<std::string> cluster;
    std::optional<std::string> member;
    bool coordinator = false;       // in the fleet without being a member
    std::vector<std::string> rest;  // batch file and its arguments
};

const char* const usage_text =
    "usage: nonstop-shell [--module-path DIRS] [--state-dir DIR] [--lifecycle]\n"
    "                     [fleet options] [batch-file [arg ...]]\n"
    "       nonstop-shell --connect HOST:PORT [--token-file F]\n"
    "                     [--tls [--tls-ca FILE | --tls-insecure]] [batch-file]\n"
    "       (the token comes from F or from NONSTOP_CONSOLE_TOKEN; --tls-ca verifies the\n"
    "       console's certificate, and a host other than loopback needs it or --tls-insecure)\n"
    "       fleet: --zookeeper HOST:PORT[/chroot] --cluster NAME [--member ID | --coordinator]\n"
    "       (a member by default, its id HOSTNAME-PID; --coordinator hosts nothing)\n";

// The options that take a value, each with the field it sets.
const std::pair<const char*, std::optional<std::string> Arguments::*> value_options[] = {
    {"--module-path", &Arguments::module_path}, {"--connect", &Arguments::connect},
    {"--state-dir", &Arguments::state_dir},     {"--token-file", &Arguments::token_file},
    {"--tls-ca", &Arguments::tls_ca},           {"--zookeeper", &Arguments::zookeeper},
    {"--cluster", &Arguments::cluster},         {"--member", &Arguments::member}};

// Sets the flag `arg` names; false when it names none.
bool flag(Arguments& a, const std::string& arg) {
    if (arg == "--tls" || arg == "--tls-insecure") {
        a.tls = true;
        a.tls_insecure = a.tls_insecure || arg == "--tls-insecure";
    } else if (arg == "--coordinator") {
        a.coordinator = true;
    } else if (arg == "--lifecycle") {
        a.lifecycle = true;
    } else {
        return false;
    }
    return true;
}

// Why the options given cannot go together; empty when they can.
std::string conflict(Arguments& a) {
    if (a.connect && a.module_path) return "--module-path is the host's business with --connect";
    if (a.connect && a.state_dir) return "--state-dir is the host's business with --connect";
    if (a.connect && a.lifecycle) return "--lifecycle shows this process's modules, not a host's";
    if (a.tls_ca) a.tls = true;
    if (!a.connect && a.tls) return "--tls needs --connect";
    if (a.zookeeper.has_value() != a.cluster.has_value() ||
        ((a.member || a.coordinator) && !a.zookeeper) || (a.member && a.coordinator) ||
        (a.zookeeper && a.connect))
        return "a fleet needs --zookeeper and --cluster (and no --connect); --member and "
               "--coordinator exclude each other";
    if (!a.connect && a.token_file) return "--token-file needs --connect";
    return {};
}

std::optional<Arguments> parse(int argc, char** argv) {
    Arguments a;
    int i = 1;
    for (; i < argc; ++i) {
        const std::string arg = argv[i];
        const auto option = std::find_if(std::begin(value_options), std::end(value_options),
                                         [&](const auto& o) { return arg == o.first; });
        if (option != std::end(value_options)) {
            if (i + 1 >= argc) {
                std::cerr << "nonstop-shell: option " << arg << " needs a value\n" << usage_text;
                return std::nullopt;
            }
            a.*(option->second) = std::string(argv[++i]);
        } else if (arg == "--token") {
            std::cerr << "nonstop-shell: --token would show the token to every user of this "
                         "machine (in the process list); use --token-file or "
                         "NONSTOP_CONSOLE_TOKEN\n";
            return std::nullopt;
        } else if (arg == "--help" || arg == "-h") {
            std::cout << usage_text;
            std::exit(0);
        } else if (arg == "--") {
            ++i;
            break;
        } else if (!flag(a, arg)) {
            if (arg.size() > 1 && arg[0] == '-') {
                std::cerr << "nonstop-shell: unknown option " << arg << "\n" << usage_text;
                return std::nullopt;
            }
            break;
        }
    }
    for (; i < argc; ++i) a.rest.emplace_back(argv[i]);
    if (const std::string why = conflict(a); !why.empty()) {
        std::cerr << "nonstop-shell: " << why << "\n";
        return std::nullopt;
    }
    return a;
}

std::vector<std::string> split_path(const std::string& dirs) {
    std::vector<std::string> out;
    std::stringstream in(dirs);
    for (std::string d; std::getline(in, d, ':');)
        if (!d.empty()) out.push_back(d);
    return out;
}

/// The top-level command an error came from, as errorInfo quotes it.
std::string failing_command(const std::string& error_info) {
    const auto end = error_info.rfind("\"\n    (file \"");
    if (end == std::string::npos) return {};
    std::size_t start = std::string::npos;
    for (const char* marker : {"while executing\n\"", "invoked from within\n\""}) {
        const auto at = error_info.rfind(marker, end);
        if (at != std::string::npos &&
            (start == std::string::npos || at + std::strlen(marker) > start))
            start = at + std::strlen(marker);
    }
    return start == std::string::npos || start > end ? std::string()
                                                     : error_info.substr(start, end - start);
}

#ifdef NONSTOP_WITH_FLEET
std::unique_ptr<nonstop::Fleet> fleet;  // set by --zookeeper: this process in its fleet
std::mutex fleet_mutex;                 // main sets it; the signal thread or exit resets it

void leave_fleet() {
    std::lock_guard lock(fleet_mutex);
    fleet.reset();
}
#endif

int install(Tcl_Interp* interp) {
    nonstop::TclCommands::Policy policy;
    policy.thesis_spellings = true;
    if (nonstop::TclCommands::install(interp, nonstop::Runtime::instance(), policy) != TCL_OK)
        return TCL_ERROR;
#ifdef NONSTOP_WITH_FLEET
    nonstop::Fleet* joined = nullptr;
    {
        std::lock_guard lock(fleet_mutex);
        joined = fleet.get();
    }
    if (joined && nonstop::FleetCommands::install(interp, *joined, true) != TCL_OK)
        return TCL_ERROR;
#endif
    return Tcl_PkgProvide(interp, "nonstop", NONSTOP_PACKAGE_VERSION);
}

int app_init(Tcl_Interp* interp) {
    if (Tcl_Init(interp) != TCL_OK)
        std::cerr << "nonstop-shell: warning: " << Tcl_GetStringResult(interp) << "\n";
    if (install(interp) != TCL_OK) return TCL_ERROR;
    Tcl_SetVar(interp, "tcl_prompt1", "puts -nonewline {nonstop> }; flush stdout", TCL_GLOBAL_ONLY);
    return TCL_OK;
}

int run_batch(const char* argv0, const std::vector<std::string>& rest) {
    Tcl_Interp* interp = Tcl_CreateInterp();
    if (app_init(interp) != TCL_OK) {
        std::cerr << "nonstop-shell: " << Tcl_GetStringResult(interp) << "\n";
        return 1;
    }
    Tcl_Obj* args = Tcl_NewListObj(0, nullptr);
    for (std::size_t i = 1; i < rest.size(); ++i)
        Tcl_ListObjAppendElement(nullptr, args, Tcl_NewStringObj(rest[i].c_str(), -1));
    Tcl_SetVar2Ex(interp, "argv", nullptr, args, TCL_GLOBAL_ONLY);
    Tcl_SetVar2Ex(interp, "argc", nullptr, Tcl_NewIntObj(static_cast<int>(rest.size()) - 1),
                  TCL_GLOBAL_ONLY);
    Tcl_SetVar(interp, "argv0", rest[0].c_str(), TCL_GLOBAL_ONLY);
    Tcl_SetVar(interp, "tcl_interactive", "0", TCL_GLOBAL_ONLY);
    (void)argv0;

    int status = 0;
    if (Tcl_EvalFile(interp, rest[0].c_str()) != TCL_OK) {
        Tcl_Obj* options = Tcl_GetReturnOptions(interp, TCL_ERROR);
        Tcl_IncrRefCount(options);
        auto option = [&](const char* key) {
            Tcl_Obj* k = Tcl_NewStringObj(key, -1);
            Tcl_IncrRefCount(k);
            Tcl_Obj* v = nullptr;
            Tcl_DictObjGet(nullptr, options, k, &v);
            Tcl_DecrRefCount(k);
            return v ? std::string(Tcl_GetString(v)) : std::string();
        };
        const std::string info = option("-errorinfo");
        std::cerr << rest[0] << ":" << option("-errorline") << ": " << Tcl_GetStringResult(interp)
                  << "\n";
        if (auto command = failing_command(info); !command.empty())
            std::cerr << "    in command: " << command << "\n";
        std::cerr << "    errorcode: " << option("-errorcode") << "\n";
        Tcl_DecrRefCount(options);
        status = 1;
    }
    Tcl_DeleteInterp(interp);
    Tcl_Exit(status);  // runs the exit handlers, unloading every module
    return status;
}

/// The console token: --token-file or NONSTOP_CONSOLE_TOKEN (never the command line, which every
/// user can read); an exit status on error.
std::variant<std::string, int> read_token(const Arguments& a) {
    if (a.token_file) {
        std::ifstream in(*a.token_file);
        std::string token;
        if (!in || !std::getline(in, token)) {
            std::cerr << "nonstop-shell: cannot read the token file '" << *a.token_file << "'\n";
            return 1;
        }
        return token;
    }
    if (const char* env = std::getenv("NONSTOP_CONSOLE_TOKEN")) return std::string(env);
    std::cerr << "nonstop-shell: --connect needs --token-file or NONSTOP_CONSOLE_TOKEN\n";
    return 2;
}

/// Connects and authenticates `client` to --connect HOST:PORT; 0 or an exit status.
int open_console(const Arguments& a, nonstop::ConsoleClient& client) {
    const auto colon = a.connect->rfind(':');
    if (colon == std::string::npos || colon + 1 == a.connect->size()) {
        std::cerr << "nonstop-shell: --connect needs HOST:PORT\n";
        return 2;
    }
    const std::string host = a.connect->substr(0, colon);
    const unsigned long port = std::strtoul(a.connect->c_str() + colon + 1, nullptr, 10);
    auto token = read_token(a);
    if (auto* status = std::get_if<int>(&token)) return *status;
    const bool local = host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
    if (a.tls && !a.tls_ca && !a.tls_insecure && !local) {
        std::cerr << "nonstop-shell: --tls to " << host << " needs --tls-ca FILE to verify the "
                  << "console's certificate (or --tls-insecure to skip that)\n";
        return 2;
    }
    try {
        if (a.tls)
            client.connect_tls(host, static_cast<std::uint16_t>(port), {a.tls_ca.value_or("")});
        else
            client.connect(host, static_cast<std::uint16_t>(port));
        auto r = client.authenticate(std::get<std::string>(token));
        if (r.ok) return 0;
        std::cerr << "nonstop-shell: " << r.body << "\n";
    } catch (const nonstop::Error& e) {
        std::cerr << "nonstop-shell: " << e.what() << "\n";
    }
    return 1;
}

/// Runs one complete command on the host and prints its answer; false ends the session.
bool run_one(nonstop::ConsoleClient& client, const Arguments& a, const std::string& command,
             int first_line) {
    const bool batch = !a.rest.empty();
    nonstop::ConsoleClient::Reply r;
    try {
        r = client.execute(command);
    } catch (const nonstop::Error& e) {
        std::cerr << "nonstop-shell: " << e.what() << "\n";
        return false;
    }
    if (r.ok) {
        if (!r.body.empty()) std::cout << r.body << "\n" << std::flush;
        return true;
    }
    if (batch) {
        std::cerr << a.rest[0] << ":" << first_line << ": " << r.body << "\n"
                  << "    in command: " << command << "\n"
                  << "    errorcode: " << r.errorcode << "\n";
        return false;
    }
    std::cerr << "error: " << r.body << " (" << r.errorcode << ")\n";
    return true;
}

int run_remote(const Arguments& a) {
    nonstop::ConsoleClient client;
    if (int status = open_console(a, client); status != 0) return status;
    const bool batch = !a.rest.empty();
    std::ifstream file;
    if (batch) {
        file.open(a.rest[0]);
        if (!file) {
            std::cerr << "nonstop-shell: cannot read '" << a.rest[0] << "'\n";
            return 1;
        }
    }
    if (!batch && ::isatty(0)) {
        // A terminal gets the prompt with line editing; this interpreter only runs it.
        Tcl_Interp* interp = Tcl_CreateInterp();
        if (Tcl_Init(interp) != TCL_OK) Tcl_ResetResult(interp);
        nonstop::Repl::run(interp, &client, "nonstop@" + *a.connect + "> ");
    }
    std::istream& in = batch ? static_cast<std::istream&>(file) : std::cin;
    std::string pending, line;
    int line_no = 0, first_line = 0;
    for (;;) {
        if (!std::getline(in, line)) break;
        ++line_no;
        if (pending.empty()) {
            if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
            first_line = line_no;
        }
        pending += line + "\n";
        if (!Tcl_CommandComplete(pending.c_str())) continue;
        std::string command = std::exchange(pending, {});
        command.pop_back();
        if (!run_one(client, a, command, first_line)) return 1;
    }
    if (!pending.empty()) {
        std::cerr << (batch ? a.rest[0] : std::string("stdin")) << ":" << first_line
                  << ": the input ends inside an incomplete command\n";
        return 1;
    }
    return 0;
}

// The terminal's modes as the shell found them: readline changes them while it reads a line,
// and a signal may end the shell in the middle of one.
termios initial_terminal{};
bool restore_terminal = false;
/// What a restart from the state directory could not bring back, and the crashes of the
/// previous run, on stderr (a batch's own output stays as it was).
void report_restore(const nonstop::RestoreReport& r) {
    for (const auto& c : r.crashes)
        std::cerr << "nonstop-shell: the previous run died of " << c.signal_name << " in module '"
                  << c.module << "' version " << c.version << " (see nonstop crashes)\n";
    if (!r.discarded.empty())
        std::cerr << "nonstop-shell: back on the permanent release: " << r.discarded << "\n";
    for (const auto& e : r.errors) std::cerr << "nonstop-shell: " << e << "\n";
}

/// SIGINT or SIGTERM: every module is removed (within the runtime's shutdown limit, stuck ones
/// abandoned and named) and the shell exits 0.
void stop_on(sigset_t signals, nonstop::Runtime& runtime) {
    std::thread([signals, &runtime] {
        int signal = 0;
        if (sigwait(&signals, &signal) != 0) return;
        std::cerr << "nonstop-shell: " << strsignal(signal) << ": removing every module\n";
#ifdef NONSTOP_WITH_FLEET
        leave_fleet();  // leaves the fleet at once rather than when the session times out
#endif
        runtime.unload_all();
        std::cout << std::flush;
        if (restore_terminal) tcsetattr(0, TCSANOW, &initial_terminal);
        std::_Exit(0);
    }).detach();
}

std::string host_name() {
    char name[256] = {};
    ::gethostname(name, sizeof name - 1);
    return name;
}

// Joins the fleet --zookeeper and --cluster name (as a member, or as a coordinator hosting
// nothing); 0, or the exit status when it cannot.
int join_fleet(const Arguments& args, nonstop::Runtime& runtime) {
#ifdef NONSTOP_WITH_FLEET
    nonstop::FleetConfig config;
    config.zookeeper = *args.zookeeper;
    config.cluster = *args.cluster;
    if (!args.coordinator)
        config.member = args.member ? *args.member : host_name() + "-" + std::to_string(::getpid());
    try {
        auto joined = std::make_unique<nonstop::Fleet>(config, &runtime);
        std::lock_guard lock(fleet_mutex);
        fleet = std::move(joined);
    } catch (const nonstop::Error& e) {
        std::cerr << "nonstop-shell: " << e.what() << "\n";
        return 1;
    }
    // Tcl runs exit handlers newest first: the member leaves before its modules unload.
    Tcl_CreateExitHandler([](ClientData) { leave_fleet(); }, nullptr);
    return 0;
#else
    (void)args;
    (void)runtime;
    std::cerr << "nonstop-shell: built without ZooKeeper's client: no fleet\n";
    return 2;
#endif
}

// Commands from a terminal, with line editing and history (Repl::run ends the process), or
// from a pipe, through Tcl's own loop.
int run_interactive(char* argv0) {
    if (::isatty(0)) {
        Tcl_Interp* interp = Tcl_CreateInterp();
        Tcl_SetVar(interp, "tcl_interactive", "1", TCL_GLOBAL_ONLY);
        Tcl_SetVar(interp, "argv0", argv0, TCL_GLOBAL_ONLY);
        Tcl_SetVar(interp, "argv", "", TCL_GLOBAL_ONLY);
        Tcl_SetVar(interp, "argc", "0", TCL_GLOBAL_ONLY);
        if (app_init(interp) != TCL_OK) {
            std::cerr << "nonstop-shell: " << Tcl_GetStringResult(interp) << "\n";
            return 1;
        }
        nonstop::Repl::run(interp, nullptr, "nonstop> ");
    }
    char* interactive_argv[] = {argv0, nullptr};
    Tcl_Main(1, interactive_argv, app_init);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    auto args = parse(argc, argv);
    if (!args) return 2;
    Tcl_FindExecutable(argv[0]);
    if (args->connect) return run_remote(*args);

    // Blocked before the runtime starts its threads, so that only the waiter below takes them.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

    // --module-path wins, then NONSTOP_MODULE_PATH (read by the runtime), then the directory
    // the shell was started in, made absolute so that a `cd` in a batch does not move it.
    // --state-dir wins over NONSTOP_STATE_DIR, which the runtime reads.
    if (args->state_dir) ::setenv("NONSTOP_STATE_DIR", args->state_dir->c_str(), 1);
    nonstop::Runtime* instance = nullptr;
    try {
        instance = &nonstop::Runtime::instance();
    } catch (const nonstop::Error& e) {
        std::cerr << "nonstop-shell: " << e.what() << "\n";
        return 1;
    }
    auto& runtime = *instance;
    nonstop::IssuerScope issuer("local shell");
    restore_terminal = ::isatty(0) && tcgetattr(0, &initial_terminal) == 0;
    stop_on(stop_signals, runtime);
    if (args->module_path) {
        runtime.set_module_path(split_path(*args->module_path));
    } else if (const char* env = std::getenv("NONSTOP_MODULE_PATH"); !env || !*env) {
        std::error_code ec;
        runtime.set_module_path({std::filesystem::current_path(ec).string()});
    }

    if (args->lifecycle) {
        runtime.observe([](const nonstop::LifecycleEvent& e) {
            std::cout << nonstop::LifecyclePrinter::line(e) << "\n" << std::flush;
        });
    }
    nonstop::TclCommands::unload_at_exit(runtime);
    report_restore(runtime.restore());
    if (args->zookeeper) {
        if (const int status = join_fleet(*args, runtime); status != 0) return status;
    }
    if (!args->rest.empty()) return run_batch(argv[0], args->rest);
    return run_interactive(argv[0]);
}

#include "nonstop/tcl_commands.hpp"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <exception>
#include <filesystem>
#include <mutex>
#include <optional>
#include <string_view>
#include <system_error>
#include <thread>

#include "nonstop/error.hpp"
#include "nonstop/runtime.hpp"
#include "nonstop/value_formatter.hpp"
#include "tcl_values.hpp"

namespace nonstop {

namespace {

namespace fs = std::filesystem;

using tcl_values::dict;
using tcl_values::list_of;
using tcl_values::put;
using tcl_values::report_or_fail;
using tcl_values::str;
using tcl_values::text;

double to_ms(std::chrono::nanoseconds d) { return static_cast<double>(d.count()) / 1e6; }

Tcl_Obj* target_dict(const TargetReport& t) {
    Tcl_Obj* d = Tcl_NewDictObj();
    put(d, "name", str(t.name));
    put(d, "action", Tcl_NewStringObj(to_string(t.action), -1));
    put(d, "library", str(t.library));
    put(d, "old_version", str(t.old_version));
    put(d, "new_version", str(t.new_version));
    put(d, "vote", Tcl_NewStringObj(to_string(t.vote), -1));
    put(d, "quiescence_ms", Tcl_NewDoubleObj(to_ms(t.quiescence)));
    put(d, "checkpoint_bytes", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(t.checkpoint_bytes)));
    put(d, "buffered", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(t.buffered)));
    put(d, "blackout_ms", Tcl_NewDoubleObj(to_ms(t.blackout)));
    put(d, "forced", Tcl_NewBooleanObj(t.forced));
    put(d, "dropped", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(t.dropped)));
    put(d, "abandoned_version", str(t.abandoned_version));
    put(d, "abandoned_in", str(t.abandoned_in));
    put(d, "old_kind", str(t.old_kind));
    put(d, "new_kind", str(t.new_kind));
    put(d, "sha256", str(t.sha256));
    put(d, "preflight", Tcl_NewBooleanObj(t.preflight));
    put(d, "preflight_ms", Tcl_NewDoubleObj(to_ms(t.preflight_time)));
    put(d, "preflight_state", Tcl_NewBooleanObj(t.preflight_state));
    put(d, "preflight_state_ms", Tcl_NewDoubleObj(to_ms(t.preflight_state_time)));
    put(d, "state_transfer", str(t.state_transfer));
    put(d, "discarded", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(t.discarded)));
    return d;
}

Tcl_Obj* report_dict(const TransactionReport& r) {
    Tcl_Obj* d = Tcl_NewDictObj();
    put(d, "id", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(r.id)));
    put(d, "command", str(r.command));
    put(d, "issuer", str(r.issuer));
    put(d, "mode", Tcl_NewStringObj(r.mode ? to_string(*r.mode) : "", -1));
    put(d, "outcome", Tcl_NewStringObj(to_string(r.outcome), -1));
    put(d, "reason", str(r.reason));
    put(d, "duration_ms", Tcl_NewDoubleObj(to_ms(r.duration)));
    put(d, "waited_ms", Tcl_NewDoubleObj(to_ms(r.waited)));
    put(d, "probation_ms", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(r.probation.count())));
    put(d, "undoes", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(r.undoes)));
    put(d, "rule", str(r.rule));
    put(d, "evidence", str(r.evidence));
    put(d, "targets", list_of(r.targets, target_dict));
    return d;
}

/// Raises a Tcl error with a one-sentence message and the errorcode {NONSTOP code ?detail?}.
int fail(Tcl_Interp* interp, const std::string& message, const char* code,
         const std::string& detail = {}) {
    Tcl_SetObjResult(interp, str(message));
    Tcl_Obj* ec = Tcl_NewListObj(0, nullptr);
    Tcl_ListObjAppendElement(nullptr, ec, Tcl_NewStringObj("NONSTOP", -1));
    Tcl_ListObjAppendElement(nullptr, ec, Tcl_NewStringObj(code, -1));
    if (!detail.empty()) Tcl_ListObjAppendElement(nullptr, ec, str(detail));
    Tcl_SetObjErrorCode(interp, ec);
    return TCL_ERROR;
}

/// A committed report is the result; any other raises an error that scripts can trap by
/// outcome and that still carries the whole report in the return options (-report).
int finish(Tcl_Interp* interp, const TransactionReport& r) {
    return report_or_fail(
        interp, r.ok(), report_dict(r), r.reason.empty() ? "the transaction failed" : r.reason,
        {str("NONSTOP"), str(r.outcome == Outcome::aborted ? "ABORTED" : "REJECTED"),
         Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(r.id))});
}

// Framework calls left running by a command that stopped waiting for them.
struct Background {
    std::mutex mutex;
    std::condition_variable idle;
    std::size_t running = 0;
};
Background& background() {
    static auto* b = new Background;  // never destroyed: detached threads use it to the end
    return *b;
}

/// Runs `work` on a detached thread, counted in background() until it returns (throws when no
/// thread can be started: nothing then runs in the background).
void in_background(std::function<void()> work) {
    {
        std::lock_guard lock(background().mutex);
        ++background().running;
    }
    auto leave = [] {
        std::lock_guard lock(background().mutex);
        if (--background().running == 0) background().idle.notify_all();
    };
    try {
        std::thread([work = std::move(work), leave] {
            work();
            leave();
        }).detach();
    } catch (...) {
        leave();
        throw;
    }
}

/// Runs `call` on a thread of its own when the policy bounds waiting, and waits for it at most
/// until the policy's deadline or a cancellation. TCL_OK with *out set, or a Tcl error.
template <class T>
int bounded(Tcl_Interp* interp, const TclCommands::Policy& policy, std::function<T()> call,
            T& out) {
    if (!policy.wait_until) {
        out = call();
        return TCL_OK;
    }
    // Shared with the thread, so that nothing dangles when the command (or its interpreter)
    // is gone before the call returns.
    struct State {
        std::mutex mutex;
        std::condition_variable done_changed;
        bool done = false;
        std::optional<T> result;
        std::exception_ptr error;
    };
    auto state = std::make_shared<State>();
    in_background([state, call = std::move(call)] {
        std::optional<T> result;
        std::exception_ptr error;
        try {
            result = call();
        } catch (...) {
            error = std::current_exception();
        }
        {
            std::lock_guard lock(state->mutex);
            state->result = std::move(result);
            state->error = error;
            state->done = true;
        }
        state->done_changed.notify_all();
    });
    const auto deadline = policy.wait_until();
    std::unique_lock lock(state->mutex);
    for (;;) {
        // Woken now and then to notice a cancellation (the console stopping).
        const auto until =
            std::min(deadline, std::chrono::steady_clock::now() + std::chrono::milliseconds(50));
        if (state->done_changed.wait_until(lock, until, [&] { return state->done; })) break;
        if (Tcl_Canceled(interp, 0) != TCL_OK || std::chrono::steady_clock::now() >= deadline) {
            Tcl_ResetResult(interp);
            return fail(interp,
                        "the command stopped waiting at the session's time limit (or because the "
                        "console stops); the framework goes on with it in the background and its "
                        "report will be in 'nonstop history'",
                        "TIMEOUT");
        }
    }
    if (state->error) std::rethrow_exception(state->error);
    out = std::move(*state->result);
    return TCL_OK;
}

/// finish() for a transaction run within the policy's wait limit.
int finish_within(Tcl_Interp* interp, const TclCommands::Policy& policy,
                  std::function<TransactionReport()> call) {
    TransactionReport report;
    if (bounded(interp, policy, std::move(call), report) != TCL_OK) return TCL_ERROR;
    return finish(interp, report);
}

fs::path canonical_or_empty(const fs::path& p) {
    std::error_code ec;
    auto abs = fs::absolute(p, ec);
    if (ec) return {};
    auto c = fs::weakly_canonical(abs, ec);
    return ec ? fs::path() : c;
}

}  // namespace

// Said once for every transaction command's help.
#define NONSTOP_RETURNS_REPORT                                                               \
    "Returns the transaction report as a dict (id command mode outcome reason duration_ms\n" \
    "waited_ms targets); a rejected or aborted transaction is a Tcl error with -errorcode\n" \
    "{NONSTOP REJECTED id} or {NONSTOP ABORTED id} and the report in the options' -report."
#define NONSTOP_GROUP_ARGS \
    "?-sequential|-concurrent? ?-no-preflight? ?-preflight-state? NAME LIBRARY ?NAME LIBRARY ...?"
// Said once for every command that loads a library.
#define NONSTOP_PREFLIGHT                                                                      \
    "Each new library is first tried in a sandbox child (nonstop-preflight: load, create,\n"   \
    "initialize()); a crash, hang or throw there rejects the transaction and the host never\n" \
    "runs the library. -no-preflight skips it; -preflight-state also runs get_state() on\n"    \
    "the old version's real checkpoint in the child during voting.\n"
#define NONSTOP_GROUP_MODE                                                             \
    "-concurrent (default): every target in its own thread, as long as the slowest.\n" \
    "-sequential: the same steps target by target.\n"

const TclCommands::Entry TclCommands::entries_[] = {
    {{"load", "Load", "?-no-preflight? ?-preflight-state? NAME LIBRARY",
      "adds module NAME running LIBRARY",
      "LIBRARY without a '/' is looked up in the module path.\n" NONSTOP_PREFLIGHT
          NONSTOP_RETURNS_REPORT},
     &TclCommands::load},
    {{"unload", "Unload", "?-force? NAME",
      "removes module NAME once it has served every message it accepted",
      "-force: a module stuck in a handler is removed all the same (abandoned); the report\n"
      "counts the messages it never served.\n" NONSTOP_RETURNS_REPORT},
     &TclCommands::unload},
    {{"replace", "Replace", "?-force? ?-no-preflight? ?-preflight-state? NAME LIBRARY",
      "replaces module NAME's implementation by LIBRARY, state and queue carried over",
      "The new library must declare the same kind of module.\n"
      "-force: allows another kind (the report names both), and abandons an old version\n"
      "stuck in a handler without a checkpoint (the new one starts from an empty "
      "state).\n" NONSTOP_PREFLIGHT NONSTOP_RETURNS_REPORT},
     &TclCommands::replace},
    {{"enable", "Enable", "NAME", "lets module NAME initiate requests again",
      NONSTOP_RETURNS_REPORT},
     &TclCommands::enable},
    {{"disable", "Disable", "NAME",
      "stops module NAME initiating requests (it still serves its queue)", NONSTOP_RETURNS_REPORT},
     &TclCommands::disable},
    {{"syn_replace", "Syn_Replace", NONSTOP_GROUP_ARGS,
      "replaces a group of modules atomically: every new version or none",
      NONSTOP_GROUP_MODE NONSTOP_PREFLIGHT NONSTOP_RETURNS_REPORT},
     &TclCommands::syn_replace},
    {{"syn_load", "Syn_Load", NONSTOP_GROUP_ARGS,
      "adds a group of modules atomically; they start together",
      NONSTOP_GROUP_MODE NONSTOP_PREFLIGHT NONSTOP_RETURNS_REPORT},
     &TclCommands::syn_load},
    {{"syn_upgrade", "Syn_Upgrade", NONSTOP_GROUP_ARGS,
      "replaces the named modules that exist and adds the others, in one transaction",
      "Additions load once every replaced module has voted yes; everything starts "
      "together.\n" NONSTOP_GROUP_MODE NONSTOP_PREFLIGHT NONSTOP_RETURNS_REPORT},
     &TclCommands::syn_upgrade},
    {{"set_timer", "SetTimer", "SECONDS",
      "sets the time limit for reaching quiescence (default 5 s)",
      "SECONDS may have a fraction, e.g. 2.5.\n" NONSTOP_RETURNS_REPORT},
     &TclCommands::set_timer},
    {{"probation", "SetProbation", "?SECONDS?",
      "returns the probation period, after setting it to SECONDS if given (0: off)",
      "A replacement committed under probation is provisional: the old versions stay loaded,\n"
      "the health rules (handler failures, stuck, idle, failed audit) roll it back on their\n"
      "own, and it becomes permanent by `accept` or when the period ends clean."},
     &TclCommands::probation},
    {{"accept", "Accept", "?ID?", "makes provisional transaction ID (or every one) permanent",
      "Returns the list of ids made permanent; none provisional is an error\n"
      "{NONSTOP NOT_PROVISIONAL}."},
     &TclCommands::accept},
    {{"rollback", "Rollback", "?-transaction ID? ?-from-checkpoint? ?NAME?",
      "undoes the latest transaction that replaced NAME (or transaction ID), as one group",
      "The newer versions are asked for their state in the older ones' schema; without it,\n"
      "an older version that cannot read the newer state aborts the rollback.\n"
      "-from-checkpoint: the older versions restart from their commit-time checkpoints; the\n"
      "report counts the messages whose effects that discards. A release keeps checkpoints\n"
      "of at most Config::checkpoint_keep_bytes (64 MiB by default).\n" NONSTOP_RETURNS_REPORT},
     &TclCommands::rollback},
    {{"modules", nullptr, "", "lists the modules' names, sorted",
      "Returns a list of names; `nonstop info NAME` describes one."},
     &TclCommands::modules},
    {{"info", nullptr, "NAME", "describes module NAME",
      "Returns a dict: name kind version library status enabled in_transaction queue_depth\n"
      "handled handler_errors failed last_failure stuck stuck_ms stuck_in ticks_coalesced\n"
      "notifications_dropped provisional provisional_transaction probation_left_ms\n"
      "audit {result detail failures step}. An unknown NAME is an error {NONSTOP UNKNOWN_MODULE "
      "NAME}."},
     &TclCommands::info},
    {{"send", nullptr, "NAME TYPE PAYLOAD", "sends module NAME a message from the operator",
      "TYPE is a number from 0 to 4294967295; PAYLOAD is the message's bytes.\n"
      "Returns nothing; a module that refuses input is an error {NONSTOP REFUSED NAME}."},
     &TclCommands::send},
    {{"history", nullptr, "?COUNT?", "lists the latest transaction reports, oldest first",
      "COUNT: how many (all that are kept when omitted). Returns a list of report dicts."},
     &TclCommands::history},
    {{"abandoned", nullptr, "", "lists instances given up on whose thread still runs",
      "Returns a list of dicts: name version library in busy_ms."},
     &TclCommands::abandoned},
    {{"libraries", nullptr, "", "lists the libraries loaded now",
      "Returns a list of dicts: path mapped_path kind version instances sha256."},
     &TclCommands::libraries},
    {{"events", nullptr, "", "lists the event table",
      "Returns a list of dicts: publisher event published subscribers."},
     &TclCommands::events},
    {{"module_path", nullptr, "?DIRS?",
      "returns the directories searched for libraries, after setting them to DIRS if given",
      "DIRS is a Tcl list of directories. The remote console cannot change it."},
     &TclCommands::module_path},
    {{"checkpoint", nullptr, "?NAME?",
      "saves module NAME's checkpoint (every module's without NAME) in the release store",
      "put_state() runs in the module's own thread between two messages; the module keeps\n"
      "serving. Returns a list of dicts (name version schema bytes saved error); saved is 0\n"
      "without a state directory. A restart starts each module from its last checkpoint."},
     &TclCommands::checkpoint},
    {{"crashes", nullptr, "", "lists the fatal signals recorded by the crash black box",
      "Returns a list of dicts (id time_ms pid module version signal provisional_transaction\n"
      "backtrace), oldest first; empty without a state directory."},
     &TclCommands::crashes},
    {{"versions", nullptr, "?NAME?",
      "lists the libraries of module NAME's kind in the module path and NAME's version history",
      "Libraries are read as files, never loaded. Returns a dict: kind, libraries (a list of\n"
      "dicts kind version sha256 path) and history (a list of dicts transaction time_ms\n"
      "issuer action old_version new_version library sha256, from the release store)."},
     &TclCommands::versions},
    {{"help", nullptr, "?SUBCOMMAND?", "describes every subcommand, or one in full",
      "SUBCOMMAND may also be a thesis spelling such as Replace.\n"
      "Returns the text; an unknown SUBCOMMAND is an error {NONSTOP USAGE}."},
     &TclCommands::help},
    {{"format", nullptr, "VALUE",
      "renders a report, a list of reports, info or a list of records readably",
      "Returns text: a report as an aligned block, a list of dicts as a table; any other\n"
      "VALUE unchanged. The interactive nonstop-shell prints results this way."},
     &TclCommands::format},
};

std::vector<TclCommands::Usage> TclCommands::usages() {
    std::vector<Usage> out;
    for (const auto& e : entries_) out.push_back(e.usage);
    return out;
}

namespace {
/// "a, b, ... or z", sorted.
std::string one_of(std::vector<std::string> names) {
    std::sort(names.begin(), names.end());
    std::string out;
    for (std::size_t i = 0; i < names.size(); ++i)
        out += (i == 0 ? "" : i + 1 == names.size() ? " or " : ", ") + names[i];
    return out;
}

std::string subcommands() {
    std::vector<std::string> names;
    for (const auto& u : TclCommands::usages()) names.emplace_back(u.name);
    return one_of(std::move(names));
}

std::string synopsis(const TclCommands::Usage& u, const char* command) {
    return *u.args ? std::string(command) + " " + u.args : std::string(command);
}
}  // namespace

int TclCommands::install(Tcl_Interp* interp, Runtime& runtime, Policy policy) {
    Tcl_Namespace* ns = Tcl_FindNamespace(interp, "::nonstop", nullptr, 0);
    if (!ns) ns = Tcl_CreateNamespace(interp, "::nonstop", nullptr, nullptr);
    if (!ns) return TCL_ERROR;

    auto* self = new TclCommands(runtime, policy);
    Tcl_CallWhenDeleted(interp, &TclCommands::destroy, self);
    Tcl_Obj* map = Tcl_NewDictObj();
    for (const auto& e : entries_) {
        const std::string full = std::string("::nonstop::") + e.usage.name;
        self->add(interp, full, e.handler, e.usage.args);
        put(map, e.usage.name, str(full));
        if (policy.thesis_spellings && e.usage.thesis)
            self->add(interp, std::string("::") + e.usage.thesis, e.handler, e.usage.args);
    }
    // Unknown subcommands go through a handler of ours so that they, too, carry NONSTOP USAGE.
    self->add(interp, "::nonstop::_unknown", &TclCommands::unknown);
    self->add(interp, "::nonstop::_bad_subcommand", &TclCommands::bad_subcommand);
    self->add(interp, "::nonstop::_bare", &TclCommands::bare);

    Tcl_Command ensemble = Tcl_FindEnsemble(interp, Tcl_NewStringObj("::nonstop", -1), 0);
    if (!ensemble) ensemble = Tcl_CreateEnsemble(interp, "::nonstop", ns, 0);
    if (!ensemble) return TCL_ERROR;
    Tcl_SetEnsembleMappingDict(interp, ensemble, map);
    Tcl_Obj* unknown = Tcl_NewStringObj("::nonstop::_unknown", -1);
    Tcl_SetEnsembleUnknownHandler(interp, ensemble, Tcl_NewListObj(1, &unknown));
    // An ensemble called without a subcommand raises Tcl's generic error before any handler
    // of ours runs; an enter trace is the one hook that comes first.
    const char* trace =
        "trace remove execution ::nonstop enter ::nonstop::_bare\n"
        "trace add execution ::nonstop enter ::nonstop::_bare";
    if (Tcl_EvalEx(interp, trace, -1, TCL_EVAL_GLOBAL) != TCL_OK) Tcl_ResetResult(interp);
    return TCL_OK;
}

void TclCommands::unload_at_exit(Runtime& runtime) {
    static std::once_flag once;
    std::call_once(once, [&runtime] {
        Tcl_CreateExitHandler([](ClientData data) { static_cast<Runtime*>(data)->unload_all(); },
                              &runtime);
    });
}

bool TclCommands::wait_for_background(std::chrono::milliseconds limit) {
    std::unique_lock lock(background().mutex);
    return background().idle.wait_for(lock, limit, [] { return background().running == 0; });
}

void TclCommands::add(Tcl_Interp* interp, const std::string& name, Handler handler,
                      const char* args) {
    bindings_.push_back(std::make_unique<Binding>(Binding{this, handler, args}));
    Tcl_CreateObjCommand(interp, name.c_str(), &TclCommands::dispatch, bindings_.back().get(),
                         nullptr);
}

void TclCommands::destroy(ClientData data, Tcl_Interp*) { delete static_cast<TclCommands*>(data); }

int TclCommands::dispatch(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    auto* b = static_cast<Binding*>(data);
    b->self->current_args_ = b->args;
    // Nothing an operator types may take the host down: every exception becomes a Tcl error.
    try {
        return (b->self->*(b->handler))(interp, objc, objv);
    } catch (const Error& e) {
        return fail(interp, e.what(), "ERROR");
    } catch (const std::exception& e) {
        return fail(interp, std::string("internal error: ") + e.what(), "INTERNAL");
    }
}

int TclCommands::usage(Tcl_Interp* interp, Tcl_Obj* const objv[]) const {
    Tcl_WrongNumArgs(interp, 1, objv, *current_args_ ? current_args_ : nullptr);
    Tcl_SetErrorCode(interp, "NONSTOP", "USAGE", nullptr);
    return TCL_ERROR;
}

int TclCommands::check_library(Tcl_Interp* interp, const std::string& library) {
    if (!policy_.confined) return TCL_OK;
    // The file the runtime would load, symbolic links resolved: a bare name is looked up in
    // the module path as the runtime does, and may still lead outside it through a link.
    const auto dirs = runtime_.module_path();
    fs::path real;
    if (library.find('/') != std::string::npos) {
        real = canonical_or_empty(library);
    } else {
        std::error_code ec;
        for (const auto& dir : dirs)
            if (fs::exists(fs::path(dir) / library, ec)) {
                real = canonical_or_empty((fs::path(dir) / library).string());
                break;
            }
        if (real.empty()) return TCL_OK;  // no such file: the runtime reports it
    }
    for (const auto& allowed : dirs)
        if (!real.empty() && canonical_or_empty(allowed) == real.parent_path()) return TCL_OK;
    return fail(interp, "library '" + library + "' is outside the module path", "REFUSED", library);
}

namespace {
// Preflight is on for every command typed at the shell or the console: an operator's mistake
// must not take the host down. -no-preflight skips it; -preflight-state adds the state check.
bool preflight_option(const std::string& arg, TransactionOptions& options) {
    if (arg == "-no-preflight")
        options.preflight = false;
    else if (arg == "-preflight-state")
        options.preflight_state = true;
    else
        return false;
    return true;
}

// Takes the leading options off the arguments (-force only where `force` is given).
bool take_options(Tcl_Interp* interp, int& objc, Tcl_Obj* const*& objv, TransactionOptions& options,
                  bool* force) {
    options.preflight = true;
    for (; objc >= 2; --objc, ++objv) {
        const std::string arg = text(objv[1]);
        if (force && arg == "-force")
            *force = true;
        else if (!preflight_option(arg, options))
            break;
    }
    if (options.preflight == false && options.preflight_state.value_or(false)) {
        fail(interp, "-no-preflight and -preflight-state exclude each other", "USAGE");
        return false;
    }
    return true;
}
}  // namespace

int TclCommands::load(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    Tcl_Obj* const* args = objv;
    TransactionOptions options;
    if (!take_options(interp, objc, args, options, nullptr)) return TCL_ERROR;
    if (objc != 3) return usage(interp, objv);
    const std::string library = text(args[2]);
    if (check_library(interp, library) != TCL_OK) return TCL_ERROR;
    return finish_within(interp, policy_, [&rt = runtime_, name = text(args[1]), library, options] {
        return rt.load(name, library, options);
    });
}

namespace {
// Takes a leading -force off the arguments; true when it was there.
bool take_force(int& objc, Tcl_Obj* const*& objv) {
    if (objc < 2 || text(objv[1]) != "-force") return false;
    --objc;
    ++objv;
    return true;
}
}  // namespace

int TclCommands::unload(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    Tcl_Obj* const* args = objv;
    const bool force = take_force(objc, args);
    if (objc != 2) return usage(interp, objv);
    return finish_within(interp, policy_, [&rt = runtime_, name = text(args[1]), force] {
        return rt.unload(name, force);
    });
}

int TclCommands::replace(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    Tcl_Obj* const* args = objv;
    TransactionOptions options;
    if (!take_options(interp, objc, args, options, &options.force)) return TCL_ERROR;
    if (objc != 3) return usage(interp, objv);
    const std::string library = text(args[2]);
    if (check_library(interp, library) != TCL_OK) return TCL_ERROR;
    return finish_within(interp, policy_, [&rt = runtime_, name = text(args[1]), library, options] {
        return rt.replace(name, library, options);
    });
}

int TclCommands::enable(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) return usage(interp, objv);
    return finish_within(interp, policy_,
                         [&rt = runtime_, name = text(objv[1])] { return rt.enable(name); });
}

int TclCommands::disable(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) return usage(interp, objv);
    return finish_within(interp, policy_,
                         [&rt = runtime_, name = text(objv[1])] { return rt.disable(name); });
}

int TclCommands::syn_replace(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    return group(interp, objc, objv, 0);
}
int TclCommands::syn_load(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    return group(interp, objc, objv, 1);
}
int TclCommands::syn_upgrade(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    return group(interp, objc, objv, 2);
}

int TclCommands::group(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[], int which) {
    Mode mode = Mode::concurrent;
    TransactionOptions options;
    options.preflight = true;
    int i = 1;
    for (; i < objc; ++i) {
        const std::string arg = text(objv[i]);
        if (preflight_option(arg, options)) {
            continue;
        } else if (arg == "-sequential") {
            mode = Mode::sequential;
        } else if (arg == "-concurrent") {
            mode = Mode::concurrent;
        } else if (arg == "--") {
            ++i;
            break;
        } else if (!arg.empty() && arg[0] == '-') {
            return fail(interp,
                        "bad option '" + arg +
                            "': must be -sequential, -concurrent, -no-preflight or "
                            "-preflight-state",
                        "USAGE");
        } else {
            break;
        }
    }
    if (objc - i < 2 || (objc - i) % 2 != 0) return usage(interp, objv);
    if (options.preflight == false && options.preflight_state.value_or(false))
        return fail(interp, "-no-preflight and -preflight-state exclude each other", "USAGE");
    std::vector<Change> changes;
    for (; i < objc; i += 2) {
        Change c{text(objv[i]), text(objv[i + 1])};
        if (check_library(interp, c.library) != TCL_OK) return TCL_ERROR;
        changes.push_back(std::move(c));
    }
    return finish_within(interp, policy_, [&rt = runtime_, changes, mode, which, options] {
        switch (which) {
            case 0: return rt.syn_replace(changes, mode, options);
            case 1: return rt.syn_load(changes, mode, options);
            default: return rt.syn_upgrade(changes, mode, options);
        }
    });
}

int TclCommands::set_timer(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) return usage(interp, objv);
    double seconds = 0;
    if (Tcl_GetDoubleFromObj(nullptr, objv[1], &seconds) != TCL_OK || !std::isfinite(seconds) ||
        seconds > 1e9)
        return fail(interp, "expected a number of seconds but got '" + text(objv[1]) + "'",
                    "USAGE");
    const std::chrono::milliseconds limit(std::llround(seconds * 1000.0));
    return finish_within(interp, policy_, [&rt = runtime_, limit] { return rt.set_timer(limit); });
}

int TclCommands::probation(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    if (objc == 2) {
        double seconds = 0;
        if (Tcl_GetDoubleFromObj(nullptr, objv[1], &seconds) != TCL_OK || !std::isfinite(seconds) ||
            seconds < 0 || seconds > 1e9)
            return fail(interp,
                        "expected a non-negative number of seconds but got '" + text(objv[1]) + "'",
                        "USAGE");
        runtime_.set_probation(std::chrono::milliseconds(std::llround(seconds * 1000.0)));
    }
    Tcl_SetObjResult(interp,
                     Tcl_NewDoubleObj(static_cast<double>(runtime_.probation().count()) / 1000.0));
    return TCL_OK;
}

int TclCommands::accept(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    Tcl_WideInt id = 0;
    if (objc == 2 && (Tcl_GetWideIntFromObj(nullptr, objv[1], &id) != TCL_OK || id <= 0))
        return fail(interp, "expected a transaction id but got '" + text(objv[1]) + "'", "USAGE");
    std::vector<std::uint64_t> accepted;
    try {
        accepted = runtime_.accept(static_cast<std::uint64_t>(id));
    } catch (const Error& e) {
        return fail(interp, e.what(), "NOT_PROVISIONAL");
    }
    Tcl_SetObjResult(interp, list_of(accepted, [](auto a) {
                         return Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(a));
                     }));
    return TCL_OK;
}

int TclCommands::rollback(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    Tcl_WideInt id = 0;
    bool from_checkpoint = false;
    std::string name;
    for (int i = 1; i < objc; ++i) {
        const std::string arg = text(objv[i]);
        if (arg == "-from-checkpoint") {
            from_checkpoint = true;
        } else if (arg == "-transaction") {
            if (++i == objc || Tcl_GetWideIntFromObj(nullptr, objv[i], &id) != TCL_OK || id <= 0)
                return fail(interp, "-transaction expects a transaction id", "USAGE");
        } else if (!arg.empty() && arg[0] == '-') {
            return fail(interp,
                        "bad option '" + arg + "': must be -transaction or -from-checkpoint",
                        "USAGE");
        } else if (name.empty() && i == objc - 1) {
            name = arg;
        } else {
            return usage(interp, objv);
        }
    }
    if ((id == 0) == name.empty()) return usage(interp, objv);
    return finish(interp, id != 0 ? runtime_.rollback_transaction(static_cast<std::uint64_t>(id),
                                                                  from_checkpoint)
                                  : runtime_.rollback(name, from_checkpoint));
}

int TclCommands::modules(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 1) return usage(interp, objv);
    Tcl_SetObjResult(interp,
                     list_of(runtime_.modules(), [](const auto& m) { return str(m.name); }));
    return TCL_OK;
}

int TclCommands::info(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) return usage(interp, objv);
    const std::string name = text(objv[1]);
    auto m = runtime_.info(name);
    if (!m) return fail(interp, "no module is named '" + name + "'", "UNKNOWN_MODULE", name);
    Tcl_Obj* d = Tcl_NewDictObj();
    put(d, "name", str(m->name));
    put(d, "kind", str(m->kind));
    put(d, "version", str(m->version));
    put(d, "library", str(m->library));
    put(d, "status", Tcl_NewStringObj(to_string(m->status), -1));
    put(d, "enabled", Tcl_NewBooleanObj(m->enabled));
    put(d, "in_transaction", Tcl_NewBooleanObj(m->in_transaction));
    put(d, "queue_depth", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->queue_depth)));
    put(d, "handled", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->handled)));
    put(d, "handler_errors", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->handler_errors)));
    put(d, "failed", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->failed)));
    put(d, "last_failure", str(m->last_failure));
    put(d, "stuck", Tcl_NewBooleanObj(m->stuck));
    put(d, "stuck_ms", Tcl_NewDoubleObj(to_ms(m->stuck_for)));
    put(d, "stuck_in", str(m->stuck_in));
    put(d, "ticks_coalesced", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->ticks_coalesced)));
    put(d, "notifications_dropped",
        Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->notifications_dropped)));
    put(d, "provisional", Tcl_NewBooleanObj(m->provisional));
    put(d, "provisional_transaction",
        Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->provisional_transaction)));
    put(d, "probation_left_ms",
        Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m->probation_left.count())));
    Tcl_Obj* audit = Tcl_NewDictObj();
    put(audit, "result",
        Tcl_NewStringObj(!m->audited        ? "none"
                         : m->audit_healthy ? "healthy"
                                            : "failed",
                         -1));
    put(audit, "detail", str(m->audit_detail));
    put(audit, "failures", Tcl_NewWideIntObj(m->audit_failures));
    put(audit, "step", str(m->audit_step));
    put(d, "audit", audit);
    Tcl_SetObjResult(interp, d);
    return TCL_OK;
}

int TclCommands::send(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 4) return usage(interp, objv);
    const std::string name = text(objv[1]);
    Tcl_WideInt type = 0;
    if (Tcl_GetWideIntFromObj(nullptr, objv[2], &type) != TCL_OK || type < 0 || type > 0xffffffffLL)
        return fail(interp,
                    "expected a message type from 0 to 4294967295 but got '" + text(objv[2]) + "'",
                    "USAGE");
    if (!runtime_.info(name))
        return fail(interp, "no module is named '" + name + "'", "UNKNOWN_MODULE", name);
    Message m;
    m.type = static_cast<std::uint32_t>(type);
    m.sender = "operator";
    m.payload = text(objv[3]);
    bool accepted = false;
    if (bounded<bool>(
            interp, policy_,
            [&rt = runtime_, name, m = std::move(m)]() mutable {
                return rt.send(name, std::move(m));
            },
            accepted) != TCL_OK)
        return TCL_ERROR;
    if (!accepted)
        return fail(interp, "module '" + name + "' did not accept the message", "REFUSED", name);
    Tcl_ResetResult(interp);
    return TCL_OK;
}

int TclCommands::abandoned(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 1) return usage(interp, objv);
    Tcl_SetObjResult(interp, list_of(runtime_.abandoned(), [](const auto& a) {
                         return dict({{"name", str(a.name)},
                                      {"version", str(a.version)},
                                      {"library", str(a.library)},
                                      {"in", str(a.in)},
                                      {"busy_ms", Tcl_NewDoubleObj(to_ms(a.busy_for))}});
                     }));
    return TCL_OK;
}

int TclCommands::history(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    Tcl_WideInt count = 0;
    if (objc == 2 && (Tcl_GetWideIntFromObj(nullptr, objv[1], &count) != TCL_OK || count < 0))
        return fail(interp, "expected a non-negative count but got '" + text(objv[1]) + "'",
                    "USAGE");
    Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
    if (objc == 1 || count > 0)
        for (const auto& r : runtime_.history(static_cast<std::size_t>(count)))
            Tcl_ListObjAppendElement(nullptr, list, report_dict(r));
    Tcl_SetObjResult(interp, list);
    return TCL_OK;
}

int TclCommands::libraries(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 1) return usage(interp, objv);
    Tcl_SetObjResult(interp, list_of(runtime_.libraries(), [](const auto& l) {
                         return dict({{"path", str(l.path)},
                                      {"mapped_path", str(l.mapped_path)},
                                      {"kind", str(l.kind)},
                                      {"version", str(l.version)},
                                      {"instances", Tcl_NewLongObj(l.instances)},
                                      {"sha256", str(l.sha256)}});
                     }));
    return TCL_OK;
}

int TclCommands::events(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 1) return usage(interp, objv);
    Tcl_SetObjResult(interp, list_of(runtime_.events(), [](const auto& tag) {
                         return dict({{"publisher", str(tag.publisher)},
                                      {"event", str(tag.event)},
                                      {"published", Tcl_NewBooleanObj(tag.published)},
                                      {"subscribers", list_of(tag.subscribers, str)}});
                     }));
    return TCL_OK;
}

int TclCommands::module_path(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    if (objc == 2) {
        if (policy_.confined)
            return fail(interp, "the module path cannot be changed from here", "REFUSED");
        int n = 0;
        Tcl_Obj** items = nullptr;
        if (Tcl_ListObjGetElements(nullptr, objv[1], &n, &items) != TCL_OK)
            return fail(interp, "expected a list of directories but got '" + text(objv[1]) + "'",
                        "USAGE");
        std::vector<std::string> dirs;
        for (int i = 0; i < n; ++i) dirs.push_back(text(items[i]));
        runtime_.set_module_path(std::move(dirs));
    }
    Tcl_SetObjResult(interp, list_of(runtime_.module_path(), str));
    return TCL_OK;
}

namespace {
Tcl_Obj* unix_ms(std::chrono::system_clock::time_point t) {
    return Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(
        std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count()));
}
}  // namespace

int TclCommands::checkpoint(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    const auto taken = runtime_.checkpoint(objc == 2 ? text(objv[1]) : std::string());
    if (objc == 2 && !taken.empty() && !taken[0].error.empty())
        return fail(interp, taken[0].error, "CHECKPOINT", taken[0].module);
    Tcl_SetObjResult(
        interp, list_of(taken, [](const auto& c) {
            return dict({{"name", str(c.module)},
                         {"version", str(c.version)},
                         {"schema", Tcl_NewWideIntObj(c.schema)},
                         {"bytes", Tcl_NewByteArrayObj(
                                       reinterpret_cast<const unsigned char*>(c.bytes.data()),
                                       static_cast<int>(c.bytes.size()))},
                         {"saved", Tcl_NewBooleanObj(c.saved)},
                         {"error", str(c.error)}});
        }));
    return TCL_OK;
}

int TclCommands::crashes(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 1) return usage(interp, objv);
    Tcl_SetObjResult(
        interp, list_of(runtime_.crashes(), [](const auto& c) {
            return dict({{"id", Tcl_NewWideIntObj(c.id)},
                         {"time_ms", unix_ms(c.time)},
                         {"pid", Tcl_NewWideIntObj(c.pid)},
                         {"module", str(c.module)},
                         {"version", str(c.version)},
                         {"signal", str(c.signal_name)},
                         {"provisional_transaction", Tcl_NewWideIntObj(c.provisional_transaction)},
                         {"backtrace", str(c.backtrace)}});
        }));
    return TCL_OK;
}

int TclCommands::versions(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    const auto catalogue = runtime_.versions(objc == 2 ? text(objv[1]) : std::string());
    auto library = [](const auto& e) {
        return dict({{"kind", str(e.kind)},
                     {"version", str(e.version)},
                     {"sha256", str(e.sha256)},
                     {"path", str(e.path)}});
    };
    auto change = [](const auto& h) {
        return dict({{"transaction", Tcl_NewWideIntObj(h.transaction)},
                     {"time_ms", unix_ms(h.time)},
                     {"issuer", str(h.issuer)},
                     {"action", str(h.action)},
                     {"old_version", str(h.old_version)},
                     {"new_version", str(h.new_version)},
                     {"library", str(h.library)},
                     {"sha256", str(h.sha256)}});
    };
    Tcl_SetObjResult(interp, dict({{"kind", str(catalogue.kind)},
                                   {"libraries", list_of(catalogue.libraries, library)},
                                   {"history", list_of(catalogue.history, change)}}));
    return TCL_OK;
}

int TclCommands::unknown(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    // The ensemble calls this with (ensemble, subcommand, args...) and runs the prefix we
    // return with the arguments after the subcommand appended; the subcommand goes in the
    // prefix so that the error can name it.
    Tcl_Obj* prefix[2] = {Tcl_NewStringObj("::nonstop::_bad_subcommand", -1),
                          objc > 2 ? objv[2] : Tcl_NewObj()};
    Tcl_SetObjResult(interp, Tcl_NewListObj(2, prefix));
    return TCL_OK;
}

int TclCommands::bad_subcommand(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    const std::string sub = objc > 1 ? text(objv[1]) : std::string();
    return fail(interp, "unknown subcommand '" + sub + "': must be one of " + subcommands(),
                "USAGE");
}

int TclCommands::bare(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    // Called as an enter trace: (command-string, "enter").
    int words = 0;
    if (objc < 2 || Tcl_ListObjLength(nullptr, objv[1], &words) != TCL_OK || words != 1)
        return TCL_OK;
    return fail(interp,
                "wrong # args: should be \"nonstop SUBCOMMAND ?ARG ...?\" where SUBCOMMAND is " +
                    subcommands() + " (\"nonstop help\" describes them)",
                "USAGE");
}

int TclCommands::help(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc > 2) return usage(interp, objv);
    std::string out;
    if (objc == 1) {
        out = "nonstop SUBCOMMAND ?ARG ...?  (\"nonstop help SUBCOMMAND\" for one in full)\n";
        for (const auto& e : entries_)
            out += "\n" + synopsis(e.usage, (std::string("nonstop ") + e.usage.name).c_str()) +
                   "\n    " + e.usage.summary +
                   (e.usage.thesis && policy_.thesis_spellings
                        ? std::string(" (") + e.usage.thesis + ")"
                        : std::string());
        Tcl_SetObjResult(interp, str(out));
        return TCL_OK;
    }
    const std::string wanted = text(objv[1]);
    for (const auto& e : entries_) {
        const Usage& u = e.usage;
        if (wanted != u.name && (!u.thesis || wanted != u.thesis)) continue;
        out = synopsis(u, (std::string("nonstop ") + u.name).c_str()) + "\n";
        if (u.thesis)
            out += synopsis(u, u.thesis) + (policy_.thesis_spellings
                                                ? "  (thesis spelling)\n"
                                                : "  (thesis spelling; not defined here)\n");
        out += "    " + std::string(u.summary) + ".\n";
        std::string_view details(u.details);
        while (!details.empty()) {
            const auto nl = details.find('\n');
            out += "    " + std::string(details.substr(0, nl)) + "\n";
            details.remove_prefix(nl == std::string_view::npos ? details.size() : nl + 1);
        }
        out.pop_back();
        Tcl_SetObjResult(interp, str(out));
        return TCL_OK;
    }
    std::vector<std::string> thesis;
    for (const auto& e : entries_)
        if (e.usage.thesis) thesis.emplace_back(e.usage.thesis);
    return fail(interp,
                "no help for '" + wanted + "': must be one of " + subcommands() +
                    ", or a thesis spelling: " + one_of(std::move(thesis)),
                "USAGE", wanted);
}

int TclCommands::format(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) return usage(interp, objv);
    Tcl_SetObjResult(interp, str(ValueFormatter::render(objv[1])));
    return TCL_OK;
}

}  // namespace nonstop

// The operator's commands (thesis table 4.1 plus introspection) bound into one Tcl interpreter:
// the ::nonstop ensemble and, optionally, the thesis's own spellings as global commands.
// Errors an operator can cause become Tcl errors whose -errorcode begins with NONSTOP.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <tcl.h>

namespace nonstop {

class Runtime;

class TclCommands {
public:
    struct Policy {
        /// Adds Enable, Disable, Load, Unload, Replace, Syn_Replace, Syn_Load, Syn_Upgrade,
        /// SetTimer, SetProbation, Accept and Rollback as global commands so that chapter 5's
        /// batches run as written.
        bool thesis_spellings = false;
        /// For untrusted operators (the remote console): a library must lie in a directory of
        /// the module path, and the module path cannot be changed.
        bool confined = false;
        /// When set, a framework call that can wait (a transaction, a send into a full queue)
        /// runs on a thread of its own and the command stops waiting at the time this returns,
        /// or when the interpreter's evaluation is cancelled (Tcl_CancelEval): an error
        /// {NONSTOP TIMEOUT} says the call goes on in the background (its report will be in
        /// `nonstop history`). Unset (the local shell): the command waits as long as the call.
        std::function<std::chrono::steady_clock::time_point()> wait_until;
    };

    /// Creates the commands in `interp`; they live (and this object with them) until the
    /// interpreter is deleted. Returns a Tcl status; on error the interpreter holds the reason.
    static int install(Tcl_Interp* interp, Runtime& runtime, Policy policy);

    /// One subcommand as `nonstop help` describes it and a wrong number of arguments quotes it.
    struct Usage {
        const char* name;     ///< the ::nonstop subcommand
        const char* thesis;   ///< its thesis spelling (a global command), or nullptr
        const char* args;     ///< the arguments' synopsis, e.g. "?-force? NAME LIBRARY"
        const char* summary;  ///< one line
        const char* details;  ///< options, result and errors; lines separated by '\n'
    };

    /// Every subcommand, in the order `nonstop help` lists them (for completion in the shell).
    static std::vector<Usage> usages();

    /// Makes Tcl's exit (the `exit` command, Tcl_Exit, end of Tcl_Main) unload every module of
    /// `runtime` first, once per process: after exit() the static destructors of libraries that
    /// modules use may already have run when a function-local static runtime is destroyed.
    static void unload_at_exit(Runtime& runtime);

    /// Waits until no framework call left to the background by a command that stopped waiting
    /// (Policy::wait_until) is running, at most `limit`; true when none is. A host calls it
    /// before it destroys the Runtime those calls use.
    static bool wait_for_background(std::chrono::milliseconds limit);

    TclCommands(const TclCommands&) = delete;
    TclCommands& operator=(const TclCommands&) = delete;

private:
    using Handler = int (TclCommands::*)(Tcl_Interp*, int, Tcl_Obj* const[]);
    struct Binding {
        TclCommands* self;
        Handler handler;
        const char* args;  // quoted by usage()
    };
    /// A row of the one table of subcommands: what install() binds, `help` prints and usage()
    /// quotes. Adding a subcommand is adding a row.
    struct Entry {
        Usage usage;
        Handler handler;
    };
    static const Entry entries_[];

    TclCommands(Runtime& runtime, Policy policy) : runtime_(runtime), policy_(policy) {}
    static int dispatch(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]);
    static void destroy(ClientData data, Tcl_Interp* interp);

    int load(Tcl_Interp*, int, Tcl_Obj* const[]);
    int unload(Tcl_Interp*, int, Tcl_Obj* const[]);
    int replace(Tcl_Interp*, int, Tcl_Obj* const[]);
    int enable(Tcl_Interp*, int, Tcl_Obj* const[]);
    int disable(Tcl_Interp*, int, Tcl_Obj* const[]);
    int syn_replace(Tcl_Interp*, int, Tcl_Obj* const[]);
    int syn_load(Tcl_Interp*, int, Tcl_Obj* const[]);
    int syn_upgrade(Tcl_Interp*, int, Tcl_Obj* const[]);
    int set_timer(Tcl_Interp*, int, Tcl_Obj* const[]);
    int probation(Tcl_Interp*, int, Tcl_Obj* const[]);
    int accept(Tcl_Interp*, int, Tcl_Obj* const[]);
    int rollback(Tcl_Interp*, int, Tcl_Obj* const[]);
    int modules(Tcl_Interp*, int, Tcl_Obj* const[]);
    int info(Tcl_Interp*, int, Tcl_Obj* const[]);
    int send(Tcl_Interp*, int, Tcl_Obj* const[]);
    int history(Tcl_Interp*, int, Tcl_Obj* const[]);
    int abandoned(Tcl_Interp*, int, Tcl_Obj* const[]);
    int libraries(Tcl_Interp*, int, Tcl_Obj* const[]);
    int events(Tcl_Interp*, int, Tcl_Obj* const[]);
    int module_path(Tcl_Interp*, int, Tcl_Obj* const[]);
    int help(Tcl_Interp*, int, Tcl_Obj* const[]);
    int format(Tcl_Interp*, int, Tcl_Obj* const[]);
    int bare(Tcl_Interp*, int, Tcl_Obj* const[]);
    int checkpoint(Tcl_Interp*, int, Tcl_Obj* const[]);
    int crashes(Tcl_Interp*, int, Tcl_Obj* const[]);
    int versions(Tcl_Interp*, int, Tcl_Obj* const[]);
    int unknown(Tcl_Interp*, int, Tcl_Obj* const[]);
    int bad_subcommand(Tcl_Interp*, int, Tcl_Obj* const[]);

    int group(Tcl_Interp*, int, Tcl_Obj* const[], int which);
    /// The wrong-number-of-arguments error, quoting the running subcommand's synopsis.
    int usage(Tcl_Interp*, Tcl_Obj* const objv[]) const;
    /// Refuses (as a Tcl error) a library the policy does not allow; TCL_OK otherwise.
    int check_library(Tcl_Interp*, const std::string& library);
    void add(Tcl_Interp* interp, const std::string& name, Handler handler, const char* args = "");

    Runtime& runtime_;
    Policy policy_;
    std::vector<std::unique_ptr<Binding>> bindings_;
    const char* current_args_ = "";  // the synopsis of the subcommand being dispatched
};

}  // namespace nonstop

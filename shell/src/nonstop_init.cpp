// The `package require nonstop` entry points: the ::nonstop commands bound to the process's
// runtime, in whatever interpreter loads the extension.
#include <tcl.h>

#include <cstdio>
#include <mutex>

#include "nonstop/error.hpp"
#include "nonstop/runtime.hpp"
#include "nonstop/tcl_commands.hpp"

#ifndef NONSTOP_PACKAGE_VERSION
#error NONSTOP_PACKAGE_VERSION must be defined
#endif

namespace {
int init(Tcl_Interp* interp, bool safe) {
    nonstop::TclCommands::Policy policy;
    // A safe interpreter is by definition untrusted: it gets the console's restrictions.
    policy.confined = safe;
    nonstop::Runtime* instance = nullptr;
    try {
        instance = &nonstop::Runtime::instance();
    } catch (const nonstop::Error& e) {
        Tcl_SetObjResult(interp, Tcl_NewStringObj(e.what(), -1));
        return TCL_ERROR;
    }
    auto& runtime = *instance;
    // With NONSTOP_STATE_DIR, the first interpreter to load the package restarts the stored
    // release (as nonstop-shell does), before any command could overwrite it.
    static std::once_flag restored;
    std::call_once(restored, [&runtime] {
        for (const auto& e : runtime.restore().errors)
            std::fprintf(stderr, "nonstop: %s\n", e.c_str());
    });
    if (nonstop::TclCommands::install(interp, runtime, policy) != TCL_OK) return TCL_ERROR;
    nonstop::TclCommands::unload_at_exit(runtime);
    return Tcl_PkgProvide(interp, "nonstop", NONSTOP_PACKAGE_VERSION);
}
}  // namespace

extern "C" {
/// Called by `load` in a trusted interpreter.
__attribute__((visibility("default"))) int Nonstop_Init(Tcl_Interp* interp) {
    return init(interp, false);
}
/// Called by `load` in a safe interpreter.
__attribute__((visibility("default"))) int Nonstop_SafeInit(Tcl_Interp* interp) {
    return init(interp, true);
}
}

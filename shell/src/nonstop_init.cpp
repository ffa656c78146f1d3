// The `package require nonstop` entry points: the ::nonstop commands bound to the process's
// runtime, in whatever interpreter loads the extension.
#include <tcl.h>

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
    auto& runtime = nonstop::Runtime::instance();
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

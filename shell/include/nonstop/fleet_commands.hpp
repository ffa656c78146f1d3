// The fleet's commands in a Tcl interpreter: `nonstop fleet members|replace|syn_replace|resume|
// abort|plan|history`, added to the ::nonstop ensemble, and Rolling_Replace with the thesis
// spellings. Errors raise Tcl errors whose -errorcode begins with NONSTOP FLEET.
#pragma once

#include <tcl.h>

namespace nonstop {

class Fleet;

class FleetCommands {
public:
    /// Adds the commands to `interp` (after TclCommands::install); `fleet` must outlive it.
    /// Returns a Tcl status.
    static int install(Tcl_Interp* interp, Fleet& fleet, bool thesis_spellings);
};

}  // namespace nonstop

// Keeps one console session's Tcl values within a budget, so that no command of an
// authenticated client can make Tcl abort the host: Tcl panics (abort()) when an allocation
// fails or a string passes 2 GiB, so every check happens before the value is built.
//
// The commands that build values (string repeat, append, lappend, lrepeat, join, format, string
// cat, concat, list, string map, binary format, set, regsub, subst, dict set/append/lappend...)
// are wrapped: the wrapper computes an upper bound of the size of what the command would build
// (string repeat: length times count; append: the variable plus the arguments; format: the
// arguments plus every width in the format...) and refuses, with the errorcode
// {NONSTOP MEMORY bytes limit}, a value above max_value or a store that would take the session's
// variables (global, namespace and the locals of running procedures) above the budget. Inline
// compilation of commands is turned off (an object trace), so that a procedure's bytecode cannot
// bypass the wrappers. Long lists and dictionaries are sized from a sample of their elements.
#pragma once

#include <cstddef>

#include <tcl.h>

namespace nonstop {

class MemoryBudget {
public:
    /// Wraps the value-building commands of `interp` (for the interpreter's lifetime).
    /// `max_value`: the largest value a command may build; `budget`: the most that the
    /// session's variables (global, namespace, locals) may hold together.
    static void install(Tcl_Interp* interp, std::size_t max_value, std::size_t budget);
};

}  // namespace nonstop

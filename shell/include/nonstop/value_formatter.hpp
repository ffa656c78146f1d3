// Renders what the ::nonstop commands return for a person at a terminal: a transaction report
// as an aligned block, a module's info as aligned fields, a list of records (history,
// libraries, events, abandoned, several modules' info) as a table. Scripts keep the dicts;
// this is for printing only (`nonstop format`, the interactive nonstop-shell).
#pragma once

#include <string>

#include <tcl.h>

namespace nonstop {

class ValueFormatter {
public:
    /// The text to print for `value`; a value of no known shape comes back as its string.
    static std::string render(Tcl_Obj* value);
};

}  // namespace nonstop

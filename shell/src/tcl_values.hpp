// Small conversions between C++ strings and Tcl values, shared by the shell's command files
// (the nonstop ensemble and the fleet's subcommands).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <tcl.h>

namespace nonstop::tcl_values {

/// A new Tcl string value holding `s` (which may contain NUL bytes).
inline Tcl_Obj* str(std::string_view s) {
    return Tcl_NewStringObj(s.data(), static_cast<int>(s.size()));
}

/// The string a Tcl value holds, NUL bytes included.
inline std::string text(Tcl_Obj* o) {
    int n = 0;
    const char* s = Tcl_GetStringFromObj(o, &n);
    return std::string(s, static_cast<std::size_t>(n));
}

/// Sets `key` in the (unshared) dict `dict`.
inline void put(Tcl_Obj* dict, const char* key, Tcl_Obj* value) {
    Tcl_DictObjPut(nullptr, dict, Tcl_NewStringObj(key, -1), value);
}

}  // namespace nonstop::tcl_values

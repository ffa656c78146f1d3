// Small conversions between C++ strings and Tcl values, shared by the shell's command files
// (the nonstop ensemble and the fleet's subcommands).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

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

/// A new Tcl dict of `fields`, in their order.
inline Tcl_Obj* dict(std::initializer_list<std::pair<const char*, Tcl_Obj*>> fields) {
    Tcl_Obj* d = Tcl_NewDictObj();
    for (const auto& [key, value] : fields) put(d, key, value);
    return d;
}

/// A new Tcl list of `items`, each made a value by `value_of`.
template <class Items, class F>
Tcl_Obj* list_of(const Items& items, F&& value_of) {
    Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
    for (const auto& item : items) Tcl_ListObjAppendElement(nullptr, list, value_of(item));
    return list;
}

/// `report` as the result when `ok`; else raises the error `message` with `errorcode` (a list)
/// and `report` in the return options (-report), so that a script can trap it by its code and
/// still read the whole report.
inline int report_or_fail(Tcl_Interp* interp, bool ok, Tcl_Obj* report, const std::string& message,
                          std::initializer_list<Tcl_Obj*> errorcode) {
    if (ok) {
        for (Tcl_Obj* word : errorcode) {  // unused: freed
            Tcl_IncrRefCount(word);
            Tcl_DecrRefCount(word);
        }
        Tcl_SetObjResult(interp, report);
        return TCL_OK;
    }
    Tcl_SetObjResult(interp, str(message));
    Tcl_Obj* options =
        dict({{"-code", Tcl_NewIntObj(TCL_ERROR)},
              {"-level", Tcl_NewIntObj(0)},
              {"-errorcode", Tcl_NewListObj(static_cast<int>(errorcode.size()), errorcode.begin())},
              {"-report", report}});
    return Tcl_SetReturnOptions(interp, options);
}

}  // namespace nonstop::tcl_values

#include "nonstop/fleet_commands.hpp"

#include <chrono>
#include <cmath>
#include <string>
#include <vector>

#include "nonstop/error.hpp"
#include "nonstop/fleet/fleet.hpp"
#include "tcl_values.hpp"

namespace nonstop {

namespace {

using tcl_values::dict;
using tcl_values::list_of;
using tcl_values::put;
using tcl_values::report_or_fail;
using tcl_values::str;
using tcl_values::text;

Tcl_Obj* member_dict(const MemberInfo& m) {
    auto module = [](const auto& mod) {
        return dict({{"name", str(mod.name)},
                     {"version", str(mod.version)},
                     {"sha256", str(mod.sha256)},
                     {"handled", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(mod.handled))},
                     {"status", str(mod.status)},
                     {"library", str(mod.library)}});
    };
    return dict({{"id", str(m.id)},
                 {"host", str(m.host)},
                 {"pid", Tcl_NewWideIntObj(m.pid)},
                 {"health", str(m.health)},
                 {"sessions", Tcl_NewWideIntObj(static_cast<Tcl_WideInt>(m.sessions))},
                 {"modules", list_of(m.modules, module)}});
}

Tcl_Obj* plan_dict(const PlanReport& r) {
    auto member = [](const auto& m) {
        return dict({{"member", str(m.member)},
                     {"state", str(m.state)},
                     {"before", str(m.before)},
                     {"after", str(m.after)},
                     {"blackout_ms", Tcl_NewDoubleObj(m.blackout_ms)},
                     {"reason", str(m.reason)},
                     {"release", str(m.release)}});
    };
    return dict({{"id", str(r.id)},
                 {"kind", str(r.kind)},
                 {"command", str(r.command)},
                 {"state", str(r.state)},
                 {"reason", str(r.reason)},
                 {"decision", str(r.decision)},
                 {"members", list_of(r.members, member)}});
}

int fail(Tcl_Interp* interp, const std::string& message, const char* code) {
    Tcl_SetObjResult(interp, str(message));
    Tcl_SetErrorCode(interp, "NONSTOP", "FLEET", code, nullptr);
    return TCL_ERROR;
}

/// A plan that succeeded is the result; any other raises NONSTOP FLEET ABORTED ID with the
/// report in the return options (-report), as the local commands do.
int finish(Tcl_Interp* interp, const PlanReport& r) {
    const std::string reason = r.reason.empty() ? "fleet plan " + r.id + " ended " + r.state
                                                : "fleet plan " + r.id + ": " + r.reason;
    return report_or_fail(interp, r.ok(), plan_dict(r), reason,
                          {str("NONSTOP"), str("FLEET"), str("ABORTED"), str(r.id)});
}

int usage(Tcl_Interp* interp, const char* args) {
    Tcl_SetObjResult(interp,
                     str(std::string("wrong # args: should be \"nonstop fleet ") + args + "\""));
    Tcl_SetErrorCode(interp, "NONSTOP", "USAGE", nullptr);
    return TCL_ERROR;
}

// fleet replace NAME LIBRARY ?-batch K? ?-probation SECONDS?; `first` is NAME's index.
int rolling(Fleet& fleet, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[], int first) {
    const char* args = "replace NAME LIBRARY ?-batch K? ?-probation SECONDS?";
    if (objc < first + 2 || (objc - first) % 2 != 0) return usage(interp, args);
    int batch = 1;
    double probation = 0;
    for (int i = first + 2; i < objc; i += 2) {
        const std::string option = text(objv[i]);
        if (option == "-batch") {
            if (Tcl_GetIntFromObj(nullptr, objv[i + 1], &batch) != TCL_OK || batch < 1)
                return fail(interp, "-batch needs a number of members, at least 1", "USAGE");
        } else if (option == "-probation") {
            if (Tcl_GetDoubleFromObj(nullptr, objv[i + 1], &probation) != TCL_OK ||
                !(probation >= 0))
                return fail(interp, "-probation needs a number of seconds, at least 0", "USAGE");
        } else {
            return usage(interp, args);
        }
    }
    const auto ms = std::chrono::milliseconds(std::llround(probation * 1000));
    return finish(interp, fleet.replace(text(objv[first]), text(objv[first + 1]), batch, ms));
}

int fleet_command(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    auto& fleet = *static_cast<Fleet*>(data);
    if (objc < 2) return usage(interp, "members|replace|syn_replace|resume|abort|plan|history ...");
    const std::string sub = text(objv[1]);
    try {
        if (sub == "members" && objc == 2) {
            Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
            for (const auto& m : fleet.members())
                Tcl_ListObjAppendElement(nullptr, list, member_dict(m));
            Tcl_SetObjResult(interp, list);
            return TCL_OK;
        }
        if (sub == "replace") return rolling(fleet, interp, objc, objv, 2);
        if (sub == "syn_replace") {
            if (objc < 4 || objc % 2 != 0)
                return usage(interp, "syn_replace NAME LIBRARY ?NAME LIBRARY ...?");
            std::vector<Change> changes;
            for (int i = 2; i < objc; i += 2) changes.push_back({text(objv[i]), text(objv[i + 1])});
            return finish(interp, fleet.syn_replace(changes));
        }
        if ((sub == "resume" || sub == "abort" || sub == "plan") && objc == 3) {
            const std::string id = text(objv[2]);
            if (sub == "plan") {
                Tcl_SetObjResult(interp, plan_dict(fleet.plan(id)));
                return TCL_OK;
            }
            const auto r = sub == "resume" ? fleet.resume(id) : fleet.abort(id);
            if (sub == "abort") {  // an abort that ended the plan did what was asked
                Tcl_SetObjResult(interp, plan_dict(r));
                return TCL_OK;
            }
            return finish(interp, r);
        }
        if (sub == "history" && objc == 2) {
            Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
            for (const auto& r : fleet.history())
                Tcl_ListObjAppendElement(nullptr, list, plan_dict(r));
            Tcl_SetObjResult(interp, list);
            return TCL_OK;
        }
        if (sub == "members" || sub == "history") return usage(interp, sub.c_str());
        if (sub == "resume" || sub == "abort" || sub == "plan")
            return usage(interp, (sub + " ID").c_str());
        return fail(interp,
                    "unknown fleet subcommand '" + sub +
                        "': members, replace, syn_replace, resume, abort, plan or history",
                    "USAGE");
    } catch (const Error& e) {
        return fail(interp, e.what(), "ERROR");
    }
}

int rolling_replace(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    try {
        return rolling(*static_cast<Fleet*>(data), interp, objc, objv, 1);
    } catch (const Error& e) {
        return fail(interp, e.what(), "ERROR");
    }
}

}  // namespace

int FleetCommands::install(Tcl_Interp* interp, Fleet& fleet, bool thesis_spellings) {
    Tcl_CreateObjCommand(interp, "::nonstop::fleet", fleet_command, &fleet, nullptr);
    if (thesis_spellings)
        Tcl_CreateObjCommand(interp, "::Rolling_Replace", rolling_replace, &fleet, nullptr);
    Tcl_Command ensemble = Tcl_FindEnsemble(interp, Tcl_NewStringObj("::nonstop", -1), 0);
    if (!ensemble) {
        Tcl_SetObjResult(interp, str("the ::nonstop ensemble must be installed first"));
        return TCL_ERROR;
    }
    Tcl_Obj* map = nullptr;
    if (Tcl_GetEnsembleMappingDict(interp, ensemble, &map) != TCL_OK) return TCL_ERROR;
    map = map ? Tcl_DuplicateObj(map) : Tcl_NewDictObj();
    put(map, "fleet", Tcl_NewStringObj("::nonstop::fleet", -1));
    return Tcl_SetEnsembleMappingDict(interp, ensemble, map);
}

}  // namespace nonstop

#include "memory_budget.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <string>
#include <vector>

namespace nonstop {

namespace {

/// What a command would build: the new value's size and, for a store, the size of the
/// variable's value it replaces (so that the session's total is not counted twice).
struct Estimate {
    double bytes = 0;
    double replaced = 0;
    bool store = false;
};

using Estimator = Estimate (*)(Tcl_Interp*, int, Tcl_Obj* const[], std::size_t max_value);

struct Session {
    std::size_t max_value = 0;
    std::size_t budget = 0;
    double unchecked = 0;  // stored since the variables were last counted
    bool counting = false;
    int wrapped = 0;  // commands still wrapped: the last one deleted deletes the session
};

struct Wrapped {
    Session* session;
    Tcl_ObjCmdProc* proc;
    ClientData data;
    Tcl_CmdDeleteProc* delete_proc;
    ClientData delete_data;
    Estimator estimate;
};

// Owned by the command, not by the interpreter: unset traces may still run commands while the
// interpreter is being deleted.
void delete_wrapped(ClientData data) {
    auto* w = static_cast<Wrapped*>(data);
    if (w->delete_proc) w->delete_proc(w->delete_data);
    if (--w->session->wrapped == 0) delete w->session;
    delete w;
}

/// The size of a value without making its string representation (which would allocate). A
/// long list or dictionary is estimated from 64 of its elements, evenly spaced, so that a loop
/// of lappend does not cost the square of the list's length.
double size_of(Tcl_Obj* o, int depth = 0) {
    constexpr int sampled = 64;
    if (!o) return 0;
    if (o->bytes) return o->length;
    static const Tcl_ObjType* list = Tcl_GetObjType("list");
    static const Tcl_ObjType* dict = Tcl_GetObjType("dict");
    if (depth < 8 && o->typePtr == list) {
        int n = 0;
        Tcl_Obj** items = nullptr;
        Tcl_ListObjGetElements(nullptr, o, &n, &items);
        const int step = std::max(1, n / sampled);
        double seen = 0;
        int count = 0;
        for (int i = 0; i < n; i += step, ++count) seen += size_of(items[i], depth + 1);
        // A list holds a pointer per element besides the elements.
        return 8.0 * n + (count ? seen * n / count : 0);
    }
    if (depth < 8 && o->typePtr == dict) {
        int n = 0;
        Tcl_DictObjSize(nullptr, o, &n);
        Tcl_DictSearch search;
        Tcl_Obj *key = nullptr, *value = nullptr;
        int done = 0, count = 0;
        double seen = 0;
        if (Tcl_DictObjFirst(nullptr, o, &search, &key, &value, &done) != TCL_OK) return 64;
        for (; !done && count < sampled; Tcl_DictObjNext(&search, &key, &value, &done), ++count)
            seen += size_of(key, depth + 1) + size_of(value, depth + 1) + 2;
        Tcl_DictObjDone(&search);
        return 32.0 * n + (count ? seen * n / count : 0);
    }
    return 64;  // a number or another compact internal form
}

double sum(int from, int objc, Tcl_Obj* const objv[]) {
    double total = 0;
    for (int i = from; i < objc; ++i) total += size_of(objv[i]) + 1;
    return total;
}

double variable(Tcl_Interp* interp, Tcl_Obj* name) {
    return size_of(Tcl_ObjGetVar2(interp, name, nullptr, 0));
}

long long integer(Tcl_Obj* o) {
    Tcl_WideInt n = 0;
    return Tcl_GetWideIntFromObj(nullptr, o, &n) == TCL_OK ? static_cast<long long>(n) : 0;
}

/// Every decimal number in a format string: widths, precisions and counts.
double numbers_in(Tcl_Obj* o) {
    int length = 0;
    const char* s = Tcl_GetStringFromObj(o, &length);
    double total = 0, current = 0;
    for (int i = 0; i <= length; ++i) {
        if (i < length && std::isdigit(static_cast<unsigned char>(s[i]))) {
            current = current * 10 + (s[i] - '0');
        } else {
            total += current;
            current = 0;
        }
    }
    return total;
}

// --- estimators: an upper bound of what the command would build ------------------------------

Estimate all_arguments(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    return {sum(1, objc, objv), 0, false};
}

Estimate set(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc != 3) return {};
    return {size_of(objv[2]), variable(interp, objv[1]), true};
}

/// append, lappend, lset, dict set/append/lappend, array set: the variable grows by the arguments.
Estimate grows_variable(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    const double old = variable(interp, objv[1]);
    return {old + sum(2, objc, objv), old, true};
}

Estimate repeat(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc != 3) return {};
    return {size_of(objv[1]) * static_cast<double>(std::max(0LL, integer(objv[2]))), 0, false};
}

Estimate lrepeat(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    const double each = sum(2, objc, objv) + 8.0 * (objc - 2);  // elements and pointers
    return {each * static_cast<double>(std::max(0LL, integer(objv[1]))), 0, false};
}

Estimate join(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    int n = 0;
    if (Tcl_ListObjLength(nullptr, objv[1], &n) != TCL_OK) return {};
    return {size_of(objv[1]) + (objc > 2 ? size_of(objv[2]) * n : n), 0, false};
}

Estimate format(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    double total = size_of(objv[1]) + numbers_in(objv[1]) + sum(2, objc, objv);
    if (std::strchr(Tcl_GetString(objv[1]), '*'))  // widths taken from the arguments
        for (int i = 2; i < objc; ++i)
            total += static_cast<double>(std::max(0LL, integer(objv[i])));
    return {total, 0, false};
}

Estimate binary_format(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    return {8 * (numbers_in(objv[1]) + sum(2, objc, objv) + 1), 0, false};
}

/// string map ?-nocase? mapping string: every character may become the longest replacement.
Estimate string_map(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 3) return {};
    int n = 0;
    Tcl_Obj** items = nullptr;
    if (Tcl_ListObjGetElements(nullptr, objv[objc - 2], &n, &items) != TCL_OK) return {};
    double longest = 1;
    for (int i = 1; i < n; i += 2) longest = std::max(longest, size_of(items[i]));
    return {size_of(objv[objc - 1]) * longest + longest, 0, false};
}

/// regsub ?switches? exp string subSpec ?varName?: each position may be replaced by subSpec,
/// in which & and \0..\9 stand for a match (at most the whole string).
Estimate regsub(Tcl_Interp*, int objc, Tcl_Obj* const objv[], std::size_t) {
    int i = 1;
    while (i < objc && Tcl_GetString(objv[i])[0] == '-') {
        if (std::strcmp(Tcl_GetString(objv[i++]), "--") == 0) break;
        if (i < objc && std::strcmp(Tcl_GetString(objv[i - 1]), "-start") == 0) ++i;
    }
    if (objc - i < 3) return {};
    const double input = size_of(objv[i + 1]);
    const char* spec = Tcl_GetString(objv[i + 2]);
    double references = 0;
    for (const char* p = spec; *p; ++p) references += (*p == '&' || *p == '\\');
    return {(input + 1) * (size_of(objv[i + 2]) + references * input) + input, 0, false};
}

/// subst: the text plus every variable it names ($name or ${name}) at its present size.
Estimate subst(Tcl_Interp* interp, int objc, Tcl_Obj* const objv[], std::size_t) {
    if (objc < 2) return {};
    int length = 0;
    const char* s = Tcl_GetStringFromObj(objv[objc - 1], &length);
    double total = length;
    for (int i = 0; i < length; ++i) {
        if (s[i] != '$') continue;
        std::string name;
        if (i + 1 < length && s[i + 1] == '{') {
            const char* end = static_cast<const char*>(std::memchr(s + i + 2, '}', length - i - 2));
            if (!end) continue;
            name.assign(s + i + 2, end);
        } else {
            for (int j = i + 1; j < length && (std::isalnum(static_cast<unsigned char>(s[j])) ||
                                               s[j] == '_' || s[j] == ':');
                 ++j)
                name += s[j];
        }
        if (!name.empty()) total += size_of(Tcl_GetVar2Ex(interp, name.c_str(), nullptr, 0));
    }
    return {total, 0, false};
}

// --- the session's variables ----------------------------------------------------------------

Tcl_Obj* call(Tcl_Interp* interp, std::initializer_list<const char*> words, Tcl_Obj* last,
              int flags = TCL_EVAL_GLOBAL) {
    std::vector<Tcl_Obj*> objv;
    for (const char* w : words) objv.push_back(Tcl_NewStringObj(w, -1));
    if (last) objv.push_back(last);
    for (Tcl_Obj* o : objv) Tcl_IncrRefCount(o);
    Tcl_Obj* result = nullptr;
    if (Tcl_EvalObjv(interp, static_cast<int>(objv.size()), objv.data(), flags) == TCL_OK) {
        result = Tcl_GetObjResult(interp);
        Tcl_IncrRefCount(result);
    }
    for (Tcl_Obj* o : objv) Tcl_DecrRefCount(o);
    return result;
}

/// The elements of a list that `call` returned (and released by the caller).
std::vector<Tcl_Obj*> items_of(Tcl_Obj* list) {
    int n = 0;
    Tcl_Obj** items = nullptr;
    if (!list || Tcl_ListObjGetElements(nullptr, list, &n, &items) != TCL_OK) return {};
    return {items, items + n};
}

/// What the local variables of every running procedure hold (a recursion that keeps a large
/// value at each level counts each one).
double locals_total(Tcl_Interp* interp) {
    double total = 0;
    Tcl_Obj* level = call(interp, {"::info", "level"}, nullptr, 0);
    long levels = 0;
    if (level) {
        Tcl_GetLongFromObj(nullptr, level, &levels);
        Tcl_DecrRefCount(level);
    }
    for (long k = 1; k <= levels; ++k) {
        const std::string at = "#" + std::to_string(k);
        // The size of what `words... name` returns when run in that frame.
        auto in_frame = [&](std::initializer_list<const char*> words, Tcl_Obj* name) {
            Tcl_Obj* script = Tcl_NewListObj(0, nullptr);
            Tcl_IncrRefCount(script);
            for (const char* w : words)
                Tcl_ListObjAppendElement(nullptr, script, Tcl_NewStringObj(w, -1));
            if (name) Tcl_ListObjAppendElement(nullptr, script, name);
            Tcl_Obj* result = call(interp, {"::uplevel", at.c_str()}, script, 0);
            Tcl_DecrRefCount(script);
            return result;
        };
        Tcl_Obj* names = in_frame({"::info", "locals"}, nullptr);
        for (Tcl_Obj* name : items_of(names)) {
            // An array's elements, or else the scalar's value.
            Tcl_Obj* value = in_frame({"::array", "get"}, name);
            double size = size_of(value);
            if (value) Tcl_DecrRefCount(value);
            if (size == 0) {
                value = in_frame({"::set"}, name);
                size = size_of(value);
                if (value) Tcl_DecrRefCount(value);
            }
            total += size;
        }
        if (names) Tcl_DecrRefCount(names);
    }
    return total;
}

/// What the global, namespace and local variables hold together.
double variables_total(Tcl_Interp* interp) {
    double total = locals_total(interp);
    std::vector<std::string> namespaces{"::"};
    for (std::size_t k = 0; k < namespaces.size() && k < 4096; ++k) {
        const std::string ns = namespaces[k];
        const std::string pattern = (ns == "::" ? std::string() : ns) + "::*";
        if (Tcl_Obj* vars =
                call(interp, {"::info", "vars"}, Tcl_NewStringObj(pattern.c_str(), -1))) {
            int n = 0;
            Tcl_Obj** names = nullptr;
            Tcl_ListObjGetElements(nullptr, vars, &n, &names);
            for (int i = 0; i < n; ++i) {
                Tcl_Obj* elements = call(interp, {"::array", "names"}, names[i]);
                int m = 0;
                Tcl_Obj** keys = nullptr;
                if (elements) Tcl_ListObjGetElements(nullptr, elements, &m, &keys);
                if (m == 0) total += variable(interp, names[i]);
                for (int j = 0; j < m; ++j)
                    total +=
                        size_of(Tcl_ObjGetVar2(interp, names[i], keys[j], 0)) + size_of(keys[j]);
                if (elements) Tcl_DecrRefCount(elements);
            }
            Tcl_DecrRefCount(vars);
        }
        if (Tcl_Obj* children =
                call(interp, {"::namespace", "children"}, Tcl_NewStringObj(ns.c_str(), -1))) {
            int n = 0;
            Tcl_Obj** items = nullptr;
            Tcl_ListObjGetElements(nullptr, children, &n, &items);
            for (int i = 0; i < n; ++i) namespaces.emplace_back(Tcl_GetString(items[i]));
            Tcl_DecrRefCount(children);
        }
    }
    return total;
}

int refuse(Tcl_Interp* interp, const std::string& message, double bytes, std::size_t limit) {
    Tcl_SetObjResult(interp, Tcl_NewStringObj(message.c_str(), -1));
    const std::string b = std::to_string(static_cast<long long>(std::min(bytes, 9e18)));
    const std::string l = std::to_string(limit);
    Tcl_SetErrorCode(interp, "NONSTOP", "MEMORY", b.c_str(), l.c_str(), nullptr);
    return TCL_ERROR;
}

std::string mib(double bytes) {
    return std::to_string(static_cast<long long>(std::min(bytes, 9e18) / (1 << 20))) + " MiB";
}

int checked(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    auto* w = static_cast<Wrapped*>(data);
    Session& s = *w->session;
    // Checked even while the variables are being counted: a read trace runs scripts then.
    const Estimate e = w->estimate(interp, objc, objv, s.max_value);
    if (e.bytes > static_cast<double>(s.max_value))
        return refuse(interp,
                      "'" + std::string(Tcl_GetString(objv[0])) +
                          "' would build a value of about " + mib(e.bytes) +
                          ", more than this session's limit of " + mib(s.max_value),
                      e.bytes, s.max_value);
    const double added = e.bytes - e.replaced;
    if (e.store && added > 0 && !s.counting) {
        s.unchecked += added;
        if (s.unchecked > static_cast<double>(s.budget) / 16) {
            // Counted now and then, not at every store: the sum walks every variable.
            s.counting = true;
            Tcl_InterpState state = Tcl_SaveInterpState(interp, TCL_OK);
            const double total = variables_total(interp);
            Tcl_RestoreInterpState(interp, state);
            s.counting = false;
            s.unchecked = 0;
            if (total + added > static_cast<double>(s.budget))
                return refuse(interp,
                              "'" + std::string(Tcl_GetString(objv[0])) +
                                  "' would take this session's variables to about " +
                                  mib(total + added) + ", more than its budget of " + mib(s.budget),
                              total + added, s.budget);
        }
    }
    return w->proc(w->data, interp, objc, objv);
}

int trace_nothing(ClientData, Tcl_Interp*, int, const char*, Tcl_Command, int, Tcl_Obj* const[]) {
    return TCL_OK;
}

}  // namespace

void MemoryBudget::install(Tcl_Interp* interp, std::size_t max_value, std::size_t budget) {
    auto* session = new Session{max_value, budget, 0, false, 0};
    // An object trace without TCL_ALLOW_INLINE_COMPILATION makes Tcl call every command through
    // its command procedure, so that compiled bytecode (append, lappend, string cat, list...)
    // goes through the wrappers below.
    Tcl_CreateObjTrace(interp, 0, 0, &trace_nothing, nullptr, nullptr);
    static const struct {
        const char* name;
        Estimator estimate;
    } commands[] = {
        {"::set", &set},
        {"::append", &grows_variable},
        {"::lappend", &grows_variable},
        {"::lset", &grows_variable},
        {"::tcl::dict::set", &grows_variable},
        {"::tcl::dict::append", &grows_variable},
        {"::tcl::dict::lappend", &grows_variable},
        {"::tcl::array::set", &grows_variable},
        {"::tcl::string::repeat", &repeat},
        {"::tcl::string::cat", &all_arguments},
        {"::tcl::string::map", &string_map},
        {"::tcl::dict::create", &all_arguments},
        {"::tcl::dict::replace", &all_arguments},
        {"::tcl::dict::merge", &all_arguments},
        {"::tcl::binary::format", &binary_format},
        {"::list", &all_arguments},
        {"::concat", &all_arguments},
        {"::linsert", &all_arguments},
        {"::lreplace", &all_arguments},
        {"::lrepeat", &lrepeat},
        {"::join", &join},
        {"::format", &format},
        {"::regsub", &regsub},
        {"::subst", &subst},
    };
    for (const auto& c : commands) {
        Tcl_CmdInfo info;
        if (!Tcl_GetCommandInfo(interp, c.name, &info) || !info.objProc) continue;
        auto* w = new Wrapped{session,         info.objProc,    info.objClientData,
                              info.deleteProc, info.deleteData, c.estimate};
        info.objProc = &checked;
        info.objClientData = w;
        info.deleteProc = &delete_wrapped;
        info.deleteData = w;
        ++session->wrapped;
        Tcl_SetCommandInfo(interp, c.name, &info);
    }
    if (session->wrapped == 0) delete session;
    // A child interpreter would have none of these wrappers.
    Tcl_HideCommand(interp, "interp", "interp");
}

}  // namespace nonstop

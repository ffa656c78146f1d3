#include "repl.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <iostream>

#include "nonstop/console_client.hpp"
#include "nonstop/error.hpp"
#include "nonstop/tcl_commands.hpp"
#include "nonstop/value_formatter.hpp"

namespace nonstop {

namespace {

// The prompt itself is Tcl, so that tclreadline (a Tcl extension) can drive it and complete
// from Tcl procs. Set up from C++: the commands render, usages and (connected) remote; the
// variables remote, prompt, history_file and history_length.
const char* const repl_script = R"tcl(
namespace eval ::nonstop_shell {
    variable at_eof 0
    variable status 0
    variable cache [dict create]
    variable synopsis [dict create]
    variable thesis [dict create]
    foreach usage [usages] {
        lassign $usage name spelling arguments
        dict set synopsis $name $arguments
        if {$spelling ne ""} { dict set thesis $spelling $name }
    }
}

# One command as typed: evaluated here at global level, or on the host.
proc ::nonstop_shell::evaluate {line} {
    variable remote
    if {$remote} { return [remote $line] }
    uplevel #0 $line
}

# What completion needs from the runtime, here or on the host; kept for a second so that a
# burst of TABs asks once.
proc ::nonstop_shell::ask {script} {
    variable cache
    set now [clock milliseconds]
    if {[dict exists $cache $script] && $now - [lindex [dict get $cache $script] 0] < 1000} {
        return [lindex [dict get $cache $script] 1]
    }
    if {[catch {evaluate $script} value]} { set value {} }
    dict set cache $script [list $now $value]
    return $value
}

# readline's answer: nothing, the one match, or the common prefix followed by the matches.
proc ::nonstop_shell::choose {text candidates} {
    set matches {}
    foreach c [lsort -unique $candidates] {
        if {[string equal -length [string length $text] $text $c]} { lappend matches $c }
    }
    if {[llength $matches] <= 1} { return $matches }
    set prefix [lindex $matches 0]
    foreach m $matches {
        while {![string equal -length [string length $prefix] $prefix $m]} {
            set prefix [string range $prefix 0 end-1]
        }
    }
    return [list $prefix {*}$matches]
}

proc ::nonstop_shell::libraries {text} {
    variable remote
    if {[string first / $text] >= 0} { return {} }
    if {$remote} {
        set found {}
        foreach l [ask {nonstop libraries}] {
            catch {lappend found [file tail [dict get $l path]]}
        }
        return $found
    }
    set found {}
    foreach dir [ask {nonstop module_path}] {
        lappend found {*}[glob -nocomplain -tails -directory $dir *.so]
    }
    return $found
}

# tclreadline's custom completer: commands first, then each nonstop subcommand's options and
# arguments as its synopsis names them (NAME: a module, LIBRARY: a library file).
proc ::nonstop_shell::complete {text start end line} {
    variable synopsis
    variable thesis
    set before [string range $line 0 [expr {$start - 1}]]
    set cut -1
    foreach c [list ";" "\[" "\n"] { set cut [expr {max($cut, [string last $c $before])}] }
    set words [regexp -all -inline {\S+} [string range $before [expr {$cut + 1}] end]]
    if {![llength $words]} {
        return [choose $text [list nonstop help {*}[dict keys $thesis] {*}[ask {info commands}]]]
    }
    set command [regsub {^::} [lindex $words 0] {}]
    if {$command eq "nonstop"} {
        if {[llength $words] == 1} { return [choose $text [dict keys $synopsis]] }
        set sub [lindex $words 1]
        set typed [lrange $words 2 end]
    } elseif {[dict exists $thesis $command]} {
        set sub [dict get $thesis $command]
        set typed [lrange $words 1 end]
    } elseif {$command eq "help"} {
        set sub help
        set typed [lrange $words 1 end]
    } else {
        return ""
    }
    if {![dict exists $synopsis $sub]} { return "" }
    set arguments [dict get $synopsis $sub]
    if {[string index $text 0] eq "-"} {
        return [choose $text [regexp -all -inline -- {-[a-z][-a-z]*} $arguments]]
    }
    set placeholders [regexp -all -inline {[A-Z]+} $arguments]
    set n [llength [lsearch -all -inline -not -glob $typed -*]]
    if {$n >= [llength $placeholders]} {
        # ?NAME LIBRARY ...? repeats
        if {![regexp {\?([^?]*)\.\.\.\?$} $arguments -> group]} { return "" }
        set period [llength [regexp -all -inline {[A-Z]+} $group]]
        if {$period == 0} { return "" }
        set n [expr {[llength $placeholders] - $period + ($n - [llength $placeholders]) % $period}]
    }
    switch -- [lindex $placeholders $n] {
        NAME { return [choose $text [ask {nonstop modules}]] }
        LIBRARY { return [choose $text [libraries $text]] }
        SUBCOMMAND { return [choose $text [list {*}[dict keys $synopsis] {*}[dict keys $thesis]]] }
    }
    return ""
}

proc ::nonstop_shell::read_line {prompt} {
    variable readline
    variable at_eof
    if {$readline} {
        if {[catch {::tclreadline::readline read $prompt} line]} {
            puts stderr "error: $line"
            return ""
        }
        return [expr {$at_eof ? "" : $line}]
    }
    puts -nonewline $prompt
    flush stdout
    if {[gets stdin line] < 0} { set at_eof 1 }
    return $line
}

proc ::nonstop_shell::read_command {} {
    variable prompt
    variable at_eof
    set line [read_line $prompt]
    while {!$at_eof && ![info complete $line]} { append line \n [read_line "> "] }
    return $line
}

proc ::nonstop_shell::remember {line} {
    variable readline
    variable history_file
    if {!$readline} return
    ::tclreadline::readline add $line
    if {$history_file ne ""} { catch {::tclreadline::readline write $history_file} }
}

# Results as a person reads them: `nonstop modules` alone as a table of the modules' info,
# reports and records through render; the value itself is what scripts get, unchanged.
proc ::nonstop_shell::show {line result} {
    if {$result eq ""} return
    if {[regexp {^\s*(::)?nonstop\s+modules\s*$} $line]} {
        set infos [list apply {{names} {lmap m $names {nonstop info $m}}} $result]
        if {![catch {evaluate $infos} value]} { set result $value }
    }
    puts [render $result]
}

proc ::nonstop_shell::show_error {message options} {
    set code [dict get $options -errorcode]
    if {[lindex $code 0] eq "NONSTOP"} {
        puts stderr "error: $message ($code)"
    } else {
        puts stderr "error: $message"
    }
    if {[dict exists $options -report]} { puts stderr [render [dict get $options -report]] }
}

# tclreadline's package index exits the process when its library fails to load: a failure
# here must only cost the line editing.
proc ::nonstop_shell::load_readline {} {
    if {[info exists ::env(NONSTOP_SHELL_READLINE)] && !$::env(NONSTOP_SHELL_READLINE)} {
        return 0
    }
    rename ::exit ::nonstop_shell::real_exit
    proc ::exit {args} { error "tclreadline did not load" }
    set failed [catch {package require tclreadline}]
    rename ::exit {}
    rename ::nonstop_shell::real_exit ::exit
    if {$failed || ![llength [info commands ::tclreadline::readline]]} {
        puts stderr "nonstop-shell: no line editing, history or completion (tcl-tclreadline did not load)"
        return 0
    }
    no_history_expansion
    return 1
}

proc ::nonstop_shell::main {} {
    variable readline [load_readline]
    variable history_file
    variable history_length
    variable remote
    variable at_eof
    variable status
    if {$readline} {
        if {$history_file ne ""} {
            catch {close [open $history_file {WRONLY CREAT} 0600]}
            catch {::tclreadline::readline initialize $history_file}
        }
        set ::tclreadline::historyLength $history_length
        ::tclreadline::readline customcompleter ::nonstop_shell::complete
        ::tclreadline::readline builtincompleter [expr {!$remote}]
        ::tclreadline::readline eofchar {set ::nonstop_shell::at_eof 1}
    }
    while {!$at_eof} {
        set line [read_command]
        if {[string trim $line] eq ""} continue
        remember $line
        set trimmed [string trim $line]
        if {$trimmed eq "help"} { set line "nonstop help" }
        if {$remote && $trimmed in {exit quit}} break
        set code [catch {evaluate $line} result options]
        if {$code == 1} {
            if {[dict get $options -errorcode] eq {NONSTOP_SHELL CLOSED}} {
                puts stderr "nonstop-shell: $result"
                return 1
            }
            show_error $result $options
        } elseif {$code == 0} {
            show $line $result
        }
    }
    if {$at_eof} { puts "" }
    return $status
}
)tcl";

// readline's history expansion reads "!" as csh does: `expr {!$done}` would become the last
// word of the previous line. tclreadline has no switch for it; readline documents that a
// null expansion character turns it off. The library is already loaded by tclreadline.
int no_history_expansion(ClientData, Tcl_Interp*, int, Tcl_Obj* const[]) {
    if (void* readline = ::dlopen("libreadline.so.8", RTLD_LAZY | RTLD_NOLOAD)) {
        if (void* c = ::dlsym(readline, "history_expansion_char")) *static_cast<char*>(c) = '\0';
        ::dlclose(readline);
    }
    return TCL_OK;
}

int render(ClientData, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) {
        Tcl_WrongNumArgs(interp, 1, objv, "VALUE");
        return TCL_ERROR;
    }
    const std::string text = ValueFormatter::render(objv[1]);
    Tcl_SetObjResult(interp, Tcl_NewStringObj(text.data(), static_cast<int>(text.size())));
    return TCL_OK;
}

int usages(ClientData, Tcl_Interp* interp, int, Tcl_Obj* const[]) {
    Tcl_Obj* list = Tcl_NewListObj(0, nullptr);
    for (const auto& u : TclCommands::usages()) {
        Tcl_Obj* row[3] = {Tcl_NewStringObj(u.name, -1),
                           Tcl_NewStringObj(u.thesis ? u.thesis : "", -1),
                           Tcl_NewStringObj(u.args, -1)};
        Tcl_ListObjAppendElement(nullptr, list, Tcl_NewListObj(3, row));
    }
    Tcl_SetObjResult(interp, list);
    return TCL_OK;
}

int remote(ClientData data, Tcl_Interp* interp, int objc, Tcl_Obj* const objv[]) {
    if (objc != 2) {
        Tcl_WrongNumArgs(interp, 1, objv, "COMMAND");
        return TCL_ERROR;
    }
    ConsoleClient::Reply r;
    try {
        r = static_cast<ConsoleClient*>(data)->execute(Tcl_GetString(objv[1]));
    } catch (const Error& e) {
        Tcl_SetObjResult(interp, Tcl_NewStringObj(e.what(), -1));
        Tcl_SetErrorCode(interp, "NONSTOP_SHELL", "CLOSED", nullptr);
        return TCL_ERROR;
    }
    Tcl_SetObjResult(interp, Tcl_NewStringObj(r.body.data(), static_cast<int>(r.body.size())));
    if (r.ok) return TCL_OK;
    Tcl_SetObjErrorCode(interp,
                        Tcl_NewStringObj(r.errorcode.data(), static_cast<int>(r.errorcode.size())));
    return TCL_ERROR;
}

}  // namespace

std::string Repl::history_file() {
    if (const char* file = std::getenv("NONSTOP_SHELL_HISTORY")) return file;
    if (const char* home = std::getenv("HOME"); home && *home)
        return std::string(home) + "/.nonstop_history";
    return {};
}

void Repl::run(Tcl_Interp* interp, ConsoleClient* client, const std::string& prompt) {
    Tcl_CreateObjCommand(interp, "::nonstop_shell::render", render, nullptr, nullptr);
    Tcl_CreateObjCommand(interp, "::nonstop_shell::usages", usages, nullptr, nullptr);
    Tcl_CreateObjCommand(interp, "::nonstop_shell::no_history_expansion", no_history_expansion,
                         nullptr, nullptr);
    if (client) Tcl_CreateObjCommand(interp, "::nonstop_shell::remote", remote, client, nullptr);
    const std::string history = history_file();
    Tcl_Eval(interp, "namespace eval ::nonstop_shell {}");
    Tcl_SetVar(interp, "::nonstop_shell::remote", client ? "1" : "0", TCL_GLOBAL_ONLY);
    Tcl_SetVar(interp, "::nonstop_shell::prompt", prompt.c_str(), TCL_GLOBAL_ONLY);
    Tcl_SetVar(interp, "::nonstop_shell::history_file", history.c_str(), TCL_GLOBAL_ONLY);
    Tcl_SetVar2Ex(interp, "::nonstop_shell::history_length", nullptr, Tcl_NewIntObj(history_length),
                  TCL_GLOBAL_ONLY);
    int status = 1;
    if (Tcl_EvalEx(interp, repl_script, -1, TCL_EVAL_GLOBAL) != TCL_OK ||
        Tcl_EvalEx(interp, "::nonstop_shell::main", -1, TCL_EVAL_GLOBAL) != TCL_OK ||
        Tcl_GetIntFromObj(interp, Tcl_GetObjResult(interp), &status) != TCL_OK)
        std::cerr << "nonstop-shell: " << Tcl_GetStringResult(interp) << "\n";
    std::cout << std::flush;
    Tcl_Exit(status);
}

}  // namespace nonstop

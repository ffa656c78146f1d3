# Shared by the *.test files.
package require tcltest 2.2
package require nonstop
namespace import ::tcltest::*

set ::moddir $::env(NONSTOP_TEST_MODULE_DIR)
set ::shell $::env(NONSTOP_SHELL)
set ::scripts $::env(NONSTOP_SCRIPTS_DIR)
nonstop module_path [list $::moddir]

testConstraint thesis [llength [info commands ::Load]]

# Waits until `condition` (evaluated in the caller) holds; a deadline only against hanging.
proc wait_for {condition {seconds 30}} {
    set deadline [expr {[clock milliseconds] + $seconds * 1000}]
    while {![uplevel 1 [list expr $condition]]} {
        if {[clock milliseconds] > $deadline} { return 0 }
        after 5
    }
    return 1
}

# The errorcode of a failing script, or "ok".
proc errorcode {script} {
    if {[catch {uplevel 1 $script} message options]} { return [dict get $options -errorcode] }
    return ok
}

proc cleanup_modules {args} {
    foreach name $args {
        if {$name in [nonstop modules]} { nonstop unload $name }
    }
}

# Shared by the *.test files.
package require tcltest 2.2
package require nonstop
namespace import ::tcltest::*

set ::moddir $::env(NONSTOP_TEST_MODULE_DIR)
set ::shell $::env(NONSTOP_SHELL)
set ::scripts $::env(NONSTOP_SCRIPTS_DIR)
nonstop module_path [list $::moddir]

# The test modules' message types, from the header the modules are built with: ::RECORD, ...
# for kRecord, ... (kBlockOnGate becomes ::BLOCK_ON_GATE).
apply {{} {
    set header [file join [file dirname [info script]] .. modules test_messages.hpp]
    set f [open $header]
    set text [read $f]
    close $f
    foreach {- name value} [regexp -all -inline -line \
            {^inline constexpr std::uint32_t k(\w+) = (\d+);} $text] {
        regsub -all {([a-z])([A-Z])} $name {\1_\2} name
        set ::[string toupper $name] $value
    }
}}

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

# Runs every *.test file here in this interpreter (a tclsh with TCLLIBPATH pointing at the
# nonstop package, or nonstop-shell itself) and exits non-zero when any test failed, a test
# file raised an error, or nothing ran: tcltest's runAllTests reports such things but never
# sets the exit status.
package require tcltest 2.2
namespace import ::tcltest::*

set ::failures 0
set ::total 0
proc ::tcltest::cleanupTestsHook {} {
    variable numTests
    incr ::failures $numTests(Failed)
    incr ::total $numTests(Total)
}
set here [file dirname [file normalize [info script]]]
configure -testdir $here -singleproc 1 {*}$argv
foreach file [lsort [glob -directory $here *.test]] {
    puts [file tail $file]
    if {[catch {uplevel #0 [list source $file]} message]} {
        puts "Test file error in [file tail $file]: $message"
        incr ::failures
    }
}
puts "all.tcl: $::total tests, $::failures failures or errors"
exit [expr {$::failures > 0 || $::total == 0 ? 1 : 0}]

# A fleet member for the tests: hosts the test module "counter" (version argv[2], default 1)
# and sends it one
# message per millisecond until the file argv[1] exists; then it waits until the module has
# served every message sent (handled, or failed: a handler that threw) and prints
# "sent N handled M" (M < N: messages lost).
lassign $argv modules stop version
if {$version eq ""} { set version 1 }
nonstop load counter [file join $modules libcounter_v$version.so]
set sent 0
proc traffic {} {
    if {[file exists $::stop]} { drain 0; return }
    nonstop send counter 1 m$::sent
    incr ::sent
    after 1 traffic
}
proc drain {waited} {
    set info [nonstop info counter]
    set handled [expr {[dict get $info handled] + [dict get $info failed]}]
    if {$handled < $::sent && $waited < 20000} { after 10 [list drain [expr {$waited + 10}]]; return }
    puts "sent $::sent handled $handled"
    flush stdout
}
puts "member ready"
flush stdout
traffic
vwait forever

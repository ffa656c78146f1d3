# The same kind of batch through the ::nonstop ensemble, which also works in a plain tclsh
# after `package require nonstop`. Run with
#   nonstop-shell --module-path <build>/tests/modules scripts/example-ensemble.tcl
package require nonstop

nonstop set_timer 2.5
nonstop load meter libcounter_v1.so
foreach n {1 2 3} { nonstop send meter 1 "reading $n" }

# Reports are dicts: show what each target went through.
set report [nonstop replace meter libcounter_v2.so]
foreach target [dict get $report targets] {
    puts [format "%s: %s -> %s, state %d bytes, quiescent after %.3f ms" \
        [dict get $target name] [dict get $target old_version] [dict get $target new_version] \
        [dict get $target checkpoint_bytes] [dict get $target quiescence_ms]]
}

nonstop syn_upgrade -sequential meter libcounter_v3.so gauge libcounter_v3.so
puts "modules: [nonstop modules]"
set meter [nonstop info meter]
dict with meter { puts "meter is version $version, $status" }

# An operator's mistake is a Tcl error with an errorcode to trap on.
if {[catch {nonstop info nosuch} message options]} {
    puts "[dict get $options -errorcode]: $message"
}

foreach entry [nonstop history 3] {
    puts "[dict get $entry id] [dict get $entry command]: [dict get $entry outcome]"
}
nonstop unload gauge
nonstop unload meter
puts "example-ensemble: done"

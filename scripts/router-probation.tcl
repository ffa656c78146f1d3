# Step 7 of the non-stop router demo (issue 12), run by scripts/demo after
# scripts/router-transactions.tcl in the same console batch (it uses that file's `transaction`
# and `traffic`): a faulty IP version 4 goes in under probation; the health rules see its
# handler failures and roll it back to version 3 by themselves, with the same two-phase commit,
# and the relay numbers stay consecutive (version 4 fails before relaying anything).
#
# A host may set, before this file runs: probation_s (the probation period, seconds) and
# rollback_limit_ms (how long to wait for the automatic rollback).
if {![info exists probation_s]} { set probation_s 60 }
if {![info exists rollback_limit_ms]} { set rollback_limit_ms 45000 }

# The report of the automatic rollback of the latest provisional replacement of NAME: waits,
# within rollback_limit_ms, for a transaction the health monitor issued that undoes it.
proc health_rollback {name} {
    set replaced {}
    foreach r [nonstop history] {
        if {[dict get $r command] eq "replace $name libIPImp4.so"} { set replaced [dict get $r id] }
    }
    if {$replaced eq ""} { error "no replacement of $name by libIPImp4.so in the history" }
    set deadline [expr {[clock milliseconds] + $::rollback_limit_ms}]
    while {[clock milliseconds] < $deadline} {
        foreach r [nonstop history] {
            if {[dict exists $r undoes] && [dict get $r undoes] == $replaced} { return $r }
        }
        after 100
    }
    error "transaction $replaced was not rolled back within $::rollback_limit_ms ms"
}

# Transaction 7: version 4 is provisional for probation_s seconds; it fails on broadcasts, so a
# health rule trips long before the period ends and version 3 serves again.
nonstop probation $probation_s
transaction 7 committed -serving {IP=4} Replace IP libIPImp4.so
transaction 7 committed -serving {IP=3 OSPF=3 TIMER=1 VRRP=1} health_rollback IP
set rollback [dict get [lindex $steps end] report]
nonstop probation 0
traffic 7
set probation_result "probation: IP 4 rolled back by rule '[dict get $rollback rule]'\
    ([dict get $rollback issuer]): [dict get $rollback evidence]"

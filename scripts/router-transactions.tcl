# The six upgrade transactions of thesis chapter 5 (figures 5.4-5.9) for the non-stop router,
# spelled as in the thesis. The one description of the scenario: scripts/demo runs it against a
# router started with no module, through its remote console,
#     nonstop-router --empty --console PORT --token-file FILE
#     nonstop-shell --connect 127.0.0.1:PORT --token-file FILE scripts/router-transactions.tcl
# and the in-process test (tests/router/router_scenario_test.cpp) sources it into an interpreter
# holding the nonstop commands of its own runtime.
#
# Every command of a transaction is one line of the form
#     transaction NUMBER OUTCOME ?-reason GLOB? ?-serving {NAME=VERSION ...}? COMMAND ARG ...
# where OUTCOME is how the thesis says the command ends (committed or aborted), -reason matches
# an abort's reason and -serving names versions that must serve afterwards. scripts/demo reads
# these lines as its expected outcomes. Each returns "transaction N: OUTCOME: COMMAND | serving:
# NAME=VERSION ...", which the console prints, and appends a dict to ::steps for hosts that
# source this file; a command that ends otherwise raises an error, which stops the batch with a
# non-zero exit status.
#
# A host may set, before this file runs: pause_ms, slow_drain_ms, abort_limit_s,
# commit_limit_s (below), and a command `traffic DONE` that lets traffic flow after transaction
# DONE (by default: wait pause_ms).

# Traffic between transactions, in milliseconds: enough for a few broadcast periods.
if {![info exists pause_ms]} { set pause_ms 4000 }
# IP's disable time in transaction 5 (milliseconds); must exceed abort_limit_s.
if {![info exists slow_drain_ms]} { set slow_drain_ms 3000 }
# The quiescence limits (SetTimer, seconds) of transactions 5 and 6.
if {![info exists abort_limit_s]} { set abort_limit_s 2 }
if {![info exists commit_limit_s]} { set commit_limit_s 10 }
# Message type of IP's slow-drain control (kSlowDrain in modules/router_protocol.hpp).
set SLOW_DRAIN 3
set steps {}

proc serving {} {
    set out {}
    foreach name [nonstop modules] { lappend out $name=[dict get [nonstop info $name] version] }
    return [join $out " "]
}

proc transaction {number expected args} {
    set reason_pattern *
    set must_serve {}
    while {[string match -* [lindex $args 0]]} {
        set args [lassign $args option value]
        switch -- $option {
            -reason { set reason_pattern $value }
            -serving { set must_serve $value }
            default { return -code error "transaction: unknown option $option" }
        }
    }
    set reason {}
    if {[catch {uplevel #0 $args} result options]} {
        # Only a transaction's own end (aborted, rejected) carries a report; anything else, such
        # as a usage error, stops the batch as it is.
        if {![dict exists $options -report]} { return -options $options $result }
        set report [dict get $options -report]
        set reason $result
    } else {
        set report $result
    }
    set outcome [dict get $report outcome]
    set now [serving]
    lappend ::steps [dict create transaction $number expected $expected outcome $outcome \
                         command $args reason $reason serving $now report $report]
    set what "transaction $number ($args)"
    if {$outcome ne $expected} {
        set why [expr {$reason eq "" ? "" : " ($reason)"}]
        return -code error "$what $outcome$why, but the thesis expects it $expected"
    }
    if {![string match $reason_pattern $reason]} {
        return -code error "$what $outcome for an unexpected reason: $reason"
    }
    foreach version $must_serve {
        if {$version ni $now} {
            return -code error "$what $outcome, but $version is not serving (serving: $now)"
        }
    }
    set line "transaction $number: $outcome: $args | serving: $now"
    if {$reason ne ""} { append line " | reason: $reason" }
    return $line
}

if {[info commands traffic] eq ""} {
    proc traffic {done} { after $::pause_ms }
}

# Transaction 1: TIMER publishes "broadcast"; OSPF and IP are added and start together.
transaction 1 committed Load TIMER libTIMERImp1.so
transaction 1 committed -serving {TIMER=1 OSPF=1 IP=1} Syn_Load OSPF libOSPFImp1.so IP libIPImp1.so
traffic 1

# Transaction 2: IP's relay number carries over to version 2.
transaction 2 committed -serving {IP=2} Replace IP libIPImp2.so
traffic 2

# Transaction 3: OSPF's incoming relays are buffered and served by version 2.
transaction 3 committed -serving {OSPF=2} Replace OSPF libOSPFImp2.so
traffic 3

# Transaction 4: OSPF and IP back to version 1 while VRRP is added, all starting together.
transaction 4 committed -serving {OSPF=1 IP=1 VRRP=1} \
    Syn_Upgrade OSPF libOSPFImp1.so IP libIPImp1.so VRRP libVRRPImp1.so
traffic 4

# Transaction 5: IP is told to drain slower than the limit, so the group must abort, because
# IP cannot reach quiescence in time, and leave version 1 serving both modules.
transaction 5 committed SetTimer $abort_limit_s
::nonstop::send IP $SLOW_DRAIN $slow_drain_ms
transaction 5 aborted -reason "*'IP'*quiescence*" -serving {OSPF=1 IP=1} \
    Syn_Replace OSPF libOSPFImp2.so IP libIPImp2.so
traffic 5

# Transaction 6: version 3 speaks the timestamped message protocol; OSPF 3 still reads VRRP 1.
transaction 6 committed SetTimer $commit_limit_s
transaction 6 committed -serving {IP=3 OSPF=3 TIMER=1 VRRP=1} \
    Syn_Replace OSPF libOSPFImp3.so IP libIPImp3.so
traffic 6
set done "the six transactions ended as in the thesis"

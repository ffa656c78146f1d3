# The six upgrade transactions of thesis chapter 5 (figures 5.4-5.9) for the non-stop router,
# spelled as in the thesis. Run it against a router started with no module, through its
# remote console (scripts/demo does this):
#     nonstop-router --empty --console PORT --token-file FILE
#     nonstop-shell --connect 127.0.0.1:PORT --token-file FILE scripts/router-transactions.tcl
# The console prints each command's result, so the procedures below return one line per
# transaction ("transaction N: OUTCOME: COMMAND | serving: NAME=VERSION ..."), which the demo
# reads back for its verification table. A transaction that does not end as the thesis says
# raises an error, which stops the batch with a non-zero exit status.

# Traffic between transactions, in milliseconds: enough for a few broadcast periods.
if {![info exists pause_ms]} { set pause_ms 4000 }
# IP's disable time in transaction 5 (milliseconds); must exceed SetTimer 2.
if {![info exists slow_drain_ms]} { set slow_drain_ms 3000 }
# Message type of IP's slow-drain control (kSlowDrain in modules/router_protocol.hpp).
set SLOW_DRAIN 3

proc serving {} {
    set out {}
    foreach name [nonstop modules] { lappend out $name=[dict get [nonstop info $name] version] }
    return [join $out " "]
}

# Runs one command of transaction `number`, which must commit.
proc transaction {number args} {
    uplevel #0 $args
    return "transaction $number: committed: $args | serving: [serving]"
}

# Runs one command of transaction `number`, which must abort because `module` cannot reach
# quiescence in time; anything else is an error.
proc expect_abort {number module args} {
    if {![catch {uplevel #0 $args} message options]} {
        return -code error "transaction $number committed, but the thesis expects it to abort"
    }
    if {[lrange [dict get $options -errorcode] 0 1] ne {NONSTOP ABORTED}} {
        return -code error "transaction $number failed otherwise than by abort: $message"
    }
    if {![string match "*'$module'*quiescence*" $message]} {
        return -code error "transaction $number aborted for an unexpected reason: $message"
    }
    return "transaction $number: aborted as expected ($message): $args | serving: [serving]"
}

proc traffic {} {
    after $::pause_ms
}

# Transaction 1: TIMER publishes "broadcast"; OSPF and IP are added and start together.
transaction 1 Load TIMER libTIMERImp1.so
transaction 1 Syn_Load OSPF libOSPFImp1.so IP libIPImp1.so
traffic

# Transaction 2: IP's relay number carries over to version 2.
transaction 2 Replace IP libIPImp2.so
traffic

# Transaction 3: OSPF's incoming relays are buffered and served by version 2.
transaction 3 Replace OSPF libOSPFImp2.so
traffic

# Transaction 4: OSPF and IP back to version 1 while VRRP is added, all starting together.
transaction 4 Syn_Upgrade OSPF libOSPFImp1.so IP libIPImp1.so VRRP libVRRPImp1.so
traffic

# Transaction 5: IP is told to drain slower than the 2 s limit, so the group must abort and
# leave version 1 serving both modules.
transaction 5 SetTimer 2
::nonstop::send IP $SLOW_DRAIN $slow_drain_ms
expect_abort 5 IP Syn_Replace OSPF libOSPFImp2.so IP libIPImp2.so
traffic

# Transaction 6: version 3 speaks the timestamped message protocol; OSPF 3 still reads VRRP 1.
transaction 6 SetTimer 10
transaction 6 Syn_Replace OSPF libOSPFImp3.so IP libIPImp3.so
traffic
set done "the six transactions ended as in the thesis"

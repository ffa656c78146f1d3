# The six upgrade transactions of thesis chapter 5 (figures 5.4-5.9) for the non-stop router.
# Run it in the router's shell, against a router started with no module:
#     nonstop-router --empty ...      (then source this file from its console)
# The commands are spelled as in the thesis; the shell binding provides them as global
# commands, plus ::nonstop::send NAME TYPE PAYLOAD. A failed transaction raises a Tcl error
# whose -errorcode starts with {NONSTOP ABORTED}.

# Traffic between transactions, in milliseconds: enough for a few broadcast periods.
if {![info exists pause_ms]} { set pause_ms 5000 }
# IP's disable time in transaction 5 (milliseconds); must exceed SetTimer 2.
if {![info exists slow_drain_ms]} { set slow_drain_ms 3000 }
# Message type of IP's slow-drain control (kSlowDrain in modules/router_protocol.hpp).
set SLOW_DRAIN 3

proc traffic {} {
    global pause_ms
    after $pause_ms
}

proc transaction {number args} {
    puts "----- transaction $number: $args"
    uplevel #0 $args
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
if {[catch {transaction 5 Syn_Replace OSPF libOSPFImp2.so IP libIPImp2.so} message options]} {
    set code [dict get $options -errorcode]
    if {[lrange $code 0 1] ne {NONSTOP ABORTED}} {
        return -code error -errorcode $code "transaction 5 failed otherwise than by abort: $message"
    }
    if {![string match *IP* $message] || ![string match *quiescence* $message]} {
        return -code error "transaction 5 aborted for an unexpected reason: $message"
    }
    puts "transaction 5 aborted as expected: $message"
} else {
    return -code error "transaction 5 committed, but the thesis expects it to abort"
}
traffic

# Transaction 6: version 3 speaks the timestamped message protocol; OSPF 3 still reads VRRP 1.
transaction 6 SetTimer 10
transaction 6 Syn_Replace OSPF libOSPFImp3.so IP libIPImp3.so
traffic

puts "----- the six transactions ended as in the thesis"

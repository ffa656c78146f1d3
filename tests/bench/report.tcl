# Aggregates the rounds of scripts/bench into one table and, optionally, a JSON file.
#   tclsh report.tcl ?-json FILE? ROUNDDIR ?ROUNDDIR ...?
# Each ROUNDDIR holds *.tsv files ("key<TAB>measured<TAB>baseline<TAB>unit" lines written by
# core_bench --figures and group_upgrade_bench --figures) and otp.txt (the Erlang/OTP
# side-by-side, "otp NAME median p99 min max" in µs). Every figure is the ratio
# measured / baseline of one round; the table gives min / median / max over the rounds.

# key -> {target description, test on the median ratio}
set targets {
    blackout_median_handoffs      {"<= 2"   {$r <= 2}}
    blackout_p99_handoffs         {"<= 5"   {$r <= 5}}
    throughput_ratio_1p           {">= 1.5" {$r >= 1.5}}
    throughput_ratio_3p           {">= 1.5" {$r >= 1.5}}
    rtt_ratio                     {"<= 1.0" {$r <= 1.0}}
    load_cycle_ratio              {"<= 1.5" {$r <= 1.5}}
    state_256mib_blackout_ratio   {"<= 2"   {$r <= 2}}
    modules_10k_blackout_ratio    {"<= 1.5" {$r <= 1.5}}
    modules_10k_send_ratio        {">= 0.9" {$r >= 0.9}}
    group64_nodrain_conc_over_seq {"<= 0.5" {$r <= 0.5}}
    group64_drain_conc_ratio      {"<= 1.2" {$r <= 1.2}}
    erlang_blackout_ratio         {"<= 1.0" {$r <= 1.0}}
    load_cycle_kept_threads_ratio              {"<= 1.5" {$r <= 1.5}}
    group64_nodrain_conc_over_seq_kept_threads {"<= 0.5" {$r <= 0.5}}
    group64_drain_conc_ratio_kept_threads      {"<= 1.2" {$r <= 1.2}}
}

proc median {values} {
    set s [lsort -real $values]
    return [lindex $s [expr {[llength $s] / 2}]]
}

# Reads one round: a dict key -> {measured baseline unit}.
proc read_round {dir} {
    set round {}
    foreach file [glob -nocomplain -directory $dir *.tsv] {
        set f [open $file]
        foreach line [split [read $f] \n] {
            lassign [split $line \t] key measured baseline unit
            if {$key ne ""} { dict set round $key [list $measured $baseline $unit] }
        }
        close $f
    }
    set otp {}
    if {[file exists $dir/otp.txt]} {
        set f [open $dir/otp.txt]
        foreach line [split [read $f] \n] {
            if {[lindex $line 0] eq "otp"} { dict set otp [lindex $line 1] [lindex $line 2] }
        }
        close $f
    }
    # The Erlang/OTP figures: nonstop's idle blackout and round trip over OTP's, same run.
    foreach {key ours theirs} {
        erlang_blackout_ratio     idle_blackout_median_us suspend_change_code_resume
        erlang_blackout_with_load_ratio idle_blackout_median_us upgrade_with_code_load
        erlang_rtt_ratio          rtt_median_us           gen_server_call_roundtrip
    } {
        if {[dict exists $round $ours] && [dict exists $otp $theirs]} {
            dict set round $key [list [lindex [dict get $round $ours] 0] [dict get $otp $theirs] us]
        }
    }
    # The floor of any blackout with OS threads, one condition-variable hand-off (the
    # blackout's own baseline), over OTP's suspend + change_code + resume.
    if {[dict exists $round blackout_median_handoffs] && [dict exists $otp suspend_change_code_resume]} {
        dict set round erlang_handoff_floor_ratio [list \
            [lindex [dict get $round blackout_median_handoffs] 1] \
            [dict get $otp suspend_change_code_resume] us]
    }
    dict unset round idle_blackout_median_us
    dict unset round rtt_median_us
    return $round
}

proc json_number {x} {
    if {![string is double -strict $x] || $x eq "Inf" || $x eq "NaN"} { return null }
    return [format %.6g $x]
}

set json ""
set dirs {}
for {set i 0} {$i < $argc} {incr i} {
    set a [lindex $argv $i]
    if {$a eq "-json"} { set json [lindex $argv [incr i]] } else { lappend dirs $a }
}
set rounds [lmap d $dirs { read_round $d }]
set keys {}
foreach r $rounds { foreach k [dict keys $r] { if {$k ni $keys} { lappend keys $k } } }

puts [format "%-44s %-26s %-9s %-9s %-9s %-8s %s" figure "median measured/baseline" \
          min median max target met]
set entries {}
foreach key $keys {
    set ratios {}; set measured {}; set baseline {}; set unit ""
    foreach r $rounds {
        if {![dict exists $r $key]} continue
        lassign [dict get $r $key] m b unit
        lappend measured $m; lappend baseline $b
        lappend ratios [expr {$b != 0 ? double($m) / $b : "Inf"}]
    }
    set sorted [lsort -real $ratios]
    set r [median $ratios]
    set target ""; set met ""
    if {[dict exists $targets $key]} {
        lassign [dict get $targets $key] target test
        set met [expr $test ? "yes" : "NO"]
    }
    puts [format "%-44s %-26s %-9.3g %-9.3g %-9.3g %-8s %s" $key \
              "[format %.4g [median $measured]] / [format %.4g [median $baseline]] $unit" \
              [lindex $sorted 0] $r [lindex $sorted end] $target $met]
    lappend entries [format {  "%s": {"ratio": %s, "ratio_min": %s, "ratio_max": %s, "ratio_rounds": [%s], "measured": %s, "baseline": %s, "unit": "%s", "target": "%s", "met": %s}} \
        $key [json_number $r] [json_number [lindex $sorted 0]] [json_number [lindex $sorted end]] \
        [join [lmap x $ratios { json_number $x }] ", "] [json_number [median $measured]] \
        [json_number [median $baseline]] $unit $target \
        [expr {$met eq "" ? "null" : ($met eq "yes" ? "true" : "false")}]]
}
if {$json ne ""} {
    set f [open $json w]
    # One object: every figure under its key (ratio = median over the rounds of
    # measured / baseline; measured and baseline are medians too), then when and how often.
    lappend entries "  \"date\": \"[clock format [clock seconds] -gmt 1 -format %Y-%m-%dT%H:%M:%SZ]\""
    lappend entries "  \"rounds\": [llength $rounds]"
    puts $f "\{\n[join $entries ",\n"]\n\}"
    close $f
}

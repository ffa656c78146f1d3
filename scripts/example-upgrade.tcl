# An upgrade batch in the thesis's own spelling (chapter 5, table 4.1), run with
#   nonstop-shell --module-path <build>/tests/modules scripts/example-upgrade.tcl
# using the counter test modules. Every command is a transaction; the first one that does not
# commit stops the batch with a non-zero exit status naming its line.

SetTimer 2.5

# Bring up two counters, then take them through two generations of implementation.
Load left libcounter_v1.so
Load right libcounter_v1.so
Replace left libcounter_v2.so

# A failed step is expected here and handled: version 1 cannot read version 2's state, so the
# transaction aborts and version 2 keeps serving.
try {
    Replace left libcounter_v1.so
} trap {NONSTOP ABORTED} {message} {
    puts "as expected: $message"
}

Disable right
Enable right
Syn_Replace left libcounter_v3.so right libcounter_v2.so
Syn_Upgrade right libcounter_v3.so extra libcounter_v1.so
Syn_Load first libcounter_v2.so second libcounter_v2.so

foreach name {left right extra first second} {
    Unload $name
}
puts "example-upgrade: done"

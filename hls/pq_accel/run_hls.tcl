# Vitis HLS flow for pq_accel (not runnable on the project's own machines: no Vitis there).
#
#   vitis_hls -f hls/pq_accel/run_hls.tcl -tclargs csim csynth cosim export part=xczu7ev-ffvc1156-2-e mhz=250
#   PQ_HLS_STEPS="csynth export" vitis-run --mode hls --tcl hls/pq_accel/run_hls.tcl     (Vitis 2023.2+)
#
# Switches (arguments, or the environment for tools that pass none):
#   csim csynth cosim export   steps to run (PQ_HLS_STEPS; default: csim csynth)
#   part=NAME                  FPGA part    (PQ_HLS_PART; default xczu7ev-ffvc1156-2-e, UltraScale+)
#   mhz=F                      clock target (PQ_HLS_MHZ;  default 250)
#   vectors=IDX[,IDX...]       C-sim / co-sim test bench index files (PQ_HLS_VECTORS; default: the
#                              ones `make hls` writes under build/hls/vectors)
# Output: project in hls/build/pq_accel_prj; after csynth the generated Verilog is copied to
# hls/build/pq_accel/verilog (what `make sim RTL=hls` simulates); `export` adds an IP-catalog
# zip in hls/build/pq_accel/ip.
set here  [file dirname [file normalize [info script]]]
set root  [file normalize [file join $here .. ..]]
set build [file join $root hls build]

set steps {}
set part  xczu7ev-ffvc1156-2-e
set mhz   250
set vecs  {}
if {[info exists ::env(PQ_HLS_STEPS)]}   { set steps $::env(PQ_HLS_STEPS) }
if {[info exists ::env(PQ_HLS_PART)]}    { set part  $::env(PQ_HLS_PART) }
if {[info exists ::env(PQ_HLS_MHZ)]}     { set mhz   $::env(PQ_HLS_MHZ) }
if {[info exists ::env(PQ_HLS_VECTORS)]} { set vecs  [split $::env(PQ_HLS_VECTORS) ", "] }
if {[info exists ::argv]} {
    foreach a $::argv {
        switch -glob -- $a {
            csim - csynth - cosim - export { lappend steps $a }
            part=*    { set part [string range $a 5 end] }
            mhz=*     { set mhz  [string range $a 4 end] }
            vectors=* { set vecs [split [string range $a 8 end] ","] }
            default   { puts "run_hls.tcl: error: unknown switch '$a' (want csim csynth cosim export part= mhz= vectors=)"; exit 2 }
        }
    }
}
if {[llength $steps] == 0} { set steps {csim csynth} }
if {[llength $vecs] == 0} {
    set vecs [concat [glob -nocomplain [file join $root build hls vectors synthetic index.txt]] \
                     [lsort [glob -nocomplain [file join $root build hls vectors index_*.txt]]]]
}
puts "run_hls.tcl: steps={$steps} part=$part clock=${mhz} MHz vectors=[llength $vecs] index file(s)"

file mkdir $build
cd $build
open_project -reset pq_accel_prj
set_top pq_accel
add_files $here/pq_accel.cpp -cflags "-I$here -std=c++14"
add_files -tb $here/tb_pq_accel.cpp -cflags "-I$here -std=c++14 -Wno-unknown-pragmas"
open_solution -reset sol -flow_target vivado
set_part $part
create_clock -period [expr {1000.0 / $mhz}] -name default

if {[lsearch $steps csim] >= 0} {
    if {[llength $vecs] == 0} { puts "run_hls.tcl: error: no vector index files (run `make hls` once)"; exit 1 }
    csim_design -argv [join $vecs " "]
}
if {[lsearch $steps csynth] >= 0 || [lsearch $steps cosim] >= 0 || [lsearch $steps export] >= 0} {
    csynth_design
    set vout [file join $build pq_accel verilog]
    file delete -force $vout
    file mkdir $vout
    foreach f [glob -nocomplain [file join $build pq_accel_prj sol syn verilog *]] { file copy -force $f $vout }
    puts "run_hls.tcl: Verilog in $vout"
}
if {[lsearch $steps cosim] >= 0} {
    cosim_design -rtl verilog -argv [join $vecs " "]
}
if {[lsearch $steps export] >= 0} {
    file mkdir [file join $build pq_accel ip]
    export_design -format ip_catalog -rtl verilog -output [file join $build pq_accel ip pq_accel.zip]
}
exit

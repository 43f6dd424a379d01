# bench/plot.gp -- bench/throughput.png from scripts/bench.sh's plot data:
# one panel per workload, ops/s against threads, one line per allocator,
# error bars from the runs' min and max.
#
#   gnuplot -e "datafile='plot.dat'; outfile='throughput.png'" \
#           -e "workloads='fastpath server'; allocators='glibc heaplib'" \
#           -e "threads='1 2 8'; panels='1 1'; plottitle='...'" bench/plot.gp
#
# plot.dat holds one block per (workload, allocator), workloads outer,
# separated by two blank lines (gnuplot's "index"); columns: threads,
# median, min, max ops/s.  panels: one word per workload, 0 when no
# allocator has a point there (every run failed), which gnuplot cannot plot.

if (!exists("plottitle")) plottitle = "ops/s against threads"
if (!exists("panels")) panels = ""
nw = words(workloads)
na = words(allocators)
nt = words(threads)

# panels plus one for the key, three to a row, 370 pixels high each
cols = 3
rows = int((nw + 1 + cols - 1) / cols)
height = 370 * rows

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1500,height font "sans,10"
} else {
	set terminal png size 1500,height
}
set output outfile
set multiplot layout rows, cols title plottitle font ",12"

set logscale x 2
set xrange [word(threads, 1) * 0.8 : word(threads, nt) * 1.25]
set xtics ()
do for [j = 1:nt] { set xtics add (word(threads, j) word(threads, j) + 0) }
set xlabel "threads"
set ylabel "ops/s"
set format y "%.1s%c"
set yrange [0:*]
set grid ytics lc rgb "#dddddd"
unset key

# heaplib stands out; the others keep one color each in every panel
colors = "#1f77b4 #2ca02c #9467bd #ff7f0e #8c564b #17becf"
color(a) = word(allocators, a) eq "heaplib" ? "#d62728" : word(colors, (a - 1) % 6 + 1)
width(a) = word(allocators, a) eq "heaplib" ? 3 : 1.5
# spread the allocators a little along x, so that the error bars do not overlap
shift(x, a) = x * (1 + 0.035 * (a - (na + 1) / 2.0))

do for [w = 1:nw] {
	set title word(workloads, w) font ",11"
	if (word(panels, w) eq "0") {
		set label 1 "no successful run" at graph 0.5, 0.5 center
		set yrange [0:1]
		plot NaN notitle
		unset label 1
		set yrange [0:*]
	} else {
		plot for [a = 1:na] datafile index ((w - 1) * na + a - 1) \
			using (shift($1, a)):2:3:4 with yerrorlines lw width(a) pt 7 ps 0.8 \
			lc rgb color(a) title word(allocators, a)
	}
}

# the key, alone in the next panel
unset title
unset border
unset tics
unset xlabel
unset ylabel
unset grid
unset logscale x
set xrange [0:1]
set yrange [0:1]
set key center center box spacing 1.5 font ",11"
plot for [a = 1:na] NaN with linespoints lw width(a) pt 7 lc rgb color(a) title word(allocators, a)

unset multiplot

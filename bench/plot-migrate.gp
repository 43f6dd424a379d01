# bench/plot-migrate.gp -- bench/migrate.png from bench/migrate-plot.sh's
# data: one horizontal bar per figure (its median), a line from its min to
# its max over the runs, and issue 10's target as a red diamond.
#
#   gnuplot -e "datafile='migrate.dat'; outfile='migrate.png'; plottitle='...'" \
#           bench/plot-migrate.gp
#
# One block a panel (index 0-3); columns: place in the panel, name,
# median, min, max, target.

if (!exists("plottitle")) plottitle = "nomadic memory (bench/migrate)"
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1500,1100 font "sans,10"
} else {
	set terminal png size 1500,1100
}
set output outfile
set termoption noenhanced
set multiplot title plottitle font ",12"
set style fill solid 0.8 border -1
set grid xtics lc rgb "#dddddd"
set key below horizontal
set ytics nomirror
set offsets 0, 0, 0.5, 0.5

do for [P = 1:4] {
	if (P == 1) { set size 0.5, 0.95; set origin 0, 0;   set title "move latency (us): round trips and the move alone"; set logscale x }
	if (P == 2) { set size 0.5, 0.6;  set origin 0.5, 0.35; set title "writer stalls and OOM resolution (us)"; set logscale x }
	if (P == 3) { set size 0.25, 0.35; set origin 0.5, 0;  set title "evacuation (MB/s)"; unset logscale x }
	if (P == 4) { set size 0.25, 0.35; set origin 0.75, 0; set title "the application beside it: loss (%)"; unset logscale x }
	set xrange [(P <= 2 ? 0.1 : 0):*]
	base = P <= 2 ? 0.1 : 0
	plot datafile index (P - 1) using 3:1:(base):3:($1 - 0.35):($1 + 0.35):ytic(2) \
		with boxxyerror lc rgb "#1f77b4" title "median", \
	     '' index (P - 1) using 3:1:4:5 with xerrorbars pt -1 lc rgb "#333333" title "min-max", \
	     '' index (P - 1) using 6:1 with points pt 13 ps 1.6 lc rgb "#d62728" title "target"
}
unset multiplot

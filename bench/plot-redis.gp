# bench/plot-redis.gp -- bench/redis.png from scripts/bench.sh's redis plot
# data: requests/s per command (left) and the server's peak RSS (right),
# one bar per allocator, error bars from the runs' min and max.
#
#   gnuplot -e "datafile='plot.dat.redis'; outfile='redis.png'" \
#           -e "allocators='glibc heaplib'; plottitle='...'" bench/plot-redis.gp
#
# The data holds one row per command and a last row peak_RSS_MiB; columns:
# the name, then median, min, max per allocator (Mreq/s; MiB for the RSS).

if (!exists("plottitle")) plottitle = "redis-server under each allocator"
na = words(allocators)
stats datafile using 0 nooutput
nrow = STATS_records

if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
	set terminal pngcairo size 1500,500 font "sans,10"
} else {
	set terminal png size 1500,500
}
set output outfile
set termoption noenhanced
set multiplot title plottitle font ",12"

colors = "#1f77b4 #2ca02c #9467bd #ff7f0e #8c564b #17becf"
color(a) = word(allocators, a) eq "heaplib" ? "#d62728" : word(colors, (a - 1) % 6 + 1)

set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics lc rgb "#dddddd"
set yrange [0:*]
set key top right

set size 0.72, 0.95
set origin 0, 0
set title "requests/s per command (redis-benchmark -P 16)"
set ylabel "M requests/s"
plot for [a = 1:na] datafile every ::0::(nrow - 2) \
	using (column(3 * a - 1)):(column(3 * a)):(column(3 * a + 1)):xtic(1) \
	lc rgb color(a) title word(allocators, a)

set size 0.28, 0.95
set origin 0.72, 0
set title "server peak RSS (VmHWM)"
set ylabel "MiB"
unset key
plot for [a = 1:na] datafile every ::(nrow - 1)::(nrow - 1) \
	using (column(3 * a - 1)):(column(3 * a)):(column(3 * a + 1)):xtic("") \
	lc rgb color(a) title word(allocators, a)

unset multiplot

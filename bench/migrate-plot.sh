# bench/migrate-plot.sh, sourced by scripts/bench.sh: bench/migrate.png
# from the nomadic-memory table that bench/migrate.sh wrote into
# results.md (so the medians are taken once, there).
#   migrate_plot_data results.md out.dat   one row per figure plotted
#   migrate_plot out.dat migrate.png title
# One block a panel (gnuplot's index 0-3: move latencies in us, writer
# stalls and OOM resolution in us, evacuation in MB/s, the application's
# loss in %); a row: its place in the panel, name, median, min, max,
# target (NaN when none).

migrate_plot_data() {
	awk '
	/^## Nomadic memory/ { on = 1; next }
	/^## / { on = 0 }
	!on || !/^\| [a-z]/ { next }
	{
		split($0, f, "|")
		name = f[2]; gsub(/ /, "", name)
		m = f[3]; gsub(/[][,]/, " ", m); split(m, v, " ")
		t = f[4]; gsub(/[<>=() ]/, "", t); if (t == "") t = "NaN"
		p = 0; k = 1
		if (name ~ /^move_.*_us$/) p = 1
		else if (name ~ /^(stall|oom)_.*_us$/) p = 2
		else if (name == "evac_mb_per_s") p = 3
		else if (name == "evac_app_loss") { p = 4; k = 100 }
		if (!p) next
		if (t != "NaN") t *= k
		row[p] = row[p] sprintf("%d %s %g %g %g %s\n", pos[p]++, name, v[1] * k, v[2] * k, v[3] * k, t)
	}
	END { for (p = 1; p <= 4; p++) printf "%s%s", (p > 1 ? "\n\n" : ""), (p in row ? row[p] : "0 none NaN NaN NaN NaN\n") }' "$1" >"$2"
}

migrate_plot() {
	[ -s "$1" ] || return 1
	gnuplot -e "datafile='$1'; outfile='$2'; plottitle='$3'" "$srcdir/bench/plot-migrate.gp"
}

#!/bin/sh
# Flow engine benchmark (issue 3).  The project's generator (tests/tools/
# gencap.c) writes a ~1 GB capture (CAPATLAS_BENCH_MB, default 1024) of
# mixed traffic (TLS with SNI, HTTP, DNS, QUIC, NTP, ICMP, random ports, some
# VLAN and IPv6; >= 300,000 flows), and a 100 MB prefix of the same stream.
# Then, on the same files in the same run:
#   capatlas 1w   full import into a workspace (decode + nDPI + geo + LMDB
#                 write: `capatlasd flows --store`), pinned to one core
#   capatlas 2w   two such imports at once (two import workers), both cores
#   engine-only   the same without the store (`capatlasd flows --count`)
#   libpcap       the bare pcap_next_ex loop (tests/tools/pcaploop.c): the floor
#   ndpiReader    `ndpiReader -i FILE -q -v 0`, pinned to one core
#   tshark conv   `tshark -q -z conv,tcp -z conv,udp` on the 100 MB prefix
#                 (and capatlas on the same prefix for the ratio)
#   capatlas-big  the full import of a capture 3x the size (CAPATLAS_BENCH_BIG_MB,
#                 default 3 * MB; 0 skips it), for the peak-RSS target, which
#                 holds "whatever the file size": the RSS of both sizes is
#                 printed and both must stay within 512 MiB
# Prints wall time, MB/s, CPU time (user + system) and peak RSS
# (/usr/bin/time -v) for each, the ratios, and whether the targets are met:
# capatlas >= 5x ndpiReader's throughput on one core, peak RSS <= 512 MiB,
# 2 workers >= 1.7x one.  On a busy machine wall times mostly measure the
# other load (the load average is printed); the ratios of CPU times are
# printed too, as the steadier measure of work done per byte.
# Exit status 1 when a target is missed.
set -u
cd "$(dirname "$0")/../.." || exit 1
MB=${CAPATLAS_BENCH_MB:-1024}
DIR=${CAPATLAS_BENCH_DIR:-build/bench}
BIN=build/capatlasd
GEN=build/tests/gencap
LOOP=build/tests/pcaploop
GEO=${CAPATLAS_GEO_DB:-docker/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/geo-whois-asn-country.mmdb}
mkdir -p "$DIR"
for t in "$BIN" "$GEN" "$LOOP" /usr/bin/time ndpiReader tshark; do
    command -v "$t" >/dev/null 2>&1 || { echo "flow-bench: missing $t (make build; make deps-test)"; exit 1; }
done
GEOARG=""
[ -f "$GEO" ] && GEOARG="--geo-db $GEO"
BIG=$DIR/gencap-$MB.pcap
SLICE=$DIR/gencap-100.pcap
BIGMB=${CAPATLAS_BENCH_BIG_MB:-$((MB * 3))}
HUGE=$DIR/gencap-$BIGMB.pcap
[ -s "$BIG" ] || "$GEN" -m "$MB" -o "$BIG" || exit 1
[ -s "$SLICE" ] || "$GEN" -m 100 -o "$SLICE" || exit 1
size() { stat -L -c %s "$1"; } # -L: the capture may be a symlink
ONE="taskset -c 0"
command -v taskset >/dev/null 2>&1 || ONE=""

# run NAME FILE CMD...: times CMD, appends "NAME wall s mb_s MB/s rss MiB cpu s" to $DIR/results
run() {
    name=$1 file=$2
    shift 2
    /usr/bin/time -v -o "$DIR/$name.time" "$@" >"$DIR/$name.out" 2>"$DIR/$name.err"
    rc=$?
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$DIR/$name.time" |
        awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }')
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$DIR/$name.time")
    usr=$(sed -n 's/.*User time (seconds): //p' "$DIR/$name.time")
    sys=$(sed -n 's/.*System time (seconds): //p' "$DIR/$name.time")
    awk -v n="$name" -v w="$wall" -v r="$rss" -v b="$(size "$file")" -v rc="$rc" -v u="$usr" -v s="$sys" 'BEGIN {
        printf "%-14s %9.2f s %9.1f MB/s %8.1f MiB %8.2f s%s\n", n, w, b / 1e6 / (w > 0 ? w : 1e-9), r / 1024, u + s, rc ? "  (exit " rc ")" : "" }' |
        tee -a "$DIR/results"
}

: >"$DIR/results"
echo "capture: $BIG ($(size "$BIG") bytes); slice: $SLICE ($(size "$SLICE") bytes)"
rm -rf "$DIR/store1" "$DIR/store2a" "$DIR/store2b" "$DIR/store-slice"
mkdir -p "$DIR/store1" "$DIR/store2a" "$DIR/store2b" "$DIR/store-slice"
# a shared machine makes wall times noisy: say how busy it was
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-14s %11s %14s %12s %10s\n' run wall throughput peak-RSS cpu
run libpcap "$BIG" $ONE "$LOOP" "$BIG"
# shellcheck disable=SC2086
run capatlas-1w "$BIG" $ONE "$BIN" flows --store "$DIR/store1" $GEOARG "$BIG"
flows=$(grep -o '"flows":[0-9]*' "$DIR/capatlas-1w.out" | head -1 | cut -d: -f2)
# shellcheck disable=SC2086
run engine-only "$BIG" $ONE "$BIN" flows --count $GEOARG "$BIG"
run ndpiReader "$BIG" $ONE ndpiReader -i "$BIG" -q -v 0
# two import workers: two imports of the file at once, into two workspaces
cat >"$DIR/two.sh" <<EOF
"$BIN" flows --store "$DIR/store2a" $GEOARG "$BIG" >/dev/null &
"$BIN" flows --store "$DIR/store2b" $GEOARG "$BIG" >/dev/null &
wait
EOF
run capatlas-2w "$BIG" sh "$DIR/two.sh"
# shellcheck disable=SC2086
run capatlas-100M "$SLICE" "$BIN" flows --store "$DIR/store-slice" $GEOARG "$SLICE"
run tshark-100M "$SLICE" tshark -n -r "$SLICE" -q -z conv,tcp -z conv,udp
if [ "$BIGMB" -gt 0 ]; then
    [ -s "$HUGE" ] || "$GEN" -m "$BIGMB" -o "$HUGE" || exit 1
    rm -rf "$DIR/store-big" && mkdir -p "$DIR/store-big"
    # shellcheck disable=SC2086
    run capatlas-big "$HUGE" $ONE "$BIN" flows --store "$DIR/store-big" $GEOARG "$HUGE"
    rm -rf "$DIR/store-big"
fi

echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "flows in the capture (capatlas): ${flows:-?}"
awk -v flows="${flows:-0}" -v bigmb="$BIGMB" '
    { wall[$1] = $2; mbs[$1] = $4; rss[$1] = $6; cpu[$1] = $8 }
    END {
        two = 2 * mbs["capatlas-2w"];   # two files were read in that wall time
        r_ndpi = mbs["capatlas-1w"] / mbs["ndpiReader"];
        r_eng = mbs["engine-only"] / mbs["ndpiReader"];
        r_floor = mbs["capatlas-1w"] / mbs["libpcap"];
        r_2w = two / mbs["capatlas-1w"];
        r_tshark = mbs["capatlas-100M"] / mbs["tshark-100M"];
        printf "capatlas / ndpiReader throughput (one core): %.2fx (target >= 5)\n", r_ndpi;
        if (cpu["capatlas-1w"] > 0 && cpu["engine-only"] > 0)
            printf "  by CPU time: capatlas %.2fx, engine alone %.2fx ndpiReader\n",
                cpu["ndpiReader"] / cpu["capatlas-1w"], cpu["ndpiReader"] / cpu["engine-only"];
        printf "engine alone (no store) / ndpiReader: %.2fx\n", r_eng;
        printf "capatlas / libpcap bare loop: %.2f of the floor\n", r_floor;
        printf "capatlas / tshark conv (100 MB): %.2fx\n", r_tshark;
        printf "2 workers / 1 worker throughput: %.2fx (target >= 1.7)\n", r_2w;
        printf "capatlas peak RSS: %.1f MiB (1 worker; target <= 512)\n", rss["capatlas-1w"];
        if ("capatlas-big" in rss)
            printf "capatlas peak RSS on the %s MB capture: %.1f MiB (target <= 512)\n", bigmb, rss["capatlas-big"];
        # written as !(ok) so that a ratio that is not a number (a run that
        # failed or timed nothing) is a miss, not a pass
        miss = 0;
        if (!(flows >= 300000)) { print "MISS: fewer than 300000 flows"; miss = 1 }
        if (!(r_ndpi >= 5)) { print "MISS: capatlas < 5x ndpiReader"; miss = 1 }
        if (!(rss["capatlas-1w"] > 0 && rss["capatlas-1w"] <= 512)) { print "MISS: peak RSS > 512 MiB"; miss = 1 }
        if (("capatlas-big" in rss) && !(rss["capatlas-big"] > 0 && rss["capatlas-big"] <= 512)) {
            print "MISS: peak RSS > 512 MiB on the " bigmb " MB capture"; miss = 1 }
        if (!(r_2w >= 1.7)) { print "MISS: 2 workers < 1.7x one"; miss = 1 }
        if (!miss) print "all flow-engine targets met";
        exit miss
    }' "$DIR/results"

/*
 * The import engine: reads one capture file, decodes every packet, builds
 * flows (with nDPI and geo), and hands finished flows to a sink in batches.
 * It is the same code for a server import and for `capatlasd flows FILE`.
 *
 * Lifetimes: a struct ca_engine is per process (it owns the nDPI detection
 * module and the geo database; open it after fork).  Each ca_engine_import
 * call is one file and allocates its own flow table, freed before return.
 */
#ifndef CA_ENGINE_H
#define CA_ENGINE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "flow.h"

struct ca_engine;

struct ca_engine_conf {
    const char *geo_db;     /* path of a .mmdb; NULL or "" = no geo */
    const char *geo_asn_db; /* optional second .mmdb for ASNs */
    uint32_t tcp_idle_sec;  /* default 300 */
    uint32_t udp_idle_sec;  /* default 120 (UDP and everything else) */
    /*
     * Live flows kept at most (default 150000, about 2 KiB each): beyond it
     * the least recently active flow is emitted early ("flows_evicted" in the
     * report), so that memory is bounded whatever the file.
     */
    uint32_t max_live_flows;
};

/* Sets defaults in c (all zero/NULL fields get their default). */
void ca_engine_conf_defaults(struct ca_engine_conf *c);

int ca_engine_open(const struct ca_engine_conf *c, struct ca_engine **out, char *err,
                   size_t errlen);
void ca_engine_close(struct ca_engine *e); /* accepts NULL */

/*
 * Receives finished flows, in batches of at most a few thousand.  The array
 * is only valid during the call.  Return 0, or a negative ca_err to abort
 * the import (which then returns that code).
 */
typedef int (*ca_flow_sink_fn)(void *arg, const struct ca_flow *flows, size_t n);

/*
 * Called now and then (about every 64 KiB of input) with bytes consumed so
 * far.  Return non-zero to cancel the import (ca_engine_import then returns
 * CA_ECANCELED).  May be NULL.
 */
typedef int (*ca_progress_fn)(void *arg, uint64_t bytes_done, uint64_t packets_done);

struct ca_import_req {
    const char *path; /* capture file (pcap, pcapng, gzip of either; by content) */
    /*
     * Optional: when not NULL, the capture is read from fp (forward only:
     * a pipe, a socket, a growing file through fopencookie...) and path is
     * only a label.  The engine neither closes it nor seeks it; gzip is
     * recognised the same way.  Progress bytes are then bytes read from fp.
     */
    FILE *fp;
    uint32_t capture_id; /* stamped on every flow */
    ca_flow_sink_fn sink;
    void *sink_arg;
    ca_progress_fn progress;
    void *progress_arg;
};

/*
 * Imports one file.  On return (success or not), *report_out (if not NULL)
 * receives a new JSON import report owned by the caller:
 *   { "packets", "bytes", "first_ns", "last_ns", "link_types": [..],
 *     "flows", "skipped": { reason: count }, "partial": bool,
 *     "damage": { "packet", "offset", "reason" } | null, "tunnels": {..},
 *     "fragments_reassembled", "non_ip": { "arp": n, ... }, "gzip": bool }
 * Packet offsets ("first_pkt_offset") and the damage offset are positions in
 * the decompressed capture stream.
 * Returns 0; CA_EFORMAT with a message such as
 *   "not a pcap or pcapng file: bad magic 0x3c68746d"
 * when nothing could be read; CA_EIO; CA_ECANCELED; or the sink's error.
 * A file damaged after some good packets returns 0 with "partial": true.
 */
int ca_engine_import(struct ca_engine *e, const struct ca_import_req *req, json_t **report_out,
                     char *err, size_t errlen);

#endif

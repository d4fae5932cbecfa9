/*
 * The flow table: groups decoded packets into bidirectional flows, decides
 * who is the client, tracks TCP state, runs DPI on the first packets,
 * expires idle or finished flows (in capture time) and hands finished flows
 * to a sink in batches.  One table per import; memory is bounded by the
 * number of live flows.
 */
#ifndef CA_FLOWTAB_H
#define CA_FLOWTAB_H

#include <stdint.h>

#include "decode.h"
#include "engine.h"
#include "flow.h"

struct ca_dpi;
struct ca_geo;
struct ca_pdns;
struct ca_flowtab;

#define CA_FLOWTAB_LIVE_DEFAULT 150000

struct ca_flowtab_conf {
    uint32_t tcp_idle_sec;
    uint32_t udp_idle_sec;
    /* live flows at most (0: CA_FLOWTAB_LIVE_DEFAULT); the least recent goes first */
    uint32_t max_live;
    uint32_t capture_id;
    uint8_t ts_nsec;
    uint64_t size_hint; /* bytes of the capture (0 unknown): sizes the hash table from the start */
    struct ca_dpi *dpi; /* may be NULL */
    struct ca_geo *geo; /* may be NULL */
    struct ca_pdns *pdns; /* may be NULL */
    ca_flow_sink_fn sink;
    void *sink_arg;
};

int ca_flowtab_new(const struct ca_flowtab_conf *c, struct ca_flowtab **out);
void ca_flowtab_free(struct ca_flowtab *t); /* accepts NULL; drops unflushed flows */

/* One decoded packet; index is 1-based; h is ca_flowtab_hash(pi) (the
 * engine has it already).  Returns 0 or the sink's error. */
int ca_flowtab_packet(struct ca_flowtab *t, const struct ca_pkt_info *pi, uint32_t h, int64_t ts_ns,
                      uint32_t wire_len, uint64_t offset, uint64_t index);

/*
 * Read-ahead help (the engine decodes a few packets ahead): the key hash of
 * a decoded packet, then prefetches of its flow's bucket (stage 0), first
 * entry (stage 1, some packets later) and that entry's DPI state (stage
 * 2).  Hints only: nothing changes, and a wrong guess (IP fragments) just
 * costs the miss it tried to avoid.
 */
uint32_t ca_flowtab_hash(const struct ca_pkt_info *pi);
void ca_flowtab_prefetch(const struct ca_flowtab *t, uint32_t h, int stage);

/* Emits every live flow (end of file: no packet may follow).  Returns 0 or
 * the sink's error. */
int ca_flowtab_flush(struct ca_flowtab *t);

uint64_t ca_flowtab_flows(const struct ca_flowtab *t);            /* flows emitted so far */
uint64_t ca_flowtab_evicted(const struct ca_flowtab *t);          /* emitted early (max_live) */
uint64_t ca_flowtab_frag_seen(const struct ca_flowtab *t);        /* later fragments joined */
uint64_t ca_flowtab_frag_reassembled(const struct ca_flowtab *t); /* IPv4 datagrams rebuilt */
uint64_t ca_flowtab_frag_dropped(const struct ca_flowtab *t);     /* incomplete, given up */

#endif

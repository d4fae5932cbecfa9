/*
 * The import engine (see engine.h): capture -> decode -> flow table ->
 * sink, with a JSON report that accounts for every packet read: each one
 * either reached the flow table or is counted under "skipped" by reason.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "ca_error.h"
#include "capture.h"
#include "decode.h"
#include "dpi.h"
#include "engine.h"
#include "flowtab.h"
#include "geo.h"
#include "pdns.h"

struct ca_engine {
    struct ca_engine_conf conf;
    struct ca_dpi *dpi;
    struct ca_geo *geo;
};

void ca_engine_conf_defaults(struct ca_engine_conf *c)
{
    if (c->tcp_idle_sec == 0)
        c->tcp_idle_sec = 300;
    if (c->udp_idle_sec == 0)
        c->udp_idle_sec = 120;
    if (c->max_live_flows == 0)
        c->max_live_flows = CA_FLOWTAB_LIVE_DEFAULT;
}

int ca_engine_open(const struct ca_engine_conf *c, struct ca_engine **out, char *err, size_t errlen)
{
    struct ca_engine *e;
    int r;

    *out = NULL;
    e = calloc(1, sizeof(*e));
    if (e == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    if (c != NULL)
        e->conf = *c;
    ca_engine_conf_defaults(&e->conf);
    e->conf.geo_db = NULL; /* not owned: do not keep the caller's pointers */
    e->conf.geo_asn_db = NULL;
    r = ca_dpi_open(&e->dpi, err, errlen);
    if (r != 0)
        goto out;
    if (c != NULL && c->geo_db != NULL && *c->geo_db != '\0') {
        r = ca_geo_open(c->geo_db, c->geo_asn_db, &e->geo, err, errlen);
        if (r != 0)
            goto out;
    }
    *out = e;
    return 0;
out:
    ca_engine_close(e);
    return r;
}

void ca_engine_close(struct ca_engine *e)
{
    if (e == NULL)
        return;
    ca_geo_close(e->geo);
    ca_dpi_close(e->dpi);
    free(e);
}

/* Packets read ahead of the one processed (see ca_engine_import). */
#define AHEAD 16

struct slot {
    struct ca_capture_pkt pkt;
    struct ca_pkt_info pi;
    const char *why; /* ca_decode's reason to skip, NULL: to the flow table */
    uint64_t index;  /* 1-based */
    uint32_t h;      /* the flow key's hash (prefetching) */
};

static void count(json_t *obj, const char *key, json_int_t n)
{
    json_t *v = json_object_get(obj, key);

    if (v != NULL)
        json_integer_set(v, json_integer_value(v) + n);
    else
        json_object_set_new(obj, key, json_integer(n));
}

int ca_engine_import(struct ca_engine *e, const struct ca_import_req *req, json_t **report_out,
                     char *err, size_t errlen)
{
    struct ca_capture *cap = NULL;
    struct ca_flowtab *ft = NULL;
    struct ca_pdns *pdns = NULL;
    struct slot *ring = NULL;
    size_t head = 0, nring = 0;
    struct ca_flowtab_conf fc;
    json_t *rep = NULL, *skipped, *non_ip, *tunnels, *links;
    uint64_t packets = 0, bytes = 0, next_progress = 65536;
    int64_t first_ns = 0, last_ns = 0;
    char derr[256];
    int r, dlt, seen_dlt[16], nseen = 1, last_dlt;

    if (report_out != NULL)
        *report_out = NULL;
    rep = json_object();
    skipped = json_object();
    non_ip = json_object();
    tunnels = json_object();
    links = json_array();
    if (rep == NULL || skipped == NULL || non_ip == NULL || tunnels == NULL || links == NULL) {
        json_decref(skipped);
        json_decref(non_ip);
        json_decref(tunnels);
        json_decref(links);
        r = ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        goto out;
    }
    json_object_set_new(rep, "skipped", skipped);
    json_object_set_new(rep, "non_ip", non_ip);
    json_object_set_new(rep, "tunnels", tunnels);
    json_object_set_new(rep, "link_types", links);
    json_object_set_new(rep, "partial", json_false());
    json_object_set_new(rep, "damage", json_null());

    if (req->fp != NULL)
        r = ca_capture_open_fp(req->fp, &cap, err, errlen);
    else
        r = ca_capture_open(req->path, &cap, err, errlen);
    if (r != 0)
        goto out;
    dlt = ca_capture_linktype(cap);
    json_array_append_new(links, json_string(ca_capture_linktype_name(dlt)));
    seen_dlt[0] = last_dlt = dlt;
    pdns = ca_pdns_new();
    ring = malloc(AHEAD * sizeof(*ring));
    if (pdns == NULL || ring == NULL) {
        r = ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        goto out;
    }
    memset(&fc, 0, sizeof(fc));
    fc.tcp_idle_sec = e->conf.tcp_idle_sec;
    fc.udp_idle_sec = e->conf.udp_idle_sec;
    fc.max_live = e->conf.max_live_flows;
    fc.capture_id = req->capture_id;
    fc.ts_nsec = (uint8_t)ca_capture_nsec(cap);
    fc.size_hint = ca_capture_file_size(cap);
    fc.dpi = e->dpi;
    fc.geo = e->geo;
    fc.pdns = pdns;
    fc.sink = req->sink;
    fc.sink_arg = req->sink_arg;
    r = ca_flowtab_new(&fc, &ft);
    if (r != 0) {
        r = ca_seterr(err, errlen, r, "out of memory");
        goto out;
    }
    /*
     * Packets are read and decoded up to AHEAD ahead of the one the flow
     * table processes (plain pcap: the reader holds their data), and the
     * flow table prefetches each one's bucket and entry meanwhile: the
     * lookups, cache misses in a table of 150,000 live flows, overlap.
     * Every packet is still processed in file order, and the report counts
     * are taken in read order, so nothing else changes.
     */
    ca_capture_hold(cap, 1);
    for (;;) {
        int rr = 1;

        while (nring < AHEAD) {
            struct slot *s = &ring[(head + nring) % AHEAD];

            rr = ca_capture_next(cap, &s->pkt, derr, sizeof(derr));
            if (rr != 1)
                break;
            packets++;
            bytes += s->pkt.len;
            if (packets == 1 || s->pkt.ts_ns < first_ns)
                first_ns = s->pkt.ts_ns;
            if (packets == 1 || s->pkt.ts_ns > last_ns)
                last_ns = s->pkt.ts_ns;
            if (s->pkt.dlt != last_dlt) { /* pcapng interfaces may differ: list each once */
                int k;
                for (k = 0; k < nseen && seen_dlt[k] != s->pkt.dlt; k++)
                    ;
                if (k == nseen && nseen < 16) {
                    seen_dlt[nseen++] = s->pkt.dlt;
                    json_array_append_new(links, json_string(ca_capture_linktype_name(s->pkt.dlt)));
                }
                last_dlt = s->pkt.dlt;
            }
            s->index = packets;
            s->why = ca_decode(s->pkt.dlt, s->pkt.data, s->pkt.caplen, &s->pi);
            if (s->why != NULL) {
                if (strncmp(s->why, "non_ip:", 7) == 0) {
                    count(skipped, "non_ip", 1);
                    count(non_ip, s->why + 7, 1);
                } else {
                    count(skipped, s->why, 1);
                }
            } else {
                if (s->pi.tunnel != NULL)
                    count(tunnels, s->pi.tunnel, 1);
                s->h = ca_flowtab_hash(&s->pi);
                ca_flowtab_prefetch(ft, s->h, 0);
            }
            nring++;
            if (req->progress != NULL && ca_capture_pos(cap) >= next_progress) {
                next_progress = ca_capture_pos(cap) + 65536;
                if (req->progress(req->progress_arg, ca_capture_pos(cap), packets) != 0) {
                    r = ca_seterr(err, errlen, CA_ECANCELED, "import cancelled");
                    goto out;
                }
            }
        }
        if (rr < 0 && packets == 0) {
            r = ca_seterr(err, errlen, CA_EFORMAT, "%s", derr);
            goto out;
        }
        if (rr < 0 && strstr(derr, "pcapng interfaces with different") == derr && nring == 0) {
            r = ca_seterr(err, errlen, CA_EFORMAT, "%s", derr);
            goto out;
        }
        /* the packets read: all of them at the end, a file error or a held buffer, else one */
        while (nring > 0) {
            struct slot *s = &ring[head];

            if (nring > AHEAD / 2) {
                const struct slot *m = &ring[(head + AHEAD / 2) % AHEAD];
                if (m->why == NULL)
                    ca_flowtab_prefetch(ft, m->h, 1);
            }
            if (nring > 2) {
                const struct slot *m = &ring[(head + 2) % AHEAD];
                if (m->why == NULL)
                    ca_flowtab_prefetch(ft, m->h, 2);
            }
            if (s->why == NULL) {
                r = ca_flowtab_packet(ft, &s->pi, s->h, s->pkt.ts_ns, s->pkt.len, s->pkt.offset,
                                      s->index);
                ca_big_heap_advise(); /* the flow table's growth gets huge pages */
                if (r != 0) {
                    ca_seterr(err, errlen, r, "%s",
                              r == CA_ENOMEM ? "out of memory" : "flow sink failed");
                    goto out;
                }
            }
            head = (head + 1) % AHEAD;
            nring--;
            if (rr == 1)
                break;
        }
        if (rr == 2) {
            if (nring == 0)
                ca_capture_release(cap);
            continue;
        }
        if (rr == 1)
            continue;
        if (rr < 0) {
            if (strstr(derr, "pcapng interfaces with different") == derr) {
                r = ca_seterr(err, errlen, CA_EFORMAT, "%s", derr);
                goto out;
            }
            json_object_set_new(rep, "partial", json_true());
            json_object_set_new(rep, "damage",
                                json_pack("{s:I, s:I, s:s}", "packet", (json_int_t)packets + 1,
                                          "offset", (json_int_t)ca_capture_offset(cap), "reason",
                                          derr));
        }
        break;
    }
    r = ca_flowtab_flush(ft);
    if (r != 0) {
        ca_seterr(err, errlen, r, "flow sink failed");
        goto out;
    }
    if (req->progress != NULL)
        req->progress(req->progress_arg, ca_capture_pos(cap), packets);
out:
    if (rep != NULL) {
        json_object_set_new(rep, "packets", json_integer((json_int_t)packets));
        json_object_set_new(rep, "bytes", json_integer((json_int_t)bytes));
        json_object_set_new(rep, "first_ns", packets ? json_integer(first_ns) : json_null());
        json_object_set_new(rep, "last_ns", packets ? json_integer(last_ns) : json_null());
        json_object_set_new(rep, "flows", json_integer(ft ? (json_int_t)ca_flowtab_flows(ft) : 0));
        json_object_set_new(rep, "flows_evicted",
                            json_integer(ft ? (json_int_t)ca_flowtab_evicted(ft) : 0));
        json_object_set_new(rep, "fragments_reassembled",
                            json_integer(ft ? (json_int_t)ca_flowtab_frag_reassembled(ft) : 0));
        json_object_set_new(rep, "fragments_incomplete",
                            json_integer(ft ? (json_int_t)ca_flowtab_frag_dropped(ft) : 0));
        json_object_set_new(rep, "fragments_joined",
                            json_integer(ft ? (json_int_t)ca_flowtab_frag_seen(ft) : 0));
        if (cap != NULL)
            json_object_set_new(rep, "gzip", json_boolean(ca_capture_gzip(cap)));
        if (cap != NULL)
            json_object_set_new(rep, "file_bytes",
                                json_integer((json_int_t)ca_capture_file_size(cap)));
        if (r != 0)
            json_object_set_new(rep, "error", json_string(err != NULL ? err : ca_strerror(r)));
    }
    ca_flowtab_free(ft);
    free(ring);
    ca_pdns_free(pdns);
    ca_capture_close(cap);
    if (report_out != NULL)
        *report_out = rep;
    else
        json_decref(rep);
    return r;
}

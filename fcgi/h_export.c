/*
 * Exports of the filtered flows (CSV, JSON lines, pcap) and the pcap of
 * one flow, as streamed answers (struct request's stream_fn).  Rows are
 * produced one hot chunk at a time: the read snapshot is released before
 * each chunk's bytes go to the network and taken again after, so memory
 * stays at one chunk whatever the size of the export, and no read
 * transaction stays open while a slow client downloads.  Exports are in
 * flow id order (import order).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "config.h"
#include "errmap.h"
#include "export.h"
#include "handlers.h"
#include "log.h"
#include "query.h"
#include "store.h"

enum { FMT_CSV, FMT_JSONL, FMT_PCAP };

#define PCAP_BATCH 65536

struct xp {
    struct ca_ws *w;
    struct ca_query *q;
    int fmt;
    uint64_t flow_id; /* one-flow pcap */
    struct ca_flow *f;
    char *buf;
    size_t len, cap;
    int failed;
    /* pcap batches */
    struct ca_export_flow *ef;
    size_t nef;
    uint32_t ef_cap;     /* capture of the batch */
    uint64_t last_taken; /* id of the last flow put in the batch */
};

static void xp_free(void *arg)
{
    struct xp *x = arg;

    if (x == NULL)
        return;
    ca_query_close(x->q);
    ca_ws_close(x->w);
    free(x->f);
    free(x->buf);
    free(x->ef);
    free(x);
}

static int put(struct xp *x, const char *s, size_t n)
{
    if (x->len + n > x->cap) {
        size_t nc = x->cap ? x->cap : 65536;
        char *g;

        while (nc < x->len + n)
            nc *= 2;
        g = realloc(x->buf, nc);
        if (g == NULL)
            return CA_ENOMEM;
        x->buf = g;
        x->cap = nc;
    }
    memcpy(x->buf + x->len, s, n);
    x->len += n;
    return 0;
}

static const char *const csv_cols[] = {
    "id",         "capture",      "first",        "last",        "duration",
    "l4",         "src",          "src_port",     "dst",         "dst_port",
    "proto",      "category",     "host",         "dns_name",    "sent_bytes",
    "recv_bytes", "sent_packets", "recv_packets", "src_country", "dst_country",
    "src_asn",    "dst_asn",      "tcp_state",    "vlan",        NULL};

/* One CSV cell; text that a spreadsheet would run as a formula gets a '. */
static int csv_cell(struct xp *x, json_t *v)
{
    char num[64];
    const char *s;
    int rc = 0;

    if (json_is_string(v)) {
        s = json_string_value(v);
        if (strchr("=+-@\t\r", s[0]) != NULL && s[0] != '\0')
            rc = put(x, "\"'", 2);
        else
            rc = put(x, "\"", 1);
        for (; rc == 0 && *s != '\0'; s++)
            rc = *s == '"' ? put(x, "\"\"", 2) : put(x, s, 1);
        return rc != 0 ? rc : put(x, "\"", 1);
    }
    if (json_is_integer(v))
        snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(num, sizeof(num), "%.9g", json_real_value(v));
    else
        num[0] = '\0';
    return put(x, num, strlen(num));
}

static int row_text(void *arg, struct ca_ws_snap *s, uint64_t id, const struct ca_hot *h)
{
    struct xp *x = arg;
    json_t *o;
    int rc = 0;

    rc = ca_ws_snap_flow(s, id, x->f);
    if (rc != 0)
        return rc;
    o = ca_flow_to_json(x->f);
    if (o == NULL)
        return CA_ENOMEM;
    if (x->fmt == FMT_JSONL) {
        char *t = json_dumps(o, JSON_COMPACT);

        rc = t != NULL ? put(x, t, strlen(t)) : CA_ENOMEM;
        if (rc == 0)
            rc = put(x, "\n", 1);
        free(t);
    } else {
        for (int i = 0; rc == 0 && csv_cols[i] != NULL; i++) {
            if (i > 0)
                rc = put(x, ",", 1);
            if (rc == 0)
                rc = csv_cell(x, json_object_get(o, csv_cols[i]));
        }
        if (rc == 0)
            rc = put(x, "\r\n", 2);
    }
    json_decref(o);
    return rc;
}

static int stream_text(void *arg, int (*write)(void *, const void *, size_t), void *wctx)
{
    struct xp *x = arg;
    uint64_t after = 0, last = 0;
    int rc = 0;

    if (x->fmt == FMT_CSV) {
        for (int i = 0; csv_cols[i] != NULL; i++) {
            if (i > 0)
                put(x, ",", 1);
            put(x, csv_cols[i], strlen(csv_cols[i]));
        }
        put(x, "\r\n", 2);
    }
    for (;;) {
        rc = ca_query_each(x->q, after, 1, row_text, x, &last);
        ca_query_release(x->q);
        if (rc != 0)
            break;
        if (x->len > 0 && write(wctx, x->buf, x->len) != 0)
            return -1;
        x->len = 0;
        if (last == 0)
            break;
        after = last;
        rc = ca_query_refresh(x->q);
        if (rc != 0)
            break;
    }
    if (x->len > 0 && write(wctx, x->buf, x->len) != 0)
        return -1;
    if (rc != 0)
        log_line("export stopped: %s", ca_strerror(rc));
    return rc != 0 ? -1 : 0;
}

static int row_pcap(void *arg, struct ca_ws_snap *s, uint64_t id, const struct ca_hot *h)
{
    struct xp *x = arg;
    uint32_t cap = (uint32_t)(id >> 32);
    int rc;

    if (x->nef > 0 && cap != x->ef_cap)
        return 1;
    if (x->nef == PCAP_BATCH)
        return 1;
    rc = ca_ws_snap_flow(s, id, x->f);
    if (rc != 0)
        return rc;
    ca_export_flow_init(&x->ef[x->nef++], x->f);
    x->ef_cap = cap;
    x->last_taken = id;
    return 0;
}

static int pcap_batch(struct xp *x, int *dlt, int (*write)(void *, const void *, size_t),
                      void *wctx)
{
    char path[4200], err[256] = "";
    uint64_t written = 0;
    int rc, fdlt;

    rc = ca_ws_capture_file(x->w, x->ef_cap, path, sizeof(path));
    if (rc == 0)
        rc = ca_export_file_dlt(path, &fdlt, err, sizeof(err));
    if (rc != 0)
        return rc;
    if (*dlt < 0) {
        *dlt = fdlt;
        if (ca_export_pcap_header(fdlt, write, wctx) != 0)
            return CA_EIO;
    }
    if (fdlt != *dlt) {
        log_line("pcap export: capture %u has another link type; skipped", x->ef_cap);
        return 0;
    }
    return ca_export_pcap_flows(path, *dlt, x->ef, x->nef, write, wctx, &written, err, sizeof(err));
}

static int stream_pcap(void *arg, int (*write)(void *, const void *, size_t), void *wctx)
{
    struct xp *x = arg;
    uint64_t after = 0, last = 0;
    int dlt = -1, rc = 0;

    if (x->flow_id != 0) {
        rc = pcap_batch(x, &dlt, write, wctx);
        return rc != 0 ? -1 : 0;
    }
    for (;;) {
        uint64_t resume = after;

        x->nef = 0;
        x->last_taken = 0;
        /* One batch: flows of one capture, at most PCAP_BATCH. */
        for (;;) {
            rc = ca_query_each(x->q, resume, 1, row_pcap, x, &last);
            if (rc == 1) {
                rc = 0;
                break;
            }
            if (rc != 0 || last == 0)
                break;
            resume = last;
        }
        ca_query_release(x->q);
        if (rc != 0 || x->nef == 0)
            break;
        rc = pcap_batch(x, &dlt, write, wctx);
        if (rc != 0)
            break;
        /* Rows between the last one taken and where the scan stopped did
         * not match (or belong to the next batch): resume from there. */
        after = x->last_taken;
        rc = ca_query_refresh(x->q);
        if (rc != 0)
            break;
    }
    if (dlt < 0 && rc == 0 && ca_export_pcap_header(1, write, wctx) != 0)
        rc = CA_EIO; /* nothing matched: an empty pcap */
    return rc != 0 ? -1 : 0;
}

static int parse_format(const char *s)
{
    if (s == NULL || strcmp(s, "csv") == 0)
        return FMT_CSV;
    if (strcmp(s, "jsonl") == 0)
        return FMT_JSONL;
    if (strcmp(s, "pcap") == 0)
        return FMT_PCAP;
    return -1;
}

int h_export(struct request *r, json_t **out)
{
    static const char *const types[] = {"text/csv; charset=utf-8", "application/x-ndjson",
                                        "application/vnd.tcpdump.pcap"};
    static const char *const exts[] = {"csv", "jsonl", "pcap"};
    int fmt = parse_format(http_kv_get(r->query, r->nquery, "format"));
    struct xp *x;
    int st;

    if (fmt < 0)
        return errmap_fail(out, 400, "format", "format must be csv, jsonl or pcap");
    x = calloc(1, sizeof(*x));
    if (x == NULL || (x->f = malloc(sizeof(*x->f))) == NULL ||
        (fmt == FMT_PCAP && (x->ef = calloc(PCAP_BATCH, sizeof(*x->ef))) == NULL)) {
        xp_free(x);
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    }
    x->fmt = fmt;
    st = h_query_open(r, &x->w, &x->q, out);
    if (st != 0) {
        xp_free(x);
        return st;
    }
    r->stream_fn = fmt == FMT_PCAP ? stream_pcap : stream_text;
    r->stream_arg = x;
    r->stream_free = xp_free;
    r->stream_type = types[fmt];
    snprintf(r->stream_name, sizeof(r->stream_name), "workspace-%llu-flows.%s",
             (unsigned long long)r->ids[0], exts[fmt]);
    *out = json_object();
    return 200;
}

int h_flow_pcap(struct request *r, json_t **out)
{
    struct xp *x;
    char err[256] = "";
    int st, rc;

    st = h_workspace_check(r, r->ids[0], NULL, out);
    if (st != 0)
        return st;
    x = calloc(1, sizeof(*x));
    if (x == NULL || (x->f = malloc(sizeof(*x->f))) == NULL ||
        (x->ef = calloc(1, sizeof(*x->ef))) == NULL) {
        xp_free(x);
        return errmap_reply(out, CA_ENOMEM, NULL, NULL);
    }
    rc = ca_ws_open(r->conf->data, r->ids[0], &x->w, err, sizeof(err));
    if (rc == 0)
        rc = ca_ws_flow_get(x->w, r->ids[1], x->f);
    if (rc == CA_ENOTFOUND) {
        xp_free(x);
        return errmap_fail(out, 404, NULL, "no such flow");
    }
    if (rc < 0) {
        xp_free(x);
        return errmap_reply(out, rc, NULL, err[0] ? err : "could not read the flow");
    }
    x->fmt = FMT_PCAP;
    x->flow_id = r->ids[1];
    x->nef = 1;
    x->ef_cap = x->f->capture_id;
    ca_export_flow_init(&x->ef[0], x->f);
    r->stream_fn = stream_pcap;
    r->stream_arg = x;
    r->stream_free = xp_free;
    r->stream_type = "application/vnd.tcpdump.pcap";
    snprintf(r->stream_name, sizeof(r->stream_name), "flow-%llu.pcap",
             (unsigned long long)r->ids[1]);
    *out = json_object();
    return 200;
}

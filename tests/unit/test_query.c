/*
 * Query engine against brute force: random flows go into a real workspace
 * store, and every answer (summary, aggregate, timeline, paged flows with
 * cursors) is compared with the same computation done directly on the
 * struct ca_flow array with a C predicate equivalent to the filter.
 * A capture that never finished importing must not show anywhere.
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "query.h"
#include "query_internal.h"
#include "store.h"
#include "unit.h"

#define NFLOWS 6000

static struct ca_flow *flows;
static struct ca_ws *ws;
static char datadir[] = "/tmp/capatlas-query-XXXXXX";

static const char *const protos[] = {"TLS.Azure", "TLS", "DNS", "HTTP.Google", "Unknown"};

static void gen(void)
{
    unsigned seed = 12345;

    flows = calloc(NFLOWS, sizeof(*flows));
    for (int i = 0; i < NFLOWS; i++) {
        struct ca_flow *f = &flows[i];

        seed = seed * 1103515245 + 12345;
        f->ip_version = 4;
        f->l4 = (seed >> 8) % 3 == 0 ? 17 : 6;
        f->cli_ip[0] = 10;
        f->cli_ip[3] = (uint8_t)(seed % 50);
        f->srv_ip[0] = 93;
        f->srv_ip[3] = (uint8_t)((seed >> 4) % 200);
        f->cli_port = (uint16_t)(40000 + seed % 2000);
        f->srv_port = (seed >> 6) % 4 == 0 ? 53 : 443;
        f->first_ns = 1709287200LL * 1000000000LL + (int64_t)(seed % 86400) * 1000000000LL;
        f->last_ns = f->first_ns + (int64_t)((seed >> 3) % 120) * 1000000000LL;
        f->bytes[0] = (seed >> 5) % 5000;
        f->bytes[1] = (seed >> 7) % 50000;
        f->pkts[0] = 1 + (seed >> 9) % 20;
        f->pkts[1] = (seed >> 11) % 40;
        snprintf(f->l7_name, sizeof(f->l7_name), "%s", protos[(seed >> 13) % 5]);
        snprintf(f->host, sizeof(f->host), "h%u.example.com", (seed >> 15) % 30);
        memcpy(f->srv_cc, (seed >> 17) % 2 ? "US" : "DE", 3);
        memcpy(f->cli_cc, "--", 3);
        f->srv_asn = (seed >> 19) % 3 + 100;
        if (i % 16 == 5) {
            /* internal traffic: 10.0.0.7 is client and server (and in another AS as a
             * server), sometimes of itself */
            f->srv_ip[0] = 10;
            f->srv_ip[3] = (uint8_t)(i % 64 == 5 ? 7 : (seed >> 4) % 60);
            f->srv_asn = f->srv_ip[3] == 7 ? 100 : 0;
        }
        f->tcp_state = f->l4 == 6 ? CA_TCP_ESTABLISHED : 0;
    }
}

static uint64_t fbytes(const struct ca_flow *f)
{
    return f->bytes[0] + f->bytes[1];
}

static int p_all(const struct ca_flow *f)
{
    return 1;
}
static int p_tls_big(const struct ca_flow *f)
{
    return strncmp(f->l7_name, "TLS", 3) == 0 && fbytes(f) > 10000;
}
static int p_ip(const struct ca_flow *f)
{
    return (f->cli_ip[0] == 10 && f->cli_ip[3] == 7) || (f->srv_ip[0] == 10 && f->srv_ip[3] == 7);
}
static int p_us_dns(const struct ca_flow *f)
{
    return strcmp(f->srv_cc, "US") == 0 && !(f->srv_port == 53) && f->l4 == 6;
}
static int p_host(const struct ca_flow *f)
{
    return strcmp(f->host, "h3.example.com") == 0 || f->srv_asn == 101;
}
static int p_not7(const struct ca_flow *f)
{
    return !p_ip(f);
}

static const struct {
    const char *filter;
    int (*pred)(const struct ca_flow *f);
} cases[] = {
    {"", p_all},
    {"proto == TLS and bytes > 10KB", p_tls_big},
    {"ip == 10.0.0.7", p_ip},
    {"dst.country == US and not dst.port == 53 and l4 == tcp", p_us_dns},
    {"host == h3.example.com or asn == 101", p_host},
};

static void test_summary_aggregate(void)
{
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct ca_query *q = NULL;
        json_t *s = NULL, *a = NULL;
        uint64_t n = 0, bytes = 0, pk = 0, tls = 0;
        char err[256];
        int pos;
        uint8_t seen[256] = {0};
        uint64_t nsrc = 0;

        for (int i = 0; i < NFLOWS; i++) {
            if (!cases[c].pred(&flows[i]))
                continue;
            n++;
            bytes += fbytes(&flows[i]);
            pk += flows[i].pkts[0] + flows[i].pkts[1];
            if (strcmp(flows[i].l7_name, "TLS") == 0)
                tls++;
            if (!seen[flows[i].cli_ip[3]]++)
                nsrc++;
        }
        CHECK(ca_query_open(ws, cases[c].filter, &q, err, sizeof(err), &pos) == 0);
        if (q == NULL)
            continue;
        CHECK(ca_query_summary(q, &s) == 0);
        CHECK_EQ_U(json_integer_value(json_object_get(s, "flows")), n);
        CHECK_EQ_U(json_integer_value(json_object_get(s, "bytes")), bytes);
        CHECK_EQ_U(json_integer_value(json_object_get(s, "packets")), pk);
        CHECK_EQ_U(json_integer_value(json_object_get(s, "src_ips")), nsrc);
        CHECK(ca_query_aggregate(q, "proto", "flows,bytes,src_ips", 0, NULL, &a, err, sizeof(err),
                                 NULL) == 0);
        {
            json_t *rows = json_object_get(a, "rows"), *row;
            size_t i;
            uint64_t sum = 0, got_tls = 0;

            json_array_foreach(rows, i, row)
            {
                sum += (uint64_t)json_integer_value(json_object_get(row, "flows"));
                if (strcmp(json_string_value(json_array_get(json_object_get(row, "key"), 0)),
                           "TLS") == 0)
                    got_tls = (uint64_t)json_integer_value(json_object_get(row, "flows"));
            }
            CHECK_EQ_U(sum, n);
            CHECK_EQ_U(got_tls, tls);
            CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(a, "total"), "src_ips")),
                       nsrc);
        }
        json_decref(a);
        a = NULL;
        /* top-3 + other adds up */
        CHECK(ca_query_aggregate(q, "dst,dst.port", NULL, 3, "bytes", &a, err, sizeof(err), NULL) ==
              0);
        {
            uint64_t sum = 0;
            json_t *row;
            size_t i;

            json_array_foreach(json_object_get(a, "rows"), i, row) sum +=
                (uint64_t)json_integer_value(json_object_get(row, "bytes"));
            sum +=
                (uint64_t)json_integer_value(json_object_get(json_object_get(a, "other"), "bytes"));
            CHECK_EQ_U(sum, bytes);
        }
        json_decref(a);
        json_decref(s);
        ca_query_close(q);
    }
}

static int cmp_bytes_desc(const void *x, const void *y)
{
    const struct ca_flow *a = *(const struct ca_flow *const *)x;
    const struct ca_flow *b = *(const struct ca_flow *const *)y;

    if (fbytes(a) != fbytes(b))
        return fbytes(a) > fbytes(b) ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static void test_pages(void)
{
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        const struct ca_flow **exp = calloc(NFLOWS, sizeof(*exp));
        size_t n = 0, got = 0;
        char cursor[128] = "", err[256];
        int pos, ok = 1;

        for (int i = 0; i < NFLOWS; i++)
            if (cases[c].pred(&flows[i]))
                exp[n++] = &flows[i];
        qsort(exp, n, sizeof(*exp), cmp_bytes_desc);
        for (int page = 0; page < 1000; page++) {
            struct ca_query *q = NULL;
            json_t *res = NULL, *row, *next;
            size_t i;
            int more;

            CHECK(ca_query_open(ws, cases[c].filter, &q, err, sizeof(err), &pos) == 0);
            CHECK(ca_query_flows(q, "bytes", 1, 250, cursor[0] ? cursor : NULL, "bytes", &res, err,
                                 sizeof(err), NULL) == 0);
            ca_query_close(q);
            if (res == NULL)
                break;
            CHECK_EQ_U(json_integer_value(json_object_get(res, "total")), n);
            json_array_foreach(json_object_get(res, "flows"), i, row)
            {
                uint64_t id = (uint64_t)json_integer_value(json_object_get(row, "id"));

                if (got >= n || id != exp[got]->id)
                    ok = 0;
                got++;
            }
            next = json_object_get(res, "next");
            more = json_is_string(next);
            if (more)
                snprintf(cursor, sizeof(cursor), "%s", json_string_value(next));
            json_decref(res);
            if (!more)
                break;
        }
        CHECK(ok);
        CHECK_EQ_U(got, n);
        free(exp);
    }
}

static void test_timeline(void)
{
    struct ca_query *q = NULL;
    json_t *t = NULL, *b;
    uint64_t sum = 0;
    size_t i;
    char err[128];
    int pos;

    CHECK(ca_query_open(ws, "l4 == udp", &q, err, sizeof(err), &pos) == 0);
    CHECK(ca_query_timeline(q, 100, 0, 0, &t, err, sizeof(err), NULL) == 0);
    /* one day in at most 100 bins: 15-minute bins */
    CHECK_EQ_U(json_integer_value(json_object_get(t, "bin_ns")), 900LL * 1000000000LL);
    json_array_foreach(json_object_get(t, "bins"), i, b) sum +=
        (uint64_t)json_integer_value(json_object_get(b, "flows"));
    {
        uint64_t n = 0;

        for (int k = 0; k < NFLOWS; k++)
            n += flows[k].l4 == 17;
        CHECK_EQ_U(sum, n);
    }
    json_decref(t);
    ca_query_close(q);
}

/* Timelines against brute force: minute sums (bins of a minute or more) and a short span's
 * second pass (finer bins). */
static int64_t t0_ns;

static int p_first30(const struct ca_flow *f)
{
    return f->first_ns < t0_ns + 1800LL * 1000000000LL;
}
static int p_udp(const struct ca_flow *f)
{
    return f->l4 == 17;
}

static void test_timeline_bins(void)
{
    static const struct {
        const char *filter;
        int (*pred)(const struct ca_flow *);
        int bins;
        int64_t bin_ns;
    } tc[] = {
        {"start < 30m", p_first30, 1000, 5}, /* 5 s bins: a second pass */
        {"start < 30m", p_first30, 20, 300}, /* 5-minute bins from minutes */
        {"l4 == udp", p_udp, 2000, 60},      {"proto == TLS and bytes > 10KB", p_tls_big, 7, 21600},
        {"ip == 10.0.0.7", p_ip, 100, 900},
    };

    t0_ns = flows[0].first_ns;
    for (int i = 1; i < NFLOWS; i++)
        if (flows[i].first_ns < t0_ns)
            t0_ns = flows[i].first_ns;
    for (size_t c = 0; c < sizeof(tc) / sizeof(tc[0]); c++) {
        struct ca_query *q = NULL;
        json_t *res = NULL, *b;
        char err[256];
        int pos, ok = 1;
        int64_t first = INT64_MAX, bin, start;
        size_t i, nb;
        uint64_t *fl, *by;

        for (int k = 0; k < NFLOWS; k++)
            if (tc[c].pred(&flows[k]) && flows[k].first_ns < first)
                first = flows[k].first_ns;
        CHECK(ca_query_open(ws, tc[c].filter, &q, err, sizeof(err), &pos) == 0);
        if (q == NULL)
            continue;
        CHECK(ca_query_timeline(q, tc[c].bins, 0, 0, &res, err, sizeof(err), NULL) == 0);
        ca_query_close(q);
        if (res == NULL)
            continue;
        bin = json_integer_value(json_object_get(res, "bin_ns"));
        start = json_integer_value(json_object_get(res, "start_ns"));
        CHECK_EQ_U(bin, tc[c].bin_ns * 1000000000LL);
        CHECK_EQ_U(start, first / bin * bin);
        nb = json_array_size(json_object_get(res, "bins"));
        fl = calloc(nb + 1, sizeof(*fl));
        by = calloc(nb + 1, sizeof(*by));
        for (int k = 0; k < NFLOWS; k++) {
            int64_t x;

            if (!tc[c].pred(&flows[k]))
                continue;
            x = (flows[k].first_ns - start) / bin;
            if (x < 0 || (size_t)x >= nb) {
                ok = 0;
                continue;
            }
            fl[x]++;
            by[x] += fbytes(&flows[k]);
        }
        json_array_foreach(json_object_get(res, "bins"), i, b)
        {
            if ((uint64_t)json_integer_value(json_object_get(b, "flows")) != fl[i] ||
                (uint64_t)json_integer_value(json_object_get(b, "bytes")) != by[i]) {
                if (ok)
                    printf("# timeline [%s] bins %d: bin %zu differs\n", tc[c].filter, tc[c].bins,
                           i);
                ok = 0;
            }
        }
        CHECK(ok);
        free(fl);
        free(by);
        json_decref(res);
    }
}

/*
 * Unfiltered answers come from the per-capture tables, filtered ones from
 * a scan: "bytes >= 0" matches every flow but is not empty, so the same
 * answers must come out of both paths, for every group field.
 */
static const char *const tab_by[] = {"src",         "dst",
                                     "ip",          "port",
                                     "src.port",    "dst.port",
                                     "port.bucket", "proto",
                                     "l4",          "category",
                                     "country",     "src.country",
                                     "dst.country", "asn",
                                     "src.asn",     "dst.asn",
                                     "host",        "vlan",
                                     "hour",        "day",
                                     "weekday",     "duration.bucket",
                                     "tcp.state"};
#define NTAB (sizeof(tab_by) / sizeof(tab_by[0]))

/* Every answer the tables may give, for one filter (one read transaction at a time). */
static json_t *tab_answers_in(struct ca_ws *w, const char *filter)
{
    struct ca_query *q = NULL;
    json_t *all = json_array(), *a = NULL;
    char err[256];
    int pos;

    CHECK(ca_query_open(w, filter, &q, err, sizeof(err), &pos) == 0);
    if (q == NULL)
        return all;
    for (size_t i = 0; i < NTAB; i++) {
        CHECK(ca_query_aggregate(q, tab_by[i], "flows,bytes,sent,recv,packets,duration", 0, "bytes",
                                 &a, err, sizeof(err), NULL) == 0);
        json_array_append_new(all, a != NULL ? a : json_null());
    }
    CHECK(ca_query_summary(q, &a) == 0);
    json_array_append_new(all, a != NULL ? a : json_null());
    for (int bins = 2; bins <= 2000; bins *= 10) {
        CHECK(ca_query_timeline(q, bins, 0, 0, &a, err, sizeof(err), NULL) == 0);
        json_array_append_new(all, a != NULL ? a : json_null());
    }
    /* three pages each way, by bytes and by first packet */
    for (int k = 0; k < 4; k++) {
        char cursor[128] = "";

        for (int page = 0; page < 3; page++) {
            json_t *next;

            CHECK(ca_query_flows(q, k < 2 ? "bytes" : "first", k % 2, 100,
                                 cursor[0] ? cursor : NULL, "bytes,first", &a, err, sizeof(err),
                                 NULL) == 0);
            next = json_object_get(a, "next");
            snprintf(cursor, sizeof(cursor), "%s",
                     json_is_string(next) ? json_string_value(next) : "");
            json_array_append_new(all, a != NULL ? a : json_null());
        }
    }
    ca_query_close(q);
    return all;
}

static json_t *tab_answers(const char *filter)
{
    return tab_answers_in(ws, filter);
}

/* Whether two lists of answers are equal; prints the first that is not. */
static int answers_equal(json_t *a, json_t *b, const char *what)
{
    if (json_array_size(a) != json_array_size(b)) {
        printf("# %s: %zu answers against %zu\n", what, json_array_size(a), json_array_size(b));
        return 0;
    }
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (!json_equal(json_array_get(a, i), json_array_get(b, i))) {
            char *x = json_dumps(json_array_get(a, i), JSON_COMPACT);
            char *y = json_dumps(json_array_get(b, i), JSON_COMPACT);

            printf("# %s: answer %zu (%s) differs:\n# %.300s\n# %.300s\n", what, i,
                   i < NTAB ? tab_by[i] : "summary/timeline/flows", x, y);
            free(x);
            free(y);
            return 0;
        }
    }
    return 1;
}

/*
 * Unfiltered answers come from the per-capture tables, filtered ones from
 * a scan: "bytes >= 0" matches every flow but is not empty, so both paths
 * must give the same answers, for every group field.
 */
static void test_tables_equal_scan(void)
{
    json_t *a = tab_answers(""), *b = tab_answers("bytes >= 0");

    CHECK(answers_equal(a, b, "tables against a scan"));
    json_decref(a);
    json_decref(b);
}

/*
 * The same flows in workspaces whose import cut the capture's tables into
 * parts of 1,000 flows or more: once by the import's builder (batches of
 * 100, committed 16 at a time, a part after each commit), once built from
 * the hot chunks by another handle at the finish.  Every answer, from the
 * tables, from an address's lists or from a scan, equals the one-part
 * workspace's.
 */
static struct ca_ws *ws_parts[2];
static char *ws_parts_name[2] = {"parts from the import", "parts from the hot chunks"};

static void test_parts(void)
{
    static const char *const filters[] = {"",
                                          "bytes >= 0",
                                          "ip == 10.0.0.7",
                                          "ip == 10.0.0.7 or ip == 93.0.0.12",
                                          "proto == TLS and bytes > 10KB",
                                          "host == h3.example.com or asn == 101"};

    for (int k = 0; k < 2; k++) {
        struct ca_ws_snap *s = NULL;

        CHECK(ws_parts[k] != NULL);
        if (ws_parts[k] == NULL)
            continue;
        CHECK_EQ_U(ca_ws_snap_open(ws_parts[k], &s), 0);
        /* 6,000 flows: 4 parts of 1,600 or less, or 6 of 1,000 */
        CHECK_EQ_U(s != NULL ? ca_ws_snap_parts(s, 1) : 0, k == 0 ? 4 : 6);
        /* every table of the one-part capture is there (so that the
         * answers below come from them): the parted ones in every part */
        if (s != NULL) {
            struct ca_ws_snap *one = NULL;
            size_t kinds = 0;

            CHECK_EQ_U(ca_ws_snap_open(ws, &one), 0);
            for (unsigned kind = 0; one != NULL && kind < 255; kind++) {
                const void *d;
                size_t len;

                if (ca_ws_snap_capagg(one, 1, kind, &d, &len) != 0)
                    continue;
                kinds++;
                for (uint32_t part = 0; part < ca_ws_snap_parts(s, 1); part++)
                    if (part == 0 || cq_tab_parted(kind))
                        CHECK_EQ_U(ca_ws_snap_capagg_part(s, 1, part, kind, &d, &len), 0);
                CHECK(ca_ws_snap_capagg_part(s, 1, 99, kind, &d, &len) != 0);
            }
            CHECK(kinds >= 25);
            ca_ws_snap_close(one);
        }
        ca_ws_snap_close(s);
        for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
            json_t *a = tab_answers(filters[i]), *b = tab_answers_in(ws_parts[k], filters[i]);
            char what[160];

            snprintf(what, sizeof(what), "%s, filter \"%s\"", ws_parts_name[k], filters[i]);
            CHECK(answers_equal(a, b, what));
            json_decref(a);
            json_decref(b);
        }
    }
}

/* Imports the flows into a new workspace with tables in parts (test_parts). */
static struct ca_ws *import_parts(struct ca_portal *portal, int other_handle)
{
    struct ca_ws *w = NULL;
    uint64_t wsid;
    uint32_t cap = 0;
    json_t *meta = json_pack("{s:s}", "name", "one.pcap");
    char err[256];

    if (ca_workspace_create(portal, 1, other_handle ? "p2" : "p1", NULL, &wsid, err, sizeof(err)) !=
            0 ||
        ca_ws_open(datadir, wsid, &w, err, sizeof(err)) != 0) {
        json_decref(meta);
        return NULL;
    }
    ca_ws_capture_add(w, meta, &cap);
    json_decref(meta);
    ca_ws_set_part_flows(1000);
    for (int i = 0; i < NFLOWS; i += 100)
        ca_ws_flows_put(w, cap, flows + i, 100);
    if (other_handle) {
        ca_ws_close(w);
        w = NULL;
        if (ca_ws_open(datadir, wsid, &w, err, sizeof(err)) != 0)
            w = NULL;
    }
    if (w != NULL && ca_ws_capture_finish(w, cap, NULL) != 0) {
        ca_ws_close(w);
        w = NULL;
    }
    ca_ws_set_part_flows(0);
    return w;
}

/* ---- distinct addresses per group against brute force ----------------- */

struct dtrip {
    char key[64];
    int side;
    uint32_t addr;
};

static int dtrip_cmp(const void *x, const void *y)
{
    const struct dtrip *a = x, *b = y;
    int c = strcmp(a->key, b->key);

    if (c != 0)
        return c;
    if (a->side != b->side)
        return a->side - b->side;
    return (a->addr > b->addr) - (a->addr < b->addr);
}

static void dkey(const char *by, const struct ca_flow *f, char *buf, size_t len)
{
    if (strcmp(by, "proto") == 0)
        snprintf(buf, len, "%s", f->l7_name);
    else if (strcmp(by, "host") == 0)
        snprintf(buf, len, "%s", f->host);
    else
        snprintf(buf, len, "%u", f->cli_port);
}

/* src_ips and dst_ips of every group (by proto: bitmaps; by src.port, with more groups than
 * get bitmaps: the hash set too) and of the total. */
static void test_distinct(void)
{
    static const char *const bys[] = {"proto", "host", "src.port"};
    struct dtrip *t = calloc(2 * NFLOWS, sizeof(*t));

    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        for (size_t b = 0; b < sizeof(bys) / sizeof(bys[0]); b++) {
            struct ca_query *q = NULL;
            json_t *res = NULL, *row;
            char err[256];
            int pos, ok = 1;
            size_t n = 0, i, ngroups = 0;

            for (int k = 0; k < NFLOWS; k++) {
                const struct ca_flow *f = &flows[k];

                if (!cases[c].pred(f))
                    continue;
                for (int side = 0; side < 2; side++) {
                    dkey(bys[b], f, t[n].key, sizeof(t[n].key));
                    t[n].side = side;
                    memcpy(&t[n].addr, side == 0 ? f->cli_ip : f->srv_ip, 4);
                    n++;
                }
            }
            qsort(t, n, sizeof(*t), dtrip_cmp);
            CHECK(ca_query_open(ws, cases[c].filter, &q, err, sizeof(err), &pos) == 0);
            if (q == NULL)
                continue;
            CHECK(ca_query_aggregate(q, bys[b], "flows,src_ips,dst_ips", 0, NULL, &res, err,
                                     sizeof(err), NULL) == 0);
            ca_query_close(q);
            if (res == NULL)
                continue;
            json_array_foreach(json_object_get(res, "rows"), i, row)
            {
                json_t *kv = json_array_get(json_object_get(row, "key"), 0);
                char key[64];
                uint64_t cnt[2] = {0, 0};

                if (json_is_string(kv))
                    snprintf(key, sizeof(key), "%s", json_string_value(kv));
                else
                    snprintf(key, sizeof(key), "%lld", (long long)json_integer_value(kv));
                for (size_t k = 0; k < n; k++)
                    if (strcmp(t[k].key, key) == 0 && (k == 0 || dtrip_cmp(&t[k], &t[k - 1]) != 0))
                        cnt[t[k].side]++;
                if ((uint64_t)json_integer_value(json_object_get(row, "src_ips")) != cnt[0] ||
                    (uint64_t)json_integer_value(json_object_get(row, "dst_ips")) != cnt[1]) {
                    if (ok)
                        printf("# distinct [%s] by %s: group %s differs\n", cases[c].filter, bys[b],
                               key);
                    ok = 0;
                }
                ngroups++;
            }
            {
                uint64_t cnt[2] = {0, 0};
                json_t *tot = json_object_get(res, "total");

                for (size_t k = 0; k < n; k++) {
                    size_t j;

                    for (j = 0; j < k; j++)
                        if (t[j].side == t[k].side && t[j].addr == t[k].addr)
                            break;
                    if (j == k)
                        cnt[t[k].side]++;
                }
                CHECK_EQ_U(json_integer_value(json_object_get(tot, "src_ips")), cnt[0]);
                CHECK_EQ_U(json_integer_value(json_object_get(tot, "dst_ips")), cnt[1]);
            }
            if (c == 0 && strcmp(bys[b], "src.port") == 0)
                CHECK(ngroups > 1024); /* past the per-group bitmaps */
            CHECK(ok);
            json_decref(res);
        }
    }
    free(t);
}

/* ---- host graph against brute force ------------------------------------ */

#define GMAX 512

struct bnode {
    char key[64];
    uint64_t flows, bytes;
    char cc[3];
};

struct bgraph {
    struct bnode n[GMAX];
    size_t nn;
    struct {
        size_t a, b;
        uint64_t flows, bytes;
    } e[NFLOWS];
    size_t ne;
};

static void glabel(int grouping, const uint8_t *ip, uint32_t asn, char *buf, size_t len)
{
    if (grouping == 0)
        snprintf(buf, len, "%u.%u.%u.%u", ip[0], ip[1], ip[2], ip[3]);
    else if (grouping == 1)
        snprintf(buf, len, "%u.%u.%u.0/24", ip[0], ip[1], ip[2]);
    else if (asn != 0)
        snprintf(buf, len, "AS%u", asn);
    else
        snprintf(buf, len, "unknown AS");
}

static size_t bnode_of(struct bgraph *g, const char *key)
{
    for (size_t i = 0; i < g->nn; i++)
        if (strcmp(g->n[i].key, key) == 0)
            return i;
    if (g->nn == GMAX)
        return GMAX - 1; /* cannot happen with the test's flows */
    memset(&g->n[g->nn], 0, sizeof(g->n[0]));
    snprintf(g->n[g->nn].key, sizeof(g->n[0].key), "%s", key);
    return g->nn++;
}

/* Nodes and edges of grouping (0 host, 1 /24, 2 ASN) over the matching flows, in id order. */
static void brute_graph(int (*pred)(const struct ca_flow *), int grouping, struct bgraph *g)
{
    g->nn = g->ne = 0;
    for (int i = 0; i < NFLOWS; i++) {
        const struct ca_flow *f = &flows[i];
        char ks[64], kd[64];
        size_t s, d, k;

        if (!pred(f))
            continue;
        glabel(grouping, f->cli_ip, f->cli_asn, ks, sizeof(ks));
        glabel(grouping, f->srv_ip, f->srv_asn, kd, sizeof(kd));
        s = bnode_of(g, ks);
        d = bnode_of(g, kd);
        g->n[s].flows++;
        g->n[s].bytes += fbytes(f);
        memcpy(g->n[s].cc, f->cli_cc, 3);
        if (d != s) {
            g->n[d].flows++;
            g->n[d].bytes += fbytes(f);
            memcpy(g->n[d].cc, f->srv_cc, 3);
        }
        for (k = 0; k < g->ne; k++)
            if (g->e[k].a == s && g->e[k].b == d)
                break;
        if (k == g->ne) {
            g->e[g->ne].a = s;
            g->e[g->ne].b = d;
            g->e[g->ne].flows = g->e[g->ne].bytes = 0;
            g->ne++;
        }
        g->e[k].flows++;
        g->e[k].bytes += fbytes(f);
    }
}

static const struct bnode *bfind(const struct bgraph *g, const char *key)
{
    for (size_t i = 0; i < g->nn; i++)
        if (strcmp(g->n[i].key, key) == 0)
            return &g->n[i];
    return NULL;
}

/* ca_query_graph against brute force, for every filter of cases and several node limits. */
static void graph_vs_brute(void)
{
    static const char *const gnames[] = {"host", "/24", "asn"};
    static const size_t maxes[] = {1000, 150, 3, 2, 1};
    static struct bgraph bg;

    for (size_t c = 0; c <= sizeof(cases) / sizeof(cases[0]); c++) {
        const char *filter =
            c < sizeof(cases) / sizeof(cases[0]) ? cases[c].filter : "not ip == 10.0.0.7";
        int (*pred)(const struct ca_flow *) =
            c < sizeof(cases) / sizeof(cases[0]) ? cases[c].pred : p_not7;

        for (size_t m = 0; m < sizeof(maxes) / sizeof(maxes[0]); m++) {
            struct ca_query *q = NULL;
            json_t *res = NULL, *node, *edge, *nodes, *edges;
            char err[256];
            int pos, grouping, ok = 1;
            size_t i, nexp = 0;
            uint64_t minb = UINT64_MAX;

            for (grouping = 0; grouping < 3; grouping++) {
                brute_graph(pred, grouping, &bg);
                if (bg.nn <= maxes[m] || grouping == 2)
                    break;
            }
            CHECK(ca_query_open(ws, filter, &q, err, sizeof(err), &pos) == 0);
            if (q == NULL)
                continue;
            CHECK(ca_query_graph(q, maxes[m], &res) == 0);
            ca_query_close(q);
            if (res == NULL)
                continue;
            CHECK(strcmp(json_string_value(json_object_get(res, "grouping")), gnames[grouping]) ==
                  0);
            nodes = json_object_get(res, "nodes");
            edges = json_object_get(res, "edges");
            CHECK_EQ_U(json_array_size(nodes), bg.nn < maxes[m] ? bg.nn : maxes[m]);
            /* each node as brute force has it; the kept ones are the heaviest */
            json_array_foreach(nodes, i, node)
            {
                const struct bnode *b = bfind(&bg, json_string_value(json_object_get(node, "id")));

                if (b == NULL ||
                    (uint64_t)json_integer_value(json_object_get(node, "flows")) != b->flows ||
                    (uint64_t)json_integer_value(json_object_get(node, "bytes")) != b->bytes ||
                    strcmp(json_string_value(json_object_get(node, "country")), b->cc) != 0) {
                    if (ok)
                        printf("# graph [%s] max %zu: node %zu (%s) differs\n", filter, maxes[m], i,
                               json_string_value(json_object_get(node, "id")));
                    ok = 0;
                    continue;
                }
                if (b->bytes < minb)
                    minb = b->bytes;
            }
            for (size_t k = 0; k < bg.nn; k++) {
                int kept = 0;

                json_array_foreach(nodes, i, node) kept |=
                    strcmp(json_string_value(json_object_get(node, "id")), bg.n[k].key) == 0;
                if (!kept && bg.n[k].bytes > minb)
                    ok = 0;
            }
            /* the edges are exactly brute force's between kept nodes */
            for (size_t k = 0; k < bg.ne; k++) {
                int ka = 0, kb = 0;

                json_array_foreach(nodes, i, node)
                {
                    const char *id = json_string_value(json_object_get(node, "id"));

                    ka |= strcmp(id, bg.n[bg.e[k].a].key) == 0;
                    kb |= strcmp(id, bg.n[bg.e[k].b].key) == 0;
                }
                if (ka && kb)
                    nexp++;
            }
            CHECK_EQ_U(json_array_size(edges), nexp);
            json_array_foreach(edges, i, edge)
            {
                const char *sid = json_string_value(json_object_get(edge, "source"));
                const char *did = json_string_value(json_object_get(edge, "target"));
                size_t k;

                for (k = 0; k < bg.ne; k++)
                    if (strcmp(bg.n[bg.e[k].a].key, sid) == 0 &&
                        strcmp(bg.n[bg.e[k].b].key, did) == 0)
                        break;
                if (k == bg.ne ||
                    (uint64_t)json_integer_value(json_object_get(edge, "flows")) != bg.e[k].flows ||
                    (uint64_t)json_integer_value(json_object_get(edge, "bytes")) != bg.e[k].bytes) {
                    if (ok)
                        printf("# graph [%s] max %zu: edge %s -> %s differs\n", filter, maxes[m],
                               sid, did);
                    ok = 0;
                }
            }
            if (!ok)
                printf("# graph [%s] max %zu (%s) differs from brute force\n", filter, maxes[m],
                       gnames[grouping]);
            CHECK(ok);
            json_decref(res);
        }
    }
}

static void test_graph(void)
{
    graph_vs_brute();
}

/*
 * The graph's fallbacks give the same answers: more matching flows than
 * it keeps from its first scan (a second scan adds up the edges), and an
 * address id it cannot index (the scan starts again, by address), apart
 * and together.
 */
static void test_graph_fallbacks(void)
{
    struct ca_query *q = NULL;
    char err[256];
    int pos;
    uint32_t n = 0;

    CHECK(ca_query_open(ws, "", &q, err, sizeof(err), &pos) == 0);
    if (q != NULL)
        n = ca_ws_snap_addr_max(ca_query_snap(q));
    ca_query_close(q);
    CHECK(n > 8);
    /* the highest id only (met late in a scan), half of them, a few */
    const size_t trips[] = {5, 0, 0, 0, 5};
    const uint32_t aids[] = {0, n - 1, n / 2, 3, n / 2};

    for (size_t i = 0; n > 8 && i < sizeof(trips) / sizeof(trips[0]); i++) {
        cq_graph_limits(trips[i], aids[i]);
        graph_vs_brute();
    }
    cq_graph_limits(0, 0);
}

static void test_bad_filter(void)
{
    struct ca_query *q = NULL;
    char err[128];
    int pos = -1;

    CHECK(ca_query_open(ws, "port == 80 and nope > 1", &q, err, sizeof(err), &pos) == CA_EINVAL);
    CHECK_EQ_U(pos, 15);
    CHECK(q == NULL);
}

static void test_delete(void)
{
    struct ca_query *q = NULL;
    json_t *s = NULL;
    char err[128];
    int pos;

    CHECK(ca_ws_capture_delete(ws, 1) == 0);
    CHECK(ca_query_open(ws, "", &q, err, sizeof(err), &pos) == 0);
    CHECK(ca_query_summary(q, &s) == 0);
    CHECK_EQ_U(json_integer_value(json_object_get(s, "flows")), 0);
    json_decref(s);
    ca_query_close(q);
}

/*
 * A capture whose clock jumps by a century: flows of ~4 * 10^18 ns.  Their
 * durations summed (tables, scans, the "other" row) are held at the int64
 * limit instead of overflowing (UB, which the sanitizer build stops on).
 */
static void test_huge_durations(void)
{
    static const char *const aggs[][2] = {{"proto", ""},
                                          {"proto", "duration > 1h"},
                                          {"duration.bucket", ""},
                                          {"src,proto", "l4 == tcp"}};
    struct ca_flow f[4];
    struct ca_query *q = NULL;
    json_t *meta, *out = NULL;
    uint32_t cap = 0;
    char err[256];
    int pos;

    memset(f, 0, sizeof(f));
    for (int i = 0; i < 4; i++) {
        f[i] = flows[0]; /* one client: every group below holds the 4 */
        f[i].cli_port = (uint16_t)(50000 + i);
        f[i].first_ns = (int64_t)i;
        f[i].last_ns = 4000000000000000000LL + i;
        f[i].l4 = 6;
        snprintf(f[i].l7_name, sizeof(f[i].l7_name), "TLS");
    }
    meta = json_pack("{s:s}", "name", "clock.pcap");
    CHECK(ca_ws_capture_add(ws, meta, &cap) == 0);
    json_decref(meta);
    CHECK(ca_ws_flows_put(ws, cap, f, 4) == 0);
    CHECK(ca_ws_capture_finish(ws, cap, NULL) == 0);
    for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]); i++) {
        json_t *row;
        double d;

        CHECK(ca_query_open(ws, aggs[i][1], &q, err, sizeof(err), &pos) == 0);
        if (q == NULL)
            continue;
        CHECK(ca_query_aggregate(q, aggs[i][0], "flows,duration", 1, NULL, &out, err, sizeof(err),
                                 NULL) == 0);
        row = json_array_get(json_object_get(out, "rows"), 0);
        d = json_number_value(json_object_get(row, "duration"));
        if (!(d > 9.2e9 && d < 9.3e9))
            printf("#   %s / '%s': duration %g s\n", aggs[i][0], aggs[i][1], d);
        CHECK(d > 9.2e9 && d < 9.3e9); /* INT64_MAX ns */
        json_decref(out);
        out = NULL;
        ca_query_close(q);
        q = NULL;
    }
}

static int rm_one(const char *p, const struct stat *st, int t, struct FTW *ftw)
{
    return remove(p);
}

int main(void)
{
    struct ca_portal *portal = NULL;
    uint64_t wsid;
    uint32_t cap = 0, cap2 = 0;
    json_t *meta;
    char err[256];

    if (mkdtemp(datadir) == NULL || ca_portal_open(datadir, &portal, err, sizeof(err)) != 0 ||
        ca_workspace_create(portal, 1, "q", NULL, &wsid, err, sizeof(err)) != 0 ||
        ca_ws_open(datadir, wsid, &ws, err, sizeof(err)) != 0) {
        printf("Bail out! setup: %s\n", err);
        return 1;
    }
    gen();
    meta = json_pack("{s:s}", "name", "one.pcap");
    ca_ws_capture_add(ws, meta, &cap);
    ca_ws_capture_add(ws, meta, &cap2);
    json_decref(meta);
    /* batches of 1000 like the engine's, ids assigned by the store */
    for (int i = 0; i < NFLOWS; i += 1000)
        ca_ws_flows_put(ws, cap, flows + i, 1000);
    for (int i = 0; i < NFLOWS; i++)
        flows[i].id = (uint64_t)cap << 32 | (uint32_t)(i + 1);
    ca_ws_capture_finish(ws, cap, NULL);
    /* an unfinished import: invisible */
    ca_ws_flows_put(ws, cap2, flows, 500);
    ws_parts[0] = import_parts(portal, 0);
    ws_parts[1] = import_parts(portal, 1);
    unit_run("query: summary and aggregates equal brute force", test_summary_aggregate);
    unit_run("query: keyset pages sorted by bytes equal brute force", test_pages);
    unit_run("query: timeline bins and counts", test_timeline);
    unit_run("query: timeline bins equal brute force", test_timeline_bins);
    unit_run("query: pre-computed tables answer like a scan", test_tables_equal_scan);
    unit_run("query: tables in parts answer like tables in one", test_parts);
    unit_run("query: distinct addresses per group equal brute force", test_distinct);
    unit_run("query: host graph and its groupings equal brute force", test_graph);
    unit_run("query: host graph fallbacks (too many flows, an address without an index) equal "
             "brute force",
             test_graph_fallbacks);
    unit_run("query: a bad filter names its column", test_bad_filter);
    unit_run("query: a deleted capture leaves nothing", test_delete);
    unit_run("query: durations of a hostile clock are held at the limit", test_huge_durations);
    ca_ws_close(ws);
    ca_ws_close(ws_parts[0]);
    ca_ws_close(ws_parts[1]);
    ca_portal_close(portal);
    free(flows);
    nftw(datadir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return unit_done();
}

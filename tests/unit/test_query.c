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
static json_t *tab_answers(const char *filter)
{
    struct ca_query *q = NULL;
    json_t *all = json_array(), *a = NULL;
    char err[256];
    int pos;

    CHECK(ca_query_open(ws, filter, &q, err, sizeof(err), &pos) == 0);
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

/*
 * Unfiltered answers come from the per-capture tables, filtered ones from
 * a scan: "bytes >= 0" matches every flow but is not empty, so both paths
 * must give the same answers, for every group field.
 */
static void test_tables_equal_scan(void)
{
    json_t *a = tab_answers(""), *b = tab_answers("bytes >= 0");

    CHECK_EQ_U(json_array_size(a), json_array_size(b));
    for (size_t i = 0; i < json_array_size(a); i++) {
        if (!json_equal(json_array_get(a, i), json_array_get(b, i))) {
            char *x = json_dumps(json_array_get(a, i), JSON_COMPACT);
            char *y = json_dumps(json_array_get(b, i), JSON_COMPACT);

            printf("# answer %zu (%s) differs:\n# %.300s\n# %.300s\n", i,
                   i < NTAB ? tab_by[i] : "summary/timeline/flows", x, y);
            free(x);
            free(y);
            CHECK(0);
        }
    }
    json_decref(a);
    json_decref(b);
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
    unit_run("query: summary and aggregates equal brute force", test_summary_aggregate);
    unit_run("query: keyset pages sorted by bytes equal brute force", test_pages);
    unit_run("query: timeline bins and counts", test_timeline);
    unit_run("query: pre-computed tables answer like a scan", test_tables_equal_scan);
    unit_run("query: a bad filter names its column", test_bad_filter);
    unit_run("query: a deleted capture leaves nothing", test_delete);
    ca_ws_close(ws);
    ca_portal_close(portal);
    free(flows);
    nftw(datadir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return unit_done();
}

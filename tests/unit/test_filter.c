/*
 * Filter language: valid and invalid queries (with the error column), and
 * every field and operator checked on hand-made hot records.
 */
#include <string.h>

#include "ca_error.h"
#include "filter.h"
#include "unit.h"

/* A tiny string table: 1 "www.example.com", 2 "example.com", 3 "TLS.Azure",
 * 4 "DNS", 5 "Web", 6 "Known Proto on Non Std Port,Self-signed Cert". */
static const struct {
    int kind;
    const char *s;
} strs[] = {{0, ""},
            {CA_STR_HOST, "www.example.com"},
            {CA_STR_HOST, "example.com"},
            {CA_STR_PROTO, "TLS.Azure"},
            {CA_STR_PROTO, "DNS"},
            {CA_STR_CATEGORY, "Web"},
            {CA_STR_RISKS, "Known Proto on Non Std Port,Self-signed Cert"}};

static int t_strings(void *arg, int kind, int (*fn)(void *a, uint32_t id, const char *s), void *a)
{
    for (uint32_t i = 1; i < sizeof(strs) / sizeof(strs[0]); i++)
        if (strs[i].kind == kind)
            fn(a, i, strs[i].s);
    return 0;
}

static uint32_t t_max(void *arg)
{
    return 6;
}

static int t_cap(void *arg, const char *name, uint32_t *id)
{
    if (strcmp(name, "office.pcap") != 0)
        return CA_ENOTFOUND;
    *id = 7;
    return 0;
}

static const struct ca_filter_env env = {NULL, t_strings, t_max, t_cap};

static struct ca_hot flow_a(void)
{
    struct ca_hot h;

    memset(&h, 0, sizeof(h));
    h.ip_version = 4;
    h.l4 = 6;
    memcpy(h.src, "\x0a\x00\x00\x05", 4); /* 10.0.0.5 */
    memcpy(h.dst, "\x5d\xb8\xd8\x22", 4); /* 93.184.216.34 */
    h.src_port = 51000;
    h.dst_port = 443;
    h.first_ns = 1709287200LL * 1000000000LL; /* 2024-03-01T10:00:00Z, a Friday */
    h.last_ns = h.first_ns + 45LL * 1000000000LL;
    h.sent_bytes = 2000;
    h.recv_bytes = 1500000;
    h.sent_pkts = 10;
    h.recv_pkts = 1100;
    h.src_asn = 0;
    h.dst_asn = 15133;
    memcpy(h.src_cc, "--", 2);
    memcpy(h.dst_cc, "US", 2);
    h.host_id = 1;
    h.proto_id = 3;
    h.cat_id = 5;
    h.risks_id = 6;
    h.nrisks = 2;
    h.vlan = 10;
    h.tcp_state = CA_TCP_CLOSED;
    return h;
}

/* Row i of a batch: flow_a with fields varied so that most tests go both ways. */
static struct ca_hot flow_var(unsigned i)
{
    static const uint16_t ports[] = {443, 80, 53, 51000, 22, 445};
    static const char *const ccs[] = {"US", "--", "DE", "FR"};
    struct ca_hot h = flow_a();
    unsigned x = i * 2654435761u;

    h.dst_port = ports[i % 6];
    h.src_port = ports[(i / 6) % 6];
    h.l4 = (uint8_t)((x >> 3) % 3 == 0 ? 17 : 6);
    h.proto_id = (x >> 5) % 5; /* 0..4: none, hosts, TLS.Azure, DNS */
    h.host_id = (x >> 7) % 3;  /* none, www.example.com, example.com */
    h.cat_id = (x >> 9) % 2 ? 5 : 0;
    h.risks_id = (x >> 11) % 2 ? 6 : 0;
    h.nrisks = h.risks_id ? 2 : 0;
    h.sent_bytes = (uint64_t)(x >> 13) % 5000000;
    h.recv_bytes = (uint64_t)(x >> 4) % 3000000;
    h.sent_pkts = (x >> 6) % 2000;
    h.recv_pkts = (x >> 8) % 2000;
    h.first_ns += (int64_t)((x >> 10) % 7200) * 1000000000LL;
    h.last_ns = h.first_ns + (int64_t)((x >> 12) % 120) * 1000000000LL;
    memcpy(h.src_cc, ccs[(x >> 14) % 4], 2);
    memcpy(h.dst_cc, ccs[(x >> 16) % 4], 2);
    h.dst_asn = (x >> 18) % 2 ? 15133 : 8075;
    h.vlan = (uint16_t)((x >> 20) % 2 ? 10 : 0);
    h.tcp_state = (uint8_t)((x >> 21) % 4);
    if ((x >> 22) % 3 == 0)
        h.src[3] = 6; /* 10.0.0.6 */
    if ((x >> 23) % 4 == 0)
        memcpy(h.dst, "\x01\x02\x03\x04", 4);
    if ((x >> 24) % 8 == 0) {
        h.ip_version = 6;
        memset(h.src, 0, 16);
        memcpy(h.src, "\x20\x01\x0d\xb8", 4);
        h.src[15] = 1;
    }
    return h;
}

/*
 * ca_filter_select over a batch of varied rows picks exactly the rows
 * ca_filter_match accepts, in order; returns how many (-1: disagreement).
 */
static int batch_agrees(const struct ca_filter *f)
{
    enum { N = 300 };
    static struct ca_hot rows[N];
    uint32_t sel[N];
    size_t k, j = 0;
    int bad = 0;

    for (unsigned i = 0; i < N; i++)
        rows[i] = flow_var(i);
    k = ca_filter_select(f, rows, N, 7, rows[0].first_ns - 60LL * 1000000000LL, sel);
    for (unsigned i = 0; i < N; i++) {
        struct ca_filter_row row = {&rows[i], 7, rows[0].first_ns - 60LL * 1000000000LL};

        if (ca_filter_match(f, &row) == 1) {
            if (j >= k || sel[j] != i)
                bad = 1;
            j++;
        }
    }
    return bad || j != k ? -1 : (int)k;
}

static int match(const char *text)
{
    struct ca_filter *f = NULL;
    struct ca_hot h = flow_a();
    struct ca_filter_row row = {&h, 7, h.first_ns - 60LL * 1000000000LL};
    char err[256];
    int pos, m;

    if (ca_filter_compile(text, &env, &f, err, sizeof(err), &pos) != 0) {
        printf("#   compile failed: %s: %s at %d\n", text, err, pos);
        return -1;
    }
    m = ca_filter_match(f, &row);
    if (batch_agrees(f) < 0) {
        printf("#   batch selection disagrees with row matching: %s\n", text);
        m = -2;
    }
    ca_filter_free(f);
    return m;
}

static int errpos(const char *text)
{
    struct ca_filter *f = NULL;
    char err[256] = "";
    int pos = -1;

    if (ca_filter_compile(text, &env, &f, err, sizeof(err), &pos) == 0) {
        ca_filter_free(f);
        return -100;
    }
    CHECK(err[0] != '\0');
    return pos;
}

static void test_fields(void)
{
    static const char *const yes[] = {
        "",
        "ip == 10.0.0.5",
        "src == 10.0.0.0/8",
        "dst == 93.184.216.0/24 and not src == 93.184.216.0/24",
        "ip in (1.2.3.4, 93.184.216.34)",
        "ip != 1.2.3.4",
        "port == 443",
        "dst.port == 400-500",
        "src.port > 50000",
        "port in (22, 440-450)",
        "l4 == tcp",
        "l4 == 6",
        "proto == TLS",
        "proto == azure",
        "proto == TLS.Azure",
        "proto ~ zur",
        "category == web",
        "host == www.example.com",
        "host == *.example.com",
        "host ~ EXAMPLE",
        "country == us",
        "dst.country == US and src.country == --",
        "asn == 15133",
        "dst.asn == 15133",
        "bytes > 1.5MB",
        "bytes < 2MiB",
        "sent == 2KB",
        "recv >= 1500000",
        "packets == 1110",
        "sent.packets < recv.packets",
        "sent < recv",
        "duration == 45s",
        "duration > 30s and duration < 1m",
        "start == 2024-03-01T10:00:00Z",
        "start >= 2024-03-01T11:00:00+01:00",
        "start < 2024-03-02",
        "end > 2024-03-01T10:00:44.5Z",
        "start == +60s",
        "start < 2m",
        "hour == 10",
        "hour in (9-17)",
        "day == 2024-03-01",
        "weekday == fri",
        "capture == 7",
        "capture == \"office.pcap\"",
        "vlan == 10",
        "tcp.state == closed",
        "risk > 0",
        "risk == 2",
        "risk == \"Self-signed Cert\"",
        "risk ~ self",
        "ip.version == 4",
        "(port == 80 or port == 443) and !(l4 == udp)",
        "port == 80 || port == 443 && l4 == tcp",
        "NOT port == 80 AND l4 = tcp",
    };
    static const char *const no[] = {
        "ip == 10.0.0.6",
        "ip == 2001:db8::/32",
        "src == 93.184.216.34",
        "port == 80",
        "ip != 10.0.0.5",
        "l4 == udp",
        "proto == DNS",
        "proto == TL",
        "host == example.com",
        "host == *.example.org",
        "country == DE",
        "src.country == US",
        "bytes > 2MB",
        "duration > 1m",
        "start > 2024-03-01T10:00:00Z",
        "start > +61s",
        "hour == 11",
        "weekday == sat",
        "capture == 8",
        "tcp.state == reset",
        "risk == 0",
        "risk == \"Known Proto\"",
        "not (port == 443)",
        "sent > recv",
    };

    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        int m = match(yes[i]);

        if (m != 1)
            printf("#   expected a match: %s (%d)\n", yes[i], m);
        CHECK(m == 1);
    }
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        int m = match(no[i]);

        if (m != 0)
            printf("#   expected no match: %s (%d)\n", no[i], m);
        CHECK(m == 0);
    }
}

static void test_ipv6(void)
{
    struct ca_filter *f = NULL;
    struct ca_hot h = flow_a();
    struct ca_filter_row row = {&h, 1, 0};
    char err[128];
    int pos;

    h.ip_version = 6;
    memset(h.src, 0, 16);
    memcpy(h.src, "\x20\x01\x0d\xb8", 4);
    h.src[15] = 1;
    CHECK(ca_filter_compile("src == 2001:db8::/32", &env, &f, err, sizeof(err), &pos) == 0);
    CHECK(ca_filter_match(f, &row) == 1);
    ca_filter_free(f);
    CHECK(ca_filter_compile("ip == 2001:db8::1", &env, &f, err, sizeof(err), &pos) == 0);
    CHECK(ca_filter_match(f, &row) == 1);
    ca_filter_free(f);
    /* an IPv4 prefix never matches an IPv6 flow */
    CHECK(ca_filter_compile("src == 32.1.13.184/32", &env, &f, err, sizeof(err), &pos) == 0);
    CHECK(ca_filter_match(f, &row) == 0);
    ca_filter_free(f);
}

/* Batches over varied rows: and-chains reordered, leaves both ways. */
static void test_batch(void)
{
    static const char *const filters[] = {
        "proto == TLS and bytes > 10KB",
        "bytes > 10KB and proto == TLS",
        "proto == TLS and bytes > 10KB and port == 443",
        "country in (US, DE) and not l4 == udp",
        "dst.port == 443 and src.country == -- and dst.asn == 15133",
        "host == *.example.com and (sent > 1MB or recv < 1KB)",
        "ip == 10.0.0.5 and port in (22, 80-443)",
        "category == web and risk > 0 and vlan == 10",
        "hour in (10-11) and duration < 1m and tcp.state == closed",
        "start > +30m and not (proto == DNS or port == 53)",
        "ip == 2001:db8::1 or dst == 1.2.3.4",
        "port == 51000",
        "proto == nosuchproto",
    };
    int some = 0, none = 0;

    for (size_t i = 0; i < sizeof(filters) / sizeof(filters[0]); i++) {
        struct ca_filter *f = NULL;
        char err[256];
        int pos, k;

        CHECK(ca_filter_compile(filters[i], &env, &f, err, sizeof(err), &pos) == 0);
        if (f == NULL)
            continue;
        k = batch_agrees(f);
        if (k < 0)
            printf("#   batch selection disagrees with row matching: %s\n", filters[i]);
        CHECK(k >= 0);
        some += k > 0 && k < 300;
        none += k == 0;
        ca_filter_free(f);
    }
    /* the rows vary enough for the tests to go both ways */
    CHECK(some >= 10);
    CHECK(none >= 1);
}

static void test_errors(void)
{
    CHECK_EQ_U(errpos("bogus == 1"), 0);
    CHECK_EQ_U(errpos("port == 80 and bogus == 1"), 15);
    CHECK_EQ_U(errpos("port == eighty"), 8);
    CHECK_EQ_U(errpos("port ="), 6);
    CHECK_EQ_U(errpos("port 80"), 5);
    CHECK_EQ_U(errpos("(port == 80"), 0);
    CHECK_EQ_U(errpos("port == 80)"), 10);
    CHECK_EQ_U(errpos("port == 80 port == 81"), 11);
    CHECK_EQ_U(errpos("ip == 300.1.2.3"), 6);
    CHECK_EQ_U(errpos("ip < 10.0.0.1"), 3);
    CHECK_EQ_U(errpos("bytes ~ 10"), 6);
    CHECK_EQ_U(errpos("bytes > 10XB"), 8);
    CHECK_EQ_U(errpos("start > yesterday"), 8);
    CHECK_EQ_U(errpos("host == \"abc"), 8);
    CHECK_EQ_U(errpos("port in (80, 443"), 16);
    CHECK_EQ_U(errpos("port in 80"), 8);
    CHECK_EQ_U(errpos("hour == 24"), 8);
    CHECK_EQ_U(errpos("country == USA"), 11);
    CHECK_EQ_U(errpos("capture == \"nope.pcap\""), 11);
    CHECK_EQ_U(errpos("tcp.state == open"), 13);
    CHECK_EQ_U(errpos("port == 90-80"), 8);
    CHECK_EQ_U(errpos("l4 == tcp and"), 13);
    CHECK_EQ_U(errpos("port == 1 & b"), 10);
}

int main(void)
{
    unit_run("filter: every field and operator", test_fields);
    unit_run("filter: IPv6 and CIDR", test_ipv6);
    unit_run("filter: errors carry the column of the bad token", test_errors);
    unit_run("filter: batch selection picks the rows row matching picks", test_batch);
    return unit_done();
}

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
    return unit_done();
}

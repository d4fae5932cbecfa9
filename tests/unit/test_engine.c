/*
 * Flow engine tests on the shared corpus: packet/byte totals against
 * capinfos, flow counts against ndpiReader, the direction rule, every
 * supported link type and encapsulation, damaged and non-capture files,
 * and the flow codec.  Figures were measured with `capinfos -c -d` and
 * `ndpiReader -i FILE` (see MANIFEST.tsv).
 */
#include <stdio.h>
#include <stdlib.h>
#include <pthread.h>
#include <spawn.h>
#include <sys/wait.h>
#include <string.h>
#include <unistd.h>

#include <zlib.h>

#include <arpa/inet.h>
#include <maxminddb.h>
#include <pcap/pcap.h>

#include "ca_error.h"
#include "capture.h"
#include "engine.h"
#include "flow.h"
#include "geo.h"
#include "unit.h"

struct coll {
    struct ca_flow *f;
    size_t n, cap;
};

static int collect(void *arg, const struct ca_flow *flows, size_t n)
{
    struct coll *c = arg;

    if (c->n + n > c->cap) {
        size_t nc = (c->n + n) * 2;
        struct ca_flow *p = realloc(c->f, nc * sizeof(*p));
        if (p == NULL)
            return CA_ENOMEM;
        c->f = p;
        c->cap = nc;
    }
    memcpy(c->f + c->n, flows, n * sizeof(*flows));
    c->n += n;
    return 0;
}

static struct ca_engine *eng;

struct run {
    int rc;
    struct coll c;
    json_t *rep;
    char err[256];
};

static void run_file(const char *name, struct run *r)
{
    char path[1024];
    struct ca_import_req req;

    memset(r, 0, sizeof(*r));
    snprintf(path, sizeof(path), "%s/%s", unit_pcaps(), name);
    memset(&req, 0, sizeof(req));
    req.path = path;
    req.capture_id = 7;
    req.sink = collect;
    req.sink_arg = &r->c;
    r->rc = ca_engine_import(eng, &req, &r->rep, r->err, sizeof(r->err));
    if (r->rc != 0)
        printf("# %s: %s\n", name, r->err);
}

static void run_free(struct run *r)
{
    free(r->c.f);
    json_decref(r->rep);
}

static unsigned long long rep_int(const struct run *r, const char *k)
{
    return (unsigned long long)json_integer_value(json_object_get(r->rep, k));
}

static void check_totals(const char *name, unsigned long long pkts, unsigned long long bytes,
                         unsigned long long flows)
{
    struct run r;

    run_file(name, &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK(r.rep != NULL);
    if (r.rep != NULL) {
        CHECK_EQ_U(rep_int(&r, "packets"), pkts);
        CHECK_EQ_U(rep_int(&r, "bytes"), bytes);
        CHECK_EQ_U(rep_int(&r, "flows"), r.c.n);
        CHECK(json_is_false(json_object_get(r.rep, "partial")));
    }
    if (flows != (unsigned long long)-1)
        CHECK_EQ_U(r.c.n, flows);
    /* every packet is in a flow or counted as skipped */
    {
        unsigned long long in_flows = 0, skipped = 0;
        const char *k;
        json_t *v;
        for (size_t i = 0; i < r.c.n; i++)
            in_flows += r.c.f[i].pkts[0] + r.c.f[i].pkts[1];
        json_object_foreach(json_object_get(r.rep, "skipped"), k, v) skipped +=
            (unsigned long long)json_integer_value(v);
        CHECK_EQ_U(in_flows + skipped, pkts);
    }
    run_free(&r);
}

static const struct ca_flow *find(const struct run *r, const char *l4name, uint16_t port)
{
    uint8_t l4 = strcmp(l4name, "tcp") == 0 ? 6 : strcmp(l4name, "udp") == 0 ? 17 : 1;

    for (size_t i = 0; i < r->c.n; i++)
        if (r->c.f[i].l4 == l4 && (port == 0 || r->c.f[i].srv_port == port))
            return &r->c.f[i];
    return NULL;
}

/* capinfos figures; flow counts equal ndpiReader's on these captures */
static void test_totals_vs_capinfos_ndpi(void)
{
    check_totals("dns.pcap", 5, 536, 2);
    check_totals("google_ssl.pcap", 28, 9108, 1);
    check_totals("ocs.pcap", 946, 67385, 20);
    check_totals("android.pcap", 500, 133530, 63);
    check_totals("quic.pcap", 518, 348566, 10);
    check_totals("KakaoTalk_chat.pcap", 347, 71936, 38);
    check_totals("nats.pcap", 27, 2460, 2);
    check_totals("vxlan.pcap", 127, 85322, 4);
    check_totals("6in4tunnel.pcap", 127, 40293, 10);
    check_totals("ipv6_in_gtp.pcap", 2, 316, 2);
    check_totals("http_ipv6.pcap", 193, 66327, 15);
}

static void test_direction(void)
{
    struct run r;
    const struct ca_flow *f;
    char a[64];

    /* SYN sender is the client */
    run_file("google_ssl.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        f = &r.c.f[0];
        CHECK(strcmp(ca_addr_str(4, f->cli_ip, a, sizeof(a)), "172.31.3.224") == 0);
        CHECK_EQ_U(f->cli_port, 42835);
        CHECK_EQ_U(f->srv_port, 443);
        CHECK_EQ_U(f->pkts[0], 16);
        CHECK_EQ_U(f->pkts[1], 12);
        CHECK_EQ_U(f->bytes[0], 1512);
        CHECK_EQ_U(f->bytes[1], 7596);
        CHECK_EQ_U(f->tcp_state, CA_TCP_CLOSED);
        CHECK(strcmp(f->l7_name, "TLS.Google") == 0);
        CHECK_EQ_U(f->first_pkt_index, 1);
        CHECK_EQ_U(f->first_pkt_offset, 24);
        CHECK_EQ_U(f->capture_id, 7);
        CHECK(strcmp(f->encap, "eth/ipv4/tcp") == 0);
        CHECK((f->tcp_flags[0] & 0x02) && (f->tcp_flags[1] & 0x12) == 0x12);
    }
    run_free(&r);
    /* midstream: the ephemeral port is the client */
    run_file("KakaoTalk_chat.pcap", &r);
    f = NULL;
    for (size_t i = 0; i < r.c.n; i++)
        if (r.c.f[i].tcp_state == CA_TCP_MIDSTREAM)
            f = &r.c.f[i];
    CHECK(f != NULL);
    if (f != NULL)
        CHECK(f->cli_port > f->srv_port);
    run_free(&r);
}

static void test_link_types(void)
{
    struct run r;

    run_file("zeek/vlan-qinqinq.pcap", &r); /* triple VLAN */
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        CHECK_EQ_U(r.c.f[0].vlan, 30);
        CHECK(strcmp(r.c.f[0].encap, "eth/vlan:30/vlan:20/vlan:10/ipv4/tcp") == 0);
        CHECK(strcmp(r.c.f[0].l7_name, "HTTP") == 0);
    }
    run_free(&r);
    run_file("zeek/pppoe-over-qinq.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        CHECK_EQ_U(r.c.f[0].vlan, 3704);
        CHECK(strcmp(r.c.f[0].encap, "eth/vlan:3704/vlan:2474/pppoe/ipv4/tcp") == 0);
    }
    run_free(&r);
    run_file("zeek/linux_dlt_sll2.pcap", &r); /* SLL2, with ARP/RARP counted */
    CHECK_EQ_U(r.c.n, 2);
    CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(r.rep, "non_ip"), "arp")), 1);
    CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(r.rep, "skipped"), "non_ip")), 2);
    CHECK(strcmp(json_string_value(json_array_get(json_object_get(r.rep, "link_types"), 0)),
                 "LINUX_SLL2") == 0);
    run_free(&r);
    check_totals("dlt_ppp.pcap", 1, 1230, 1);
    check_totals("BGP_redist.pcap", 2, 322, 2); /* C_HDLC, one via MPLS */
    check_totals("zeek/nflog-http.pcap", 13, 3104, 1);
    check_totals("zeek/mpls-in-vlan.pcap", 3, 2533, 3);
    check_totals("nfsv3.pcap", 128, 22816, 8);   /* big-endian pcap */
    check_totals("psiphon3.pcap", 62, 11818, 1); /* DLT_RAW */
}

static void test_nanosecond(void)
{
    struct run r;

    run_file("zeek/get-to-ssh-server.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        CHECK_EQ_U(r.c.f[0].ts_nsec, 1);
        json_t *j = ca_flow_to_json(&r.c.f[0]);
        CHECK(j != NULL && strlen(json_string_value(json_object_get(j, "first"))) == 30);
        json_decref(j);
    }
    run_free(&r);
    run_file("zeek/vntag.pcap", &r); /* 1342606813.729856830: sub-microsecond digits kept */
    CHECK(r.c.n > 0);
    if (r.c.n > 0) {
        CHECK_EQ_U(r.c.f[0].ts_nsec, 1);
        CHECK_EQ_U(r.c.f[0].first_ns, 1342606813729856830LL);
        CHECK(strstr(r.c.f[0].encap, "vntag") != NULL);
    }
    run_free(&r);
}

static void test_tunnels_ipv6(void)
{
    struct run r;
    const struct ca_flow *f;

    run_file("zeek/ipv6-hbh-routing0.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        CHECK_EQ_U(r.c.f[0].ip_version, 6);
        CHECK_EQ_U(r.c.f[0].l4, 17);
    }
    run_free(&r);
    run_file("zeek/gre-sample.pcap", &r);
    f = find(&r, "tcp", 22);
    CHECK(f != NULL && strcmp(f->encap, "eth/ipv4/gre/ipv4/tcp") == 0);
    run_free(&r);
    run_file("zeek/geneve.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    run_free(&r);
    run_file("zeek/erspanII.pcap", &r);
    CHECK_EQ_U(r.c.n, 1);
    run_free(&r);
    run_file("ipv6_in_gtp.pcap", &r);
    CHECK_EQ_U(r.c.n, 2);
    CHECK(r.c.n > 0 && strstr(r.c.f[0].encap, "/gtp/ipv6/") != NULL);
    run_free(&r);
    run_file("zeek/ip6-ext-trunc.pcap", &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(r.c.n, 0);
    CHECK_EQ_U(rep_int(&r, "packets"), 1);
    run_free(&r);
}

static void test_damaged(void)
{
    struct run r;

    run_file("zeek/trunc-hdr.pcap", &r); /* a 1-byte record */
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(rep_int(&r, "packets"), 1);
    CHECK_EQ_U(r.c.n, 0);
    run_free(&r);
    run_file("fuzz-2021-10-13.pcap", &r); /* truncated after the first record */
    CHECK_EQ_U(r.rc, 0);
    CHECK(json_is_true(json_object_get(r.rep, "partial")));
    json_t *d = json_object_get(r.rep, "damage");
    CHECK(json_is_object(d));
    CHECK_EQ_U(json_integer_value(json_object_get(d, "packet")), 2);
    CHECK(json_string_value(json_object_get(d, "reason")) != NULL);
    run_free(&r);
    run_file("README.md", &r); /* not a capture */
    CHECK_EQ_U(r.rc, (unsigned long long)CA_EFORMAT);
    CHECK(strstr(r.err, "bad magic 0x") != NULL);
    run_free(&r);
    run_file("no-such-file.pcap", &r);
    CHECK_EQ_U(r.rc, (unsigned long long)CA_EIO);
    run_free(&r);
    /* interfaces with different snapshot lengths (libpcap refuses it; capinfos 18/4969) */
    run_file("zeek/gap-data-missing.pcapng", &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(rep_int(&r, "packets"), 18);
    CHECK_EQ_U(rep_int(&r, "bytes"), 4969);
    run_free(&r);
    /* pcapng offsets point at the packet's own block (EPB type 6) */
    run_file("zeek/pcapng-multi-interface.pcapng", &r);
    CHECK(r.c.n > 0);
    for (size_t i = 0; i < r.c.n; i++) {
        FILE *f;
        char path[1024];
        uint8_t b[4] = {0};
        snprintf(path, sizeof(path), "%s/zeek/pcapng-multi-interface.pcapng", unit_pcaps());
        f = fopen(path, "rb");
        CHECK(f != NULL);
        if (f == NULL)
            break;
        CHECK(fseek(f, (long)r.c.f[i].first_pkt_offset, SEEK_SET) == 0);
        CHECK(fread(b, 1, 4, f) == 4);
        CHECK(b[0] == 6 && b[1] == 0 && b[2] == 0 && b[3] == 0);
        fclose(f);
    }
    run_free(&r);
    run_file("badpackets.pcap", &r);
    CHECK_EQ_U(r.rc, 0);
    run_free(&r);
}

static void test_codec(void)
{
    struct run r;
    uint8_t buf[CA_FLOW_ENC_MAX];
    struct ca_flow back;

    run_file("ocs.pcap", &r);
    CHECK(r.c.n > 0);
    for (size_t i = 0; i < r.c.n; i++) {
        struct ca_flow f = r.c.f[i];
        strcpy(f.host, "example.org");
        strcpy(f.risks, "a,b");
        f.cli_asn = 64500;
        size_t n = ca_flow_encode(&f, buf);
        CHECK(n > 0 && n <= CA_FLOW_ENC_MAX);
        CHECK_EQ_U(ca_flow_decode(buf, n, &back), 0);
        CHECK(memcmp(&f, &back, sizeof(f)) == 0 ||
              (back.id == f.id && back.pkts[0] == f.pkts[0] && strcmp(back.host, f.host) == 0 &&
               back.cli_asn == f.cli_asn && back.first_ns == f.first_ns));
        /* an id set after encoding (the store's commit) decodes, the rest unchanged */
        {
            struct ca_flow g = f, back2;
            size_t n2 = ca_flow_encode_as(&g, 1, 7, buf);

            ca_flow_set_id(buf, 0x0000000700000123ULL);
            CHECK_EQ_U(ca_flow_decode(buf, n2, &back2), 0);
            CHECK_EQ_U(back2.id, 0x0000000700000123ULL);
            CHECK_EQ_U(back2.capture_id, 7);
            CHECK(back2.first_ns == f.first_ns && back2.pkts[1] == f.pkts[1] &&
                  strcmp(back2.host, f.host) == 0);
            n = ca_flow_encode(&f, buf);
        }
        /* every truncation is rejected */
        for (size_t k = 0; k < n; k += 7)
            CHECK_EQ_U(ca_flow_decode(buf, k, &back), (unsigned long long)CA_EFORMAT);
        /* trailing garbage and a bad version are rejected */
        buf[n] = 0;
        CHECK_EQ_U(ca_flow_decode(buf, n + 1, &back), (unsigned long long)CA_EFORMAT);
        buf[0] = 99;
        CHECK_EQ_U(ca_flow_decode(buf, n, &back), (unsigned long long)CA_EFORMAT);
    }
    /* random garbage never decodes into something out of range */
    srand(1);
    for (int t = 0; t < 2000; t++) {
        size_t n = (size_t)(rand() % 400);
        for (size_t k = 0; k < n; k++)
            buf[k] = (uint8_t)rand();
        buf[0] = 1;
        if (ca_flow_decode(buf, n, &back) == 0)
            CHECK(back.ip_version == 4 || back.ip_version == 6);
    }
    CHECK_EQ_U(ca_flow_decode(NULL, 0, &back), (unsigned long long)CA_EFORMAT);
    run_free(&r);
}

static void test_json(void)
{
    struct run r;

    run_file("google_ssl.pcap", &r);
    if (r.c.n == 1) {
        json_t *j = ca_flow_to_json(&r.c.f[0]);
        static const char *keys[] = {
            "id",           "capture",      "ip_version",     "l4",
            "src",          "dst",          "src_port",       "dst_port",
            "icmp_type",    "icmp_code",    "vlan",           "src_mac",
            "dst_mac",      "first",        "last",           "first_ns",
            "last_ns",      "duration",     "packets",        "bytes",
            "sent_packets", "recv_packets", "sent_bytes",     "recv_bytes",
            "sent_payload", "recv_payload", "sent_retrans",   "recv_retrans",
            "sent_gap",     "recv_gap",     "tcp_flags_sent", "tcp_flags_recv",
            "tcp_state",    "proto",        "proto_master",   "proto_app",
            "category",     "host",         "dns_name",       "user_agent",
            "tls_version",  "risks",        "src_country",    "dst_country",
            "src_asn",      "dst_asn",      "encap",          "first_packet",
            "first_offset"};
        CHECK(j != NULL);
        for (size_t i = 0; j != NULL && i < sizeof(keys) / sizeof(keys[0]); i++)
            if (json_object_get(j, keys[i]) == NULL) {
                printf("#   missing key %s\n", keys[i]);
                CHECK(0);
            }
        CHECK_EQ_U(json_object_size(j), sizeof(keys) / sizeof(keys[0]));
        CHECK(strcmp(json_string_value(json_object_get(j, "l4")), "tcp") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "src")), "172.31.3.224") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "tcp_state")), "closed") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "proto_master")), "TLS") == 0);
        CHECK(strcmp(json_string_value(json_object_get(j, "first")),
                     "2015-06-16T08:29:54.683939Z") == 0);
        json_decref(j);
    }
    run_free(&r);
}

static void test_geo_pdns(void)
{
    const char *db = getenv("CAPATLAS_GEO_DB");
    struct ca_engine_conf c;
    struct ca_engine *ge = NULL, *save = eng;
    char err[256];
    struct run r;
    int have_srv_cc = 0, have_dns = 0;

    if (db == NULL || *db == '\0')
        db = "docker/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/"
             "geo-whois-asn-country.mmdb";
    memset(&c, 0, sizeof(c));
    c.geo_db = db;
    if (ca_engine_open(&c, &ge, err, sizeof(err)) != 0) {
        printf("# skipped geo: %s\n", err);
        ge = NULL;
    }
    if (ge != NULL)
        eng = ge;
    run_file("android.pcap", &r);
    for (size_t i = 0; i < r.c.n; i++) {
        const struct ca_flow *f = &r.c.f[i];
        if (f->srv_cc[0] != '\0' && strcmp(f->srv_cc, "--") != 0)
            have_srv_cc++;
        if (f->dns_name[0] != '\0')
            have_dns++;
        if (f->ip_version == 4 && f->cli_ip[0] == 192 && f->cli_ip[1] == 168)
            CHECK(strcmp(f->cli_cc, "--") == 0);
    }
    printf("# android.pcap: %zu flows, %d with a server country, %d with a passive-DNS name\n",
           r.c.n, have_srv_cc, have_dns);
    CHECK(have_dns > 0);
    if (ge != NULL)
        CHECK(have_srv_cc > 0);
    run_free(&r);
    eng = save;
    ca_engine_close(ge);
}

/* The country of a in db, read straight from it (no cache): "" when none. */
static void direct_cc(MMDB_s *db, uint32_t a, char cc[3])
{
    struct sockaddr_in sin;
    MMDB_entry_data_s d;
    MMDB_lookup_result_s res;
    int merr = 0;

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(a);
    res = MMDB_lookup_sockaddr(db, (const struct sockaddr *)&sin, &merr);
    cc[0] = '\0';
    if (merr == MMDB_SUCCESS && res.found_entry &&
        MMDB_get_value(&res.entry, &d, "country_code", NULL) == MMDB_SUCCESS && d.has_data &&
        d.type == MMDB_DATA_TYPE_UTF8_STRING && d.data_size == 2) {
        memcpy(cc, d.utf8_string, 2);
        cc[2] = '\0';
    }
}

/*
 * Lookups through the caches (per address, per record, per /16 whose
 * whole range one network holds) give what the database gives: public
 * IPv4 addresses at random, many in the same /16s and /24s and some
 * again, with one database and with it as the ASN database too.
 */
static void test_geo_cache(void)
{
    const char *path = getenv("CAPATLAS_GEO_DB");
    uint64_t x = 88172645463325252ull;
    MMDB_s db;
    int bad = 0, n = 0;

    if (path == NULL || *path == '\0')
        path = "docker/node_modules/@ip-location-db/geo-whois-asn-country-mmdb/"
               "geo-whois-asn-country.mmdb";
    if (MMDB_open(path, MMDB_MODE_MMAP, &db) != MMDB_SUCCESS) {
        printf("# skipped: no geo database at %s\n", path);
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
        struct ca_geo *g = NULL;
        char err[256];

        CHECK(ca_geo_open(path, pass ? path : NULL, &g, err, sizeof(err)) == 0);
        if (g == NULL)
            break;
        for (int i = 0; i < 200000; i++) {
            uint32_t a;
            uint8_t addr[16] = {0};
            char got[3], want[3];
            uint32_t asn;

            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            a = (uint32_t)x;
            if (i % 4 == 1) /* the /16 of an address before */
                a = (a & 0xffff) | ((uint32_t)(x >> 40) & 0x3f) << 16 | 0x5a000000u;
            if (i % 4 == 2) /* the /24 of one */
                a = (a & 0xff) | 0x5a1b0000u | ((uint32_t)(x >> 48) & 0x3) << 8;
            addr[0] = (uint8_t)(a >> 24);
            addr[1] = (uint8_t)(a >> 16);
            addr[2] = (uint8_t)(a >> 8);
            addr[3] = (uint8_t)a;
            if (ca_geo_is_private(4, addr))
                continue;
            ca_geo_lookup(g, 4, addr, got, &asn);
            direct_cc(&db, a, want);
            n++;
            if (strcmp(got, want) != 0 && bad++ < 5)
                printf("# %u.%u.%u.%u: %s, the database says %s\n", addr[0], addr[1], addr[2],
                       addr[3], got, want);
        }
        ca_geo_close(g);
    }
    printf("# %d lookups, %d differ\n", n, bad);
    CHECK(n > 300000);
    CHECK(bad == 0);
    MMDB_close(&db);
}

/* per-application flow counts of `ndpiReader -i android.pcap` (nDPI 4.2) */
static void test_l7_vs_ndpireader(void)
{
    static const struct {
        const char *app;
        size_t n;
    } want[] = {{"Apple", 5},      {"DHCP", 2},    {"DHCPV6", 1},  {"DNS", 2},
                {"DataSaver", 13}, {"Dropbox", 1}, {"Google", 17}, {"GoogleServices", 7},
                {"ICMPV6", 4},     {"MDNS", 2},    {"NTP", 1},     {"PlayStore", 4},
                {"SSDP", 2},       {"Spotify", 1}, {"TLS", 1}};
    struct run r;

    run_file("android.pcap", &r);
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        size_t n = 0;
        for (size_t k = 0; k < r.c.n; k++) {
            const char *name = r.c.f[k].l7_name, *dot = strchr(name, '.');
            if (strcmp(dot != NULL ? dot + 1 : name, want[i].app) == 0)
                n++;
        }
        if (n != want[i].n)
            printf("#   %s: %zu flows, ndpiReader %zu\n", want[i].app, n, want[i].n);
        CHECK_EQ_U(n, want[i].n);
    }
    run_free(&r);
}

/* Whole file into memory; NULL when unreadable. */
static uint8_t *slurp(const char *name, size_t *len)
{
    char path[1024];
    uint8_t *buf = NULL;
    long n;
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", unit_pcaps(), name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = buf != NULL ? (size_t)n : 0;
    return buf;
}

/* gzip-compresses in[0..n) into a new buffer (two members when split). */
static uint8_t *gzip_buf(const uint8_t *in, size_t n, size_t *out_len, int split)
{
    size_t cap = n + n / 2 + 1024, used = 0;
    uint8_t *out = malloc(cap);
    size_t parts[2] = {split ? n / 2 : n, split ? n - n / 2 : 0};
    const uint8_t *p = in;

    for (int k = 0; k < 2 && out != NULL; k++) {
        z_stream z;
        if (parts[k] == 0 && k > 0)
            break;
        memset(&z, 0, sizeof(z));
        if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            break;
        z.next_in = (uint8_t *)(uintptr_t)p;
        z.avail_in = (uInt)parts[k];
        z.next_out = out + used;
        z.avail_out = (uInt)(cap - used);
        deflate(&z, Z_FINISH);
        used = cap - z.avail_out;
        deflateEnd(&z);
        p += parts[k];
    }
    *out_len = used;
    return out;
}

static void run_fp(FILE *fp, struct run *r)
{
    struct ca_import_req req;

    memset(r, 0, sizeof(*r));
    memset(&req, 0, sizeof(req));
    req.path = "stream";
    req.fp = fp;
    req.capture_id = 7;
    req.sink = collect;
    req.sink_arg = &r->c;
    r->rc = ca_engine_import(eng, &req, &r->rep, r->err, sizeof(r->err));
    if (r->rc != 0)
        printf("# stream: %s\n", r->err);
}

static int same_flows(const struct run *a, const struct run *b)
{
    if (a->c.n != b->c.n)
        return 0;
    for (size_t i = 0; i < a->c.n; i++) {
        const struct ca_flow *x = &a->c.f[i], *y = &b->c.f[i];
        if (x->pkts[0] != y->pkts[0] || x->pkts[1] != y->pkts[1] || x->bytes[0] != y->bytes[0] ||
            x->first_pkt_offset != y->first_pkt_offset || x->first_ns != y->first_ns ||
            strcmp(x->l7_name, y->l7_name) != 0)
            return 0;
    }
    return 1;
}

struct feeder {
    int fd;
    const uint8_t *buf;
    size_t len;
};

static void *feed(void *arg)
{
    struct feeder *f = arg;
    size_t off = 0;

    while (off < f->len) { /* small writes: the reader sees short reads */
        size_t n = f->len - off < 777 ? f->len - off : 777;
        ssize_t w = write(f->fd, f->buf + off, n);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
    close(f->fd);
    return NULL;
}

/* FILE* input (memory, pipe) and gzip by content, equal to the plain file */
static void test_streams_gzip(void)
{
    static const char *names[] = {"ocs.pcap", "http2.pcapng", "dns.pcap", "zeek/nflog-http.pcap"};

    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        struct run plain, mem, gz, gz2, piped;
        size_t len = 0, zlen = 0, z2len = 0;
        uint8_t *buf = slurp(names[k], &len), *zbuf, *z2buf;
        FILE *fp;

        CHECK(buf != NULL);
        if (buf == NULL)
            continue;
        zbuf = gzip_buf(buf, len, &zlen, 0);
        z2buf = gzip_buf(buf, len, &z2len, 1);
        run_file(names[k], &plain);
        CHECK_EQ_U(plain.rc, 0);

        fp = fmemopen(buf, len, "rb");
        run_fp(fp, &mem);
        fclose(fp);
        CHECK_EQ_U(mem.rc, 0);
        CHECK(same_flows(&plain, &mem));

        fp = fmemopen(zbuf, zlen, "rb");
        run_fp(fp, &gz);
        fclose(fp);
        CHECK_EQ_U(gz.rc, 0);
        CHECK(same_flows(&plain, &gz));
        CHECK(gz.rep != NULL && json_is_true(json_object_get(gz.rep, "gzip")));

        fp = fmemopen(z2buf, z2len, "rb"); /* two concatenated members */
        run_fp(fp, &gz2);
        fclose(fp);
        CHECK(same_flows(&plain, &gz2));

        {
            int pfd[2];
            pthread_t th;
            struct feeder fd;
            CHECK(pipe(pfd) == 0);
            fd.fd = pfd[1];
            fd.buf = zbuf;
            fd.len = zlen;
            pthread_create(&th, NULL, feed, &fd);
            fp = fdopen(pfd[0], "rb");
            run_fp(fp, &piped);
            fclose(fp);
            pthread_join(th, NULL);
            CHECK_EQ_U(piped.rc, 0);
            CHECK(same_flows(&plain, &piped));
        }
        /* a truncated gzip keeps what precedes the damage */
        if (k == 0) {
            struct run tr;
            fp = fmemopen(zbuf, zlen / 2, "rb");
            run_fp(fp, &tr);
            fclose(fp);
            CHECK_EQ_U(tr.rc, 0);
            CHECK(tr.rep != NULL && json_is_true(json_object_get(tr.rep, "partial")));
            CHECK(tr.c.n > 0);
            run_free(&tr);
        }
        run_free(&plain);
        run_free(&mem);
        run_free(&gz);
        run_free(&gz2);
        run_free(&piped);
        free(buf);
        free(zbuf);
        free(z2buf);
    }
    /* gzip of something that is not a capture */
    {
        static const uint8_t text[] = "<html>not a capture</html>";
        size_t zlen;
        uint8_t *z = gzip_buf(text, sizeof(text), &zlen, 0);
        struct run r;
        FILE *fp = fmemopen(z, zlen, "rb");
        run_fp(fp, &r);
        fclose(fp);
        CHECK(r.rc == CA_EFORMAT);
        CHECK(strstr(r.err, "after gzip decompression") != NULL);
        run_free(&r);
        free(z);
    }
}

/*
 * A stream (a FILE, plain or gzip) is read in big pieces: glibc gives an
 * unbuffered cookie FILE's fread one byte per read call, which once made
 * every stdin, gzip and URL import cost 10x the CPU of a file's.
 */
static void test_stream_reads(void)
{
    size_t len = 0, zlen = 0;
    uint8_t *buf = slurp("ocs.pcap", &len), *zbuf;

    CHECK(buf != NULL && len > 65536);
    if (buf == NULL)
        return;
    zbuf = gzip_buf(buf, len, &zlen, 0);
    for (int gz = 0; gz < 2; gz++) {
        FILE *fp = gz ? fmemopen(zbuf, zlen, "rb") : fmemopen(buf, len, "rb");
        struct ca_capture *c = NULL;
        char err[256];
        unsigned long long pkts = 0;
        int r = -1;

        CHECK_EQ_U(ca_capture_open_fp(fp, &c, err, sizeof(err)), 0);
        if (c == NULL) {
            fclose(fp);
            continue;
        }
        for (;;) {
            struct ca_capture_pkt pkt;

            r = ca_capture_next(c, &pkt, err, sizeof(err));
            if (r != 1)
                break;
            pkts++;
        }
        CHECK_EQ_U(r, 0);
        CHECK(pkts > 100);
        CHECK_EQ_U(ca_capture_gzip(c), (unsigned long long)gz);
        /* a few reads per 256 KiB (plus the peek and the end), not one per byte */
        printf("# reads %llu len %zu\n", (unsigned long long)ca_capture_stream_reads(c), len);
        CHECK(ca_capture_stream_reads(c) > 0);
        CHECK(ca_capture_stream_reads(c) <= 16 + len / 16384);
        ca_capture_close(c);
        fclose(fp);
    }
    free(buf);
    free(zbuf);
}

/* The project's generator (build[/san]/tests/gencap, beside this binary). */
static char gencap_path[1024];

/* Writes gencap's test capture KIND to a temporary file; path in out. */
static int gencap(const char *kind, char *out, size_t len)
{
    char *argv[] = {gencap_path, "-t", (char *)kind, "-o", out, NULL};
    extern char **environ;
    pid_t pid;
    int st;

    snprintf(out, len, "/tmp/capatlas-test-%s-%d.pcap", kind, (int)getpid());
    if (posix_spawn(&pid, gencap_path, NULL, NULL, argv, environ) != 0)
        return -1;
    if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return -1;
    return 0;
}

static void run_path(const char *path, struct run *r)
{
    struct ca_import_req req;

    memset(r, 0, sizeof(*r));
    memset(&req, 0, sizeof(req));
    req.path = path;
    req.sink = collect;
    req.sink_arg = &r->c;
    r->rc = ca_engine_import(eng, &req, &r->rep, r->err, sizeof(r->err));
}

/*
 * IPv4 fragments (gencap -t frag4): a DNS answer of 2408 bytes in three
 * fragments in order, then again out of order with a duplicate, then a lone
 * middle fragment.  Both datagrams are reassembled (DPI sees the answer);
 * every fragment is still counted as a packet.
 */
static void test_fragments(void)
{
    char path[256];
    struct run r;

    CHECK(gencap("frag4", path, sizeof(path)) == 0);
    run_path(path, &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(rep_int(&r, "packets"), 9);
    CHECK_EQ_U(rep_int(&r, "fragments_reassembled"), 2);
    {
        const struct ca_flow *f = find(&r, "udp", 53);
        CHECK(f != NULL);
        if (f != NULL) {
            CHECK_EQ_U(f->cli_port, 40000);
            CHECK_EQ_U(f->pkts[0], 1);
            CHECK_EQ_U(f->pkts[1], 6); /* the out-of-order last piece came before its ports */
            CHECK(strncmp(f->l7_name, "DNS", 3) == 0);
            CHECK(strcmp(f->host, "big.example.com") == 0);
        }
    }
    run_free(&r);
    unlink(path);
    /* the corpus: zeek's fragmented capture joins its pieces to one flow */
    run_file("zeek/fragmented-1.pcap", &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK(rep_int(&r, "fragments_reassembled") > 0);
    run_free(&r);
}

/* A TCP flow whose handshake is not in the capture: the ephemeral port is the client. */
static void test_direction_generated(void)
{
    char path[256];
    struct run r;

    CHECK(gencap("direction", path, sizeof(path)) == 0);
    run_path(path, &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        const struct ca_flow *f = &r.c.f[0];
        char a[64];
        CHECK_EQ_U(f->cli_port, 51000);
        CHECK_EQ_U(f->srv_port, 443);
        CHECK(strcmp(ca_addr_str(4, f->cli_ip, a, sizeof(a)), "192.168.0.1") == 0);
        CHECK_EQ_U(f->tcp_state, CA_TCP_MIDSTREAM);
        CHECK_EQ_U(f->pkts[0] + f->pkts[1], 6);
    }
    run_free(&r);
    unlink(path);
}

/* radiotap + 802.11 (gencap -t wlan): data frames through LLC/SNAP, the rest counted */
static void test_wlan(void)
{
    char path[256];
    struct run r;

    CHECK(gencap("wlan", path, sizeof(path)) == 0);
    run_path(path, &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(r.c.n, 1);
    if (r.c.n == 1) {
        const struct ca_flow *f = &r.c.f[0];
        CHECK(strcmp(f->encap, "radiotap/wlan/ipv4/udp") == 0);
        CHECK(strcmp(f->host, "wlan.example.org") == 0);
        CHECK_EQ_U(f->srv_port, 53);
        CHECK_EQ_U(f->cli_mac[5], 1); /* SA of a ToDS frame is address 2 */
        CHECK_EQ_U(f->srv_mac[5], 2);
    }
    {
        json_t *n = json_object_get(r.rep, "non_ip");
        CHECK_EQ_U(json_integer_value(json_object_get(n, "wlan_mgmt")), 1);
        CHECK_EQ_U(json_integer_value(json_object_get(n, "wlan_protected")), 1);
    }
    run_free(&r);
    unlink(path);
}

/* TZSP and Teredo (gencap -t tunnels): the inner flows, the tunnel in encap */
static void test_tzsp_teredo(void)
{
    char path[256];
    struct run r;

    CHECK(gencap("tunnels", path, sizeof(path)) == 0);
    run_path(path, &r);
    CHECK_EQ_U(r.rc, 0);
    CHECK_EQ_U(r.c.n, 2);
    for (size_t i = 0; i < r.c.n; i++) {
        const struct ca_flow *f = &r.c.f[i];
        if (f->l4 == 6) {
            CHECK(strcmp(f->encap, "eth/ipv4/udp/tzsp/eth/ipv4/tcp") == 0);
            CHECK_EQ_U(f->srv_port, 80);
            CHECK(strcmp(f->l7_name, "HTTP") == 0);
        } else {
            CHECK_EQ_U(f->l4, 58);
            CHECK(strcmp(f->encap, "eth/ipv4/udp/teredo/ipv6/icmpv6") == 0);
            CHECK_EQ_U(f->pkts[0], 1);
            CHECK_EQ_U(f->pkts[1], 1);
            CHECK_EQ_U(f->icmp_id, 0x77);
        }
    }
    CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(r.rep, "tunnels"), "tzsp")), 1);
    CHECK_EQ_U(json_integer_value(json_object_get(json_object_get(r.rep, "tunnels"), "teredo")), 2);
    run_free(&r);
    unlink(path);
}

/* ---- the native pcap reader against libpcap itself ---- */

static uint32_t rd32x(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static void wr32x(uint8_t *p, uint32_t v, int be)
{
    for (int i = 0; i < 4; i++)
        p[be ? i : 3 - i] = (uint8_t)(v >> (24 - 8 * i));
}

/*
 * Rewrites a little-endian us pcap in place: be = big-endian, ns =
 * nanosecond timestamps; every 7th record gets odd timestamp fields
 * (negative, >= 1e6 us, >= 2^31).  0, or -1 when it is not such a file.
 */
static int pcap_variant(uint8_t *b, size_t n, int be, int ns)
{
    size_t o = 24;
    unsigned k = 0;

    if (n < 24 || memcmp(b, "\xd4\xc3\xb2\xa1", 4) != 0)
        return -1;
    wr32x(b, ns ? 0xa1b23c4du : 0xa1b2c3d4u, be);
    for (int i = 4; i < 8; i += 2) { /* version fields are 16-bit */
        uint16_t v = (uint16_t)(b[i] | b[i + 1] << 8);
        b[i] = (uint8_t)(be ? v >> 8 : v);
        b[i + 1] = (uint8_t)(be ? v : v >> 8);
    }
    for (int i = 8; i < 24; i += 4)
        wr32x(b + i, rd32x(b + i, 0), be);
    while (o + 16 <= n) {
        uint32_t sec = rd32x(b + o, 0), us = rd32x(b + o + 4, 0), cap = rd32x(b + o + 8, 0);
        static const uint32_t odd[] = {0xfffffff0u, 5000000u, 0x80000005u, 999999u};
        if (++k % 7 == 0)
            us = odd[(k / 7) % 4];
        if (k % 11 == 0)
            sec |= 0x80000000u;
        wr32x(b + o, sec, be);
        wr32x(b + o + 4, ns ? us * 1000u + 7u : us, be);
        wr32x(b + o + 8, cap, be);
        wr32x(b + o + 12, rd32x(b + o + 12, 0), be);
        o += 16 + (size_t)cap;
    }
    return 0;
}

/* Reads path with ca_capture (hold mode: releasing when it asks) and with
 * pcap_next_ex, as the reader did before it read records itself. */
static void same_as_libpcap(const char *path)
{
    char ebuf[PCAP_ERRBUF_SIZE], err[256];
    struct ca_capture *c = NULL;
    pcap_t *p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    int held = 0;

    CHECK_EQ_U(ca_capture_open(path, &c, err, sizeof(err)) == 0, p != NULL);
    if (c == NULL || p == NULL) {
        ca_capture_close(c);
        if (p != NULL)
            pcap_close(p);
        return;
    }
    ca_capture_hold(c, 1);
    for (;;) {
        struct ca_capture_pkt pkt;
        struct pcap_pkthdr *h;
        const u_char *data;
        int r = ca_capture_next(c, &pkt, err, sizeof(err));
        if (r == 2) {
            CHECK(held > 0);
            ca_capture_release(c);
            held = 0;
            continue;
        }
        int pr = pcap_next_ex(p, &h, &data);
        long after = ftell(pcap_file(p));
        if (pr == PCAP_ERROR_BREAK) {
            CHECK_EQ_U(r, 0);
            break;
        }
        if (pr != 1) {
            CHECK(r < 0);
            CHECK(strcmp(err, pcap_geterr(p)) == 0);
            CHECK_EQ_U(ca_capture_offset(c), (unsigned long long)after);
            break;
        }
        CHECK_EQ_U(r, 1);
        if (r != 1)
            break;
        held++;
        int64_t ts = h->ts.tv_sec < 0 ? 0
                     : h->ts.tv_sec >= ((int64_t)1 << 32)
                         ? ((int64_t)1 << 32) * 1000000000
                         : (int64_t)h->ts.tv_sec * 1000000000 + (int64_t)h->ts.tv_usec;
        CHECK_EQ_U((unsigned long long)pkt.ts_ns, (unsigned long long)ts);
        CHECK_EQ_U(pkt.caplen, h->caplen);
        CHECK_EQ_U(pkt.len, h->len);
        CHECK_EQ_U(pkt.offset, (unsigned long long)after - h->caplen - 16);
        CHECK(pkt.caplen == h->caplen && memcmp(pkt.data, data, h->caplen) == 0);
        CHECK_EQ_U(pkt.dlt, pcap_datalink(p));
    }
    ca_capture_close(c);
    pcap_close(p);
}

static void test_native_reader(void)
{
    static const char *files[] = {"android.pcap",    "1kxun.pcap",
                                  "ftp.pcap",        "http_ipv6.pcap",
                                  "6in4tunnel.pcap", "fuzz-2021-10-13.pcap",
                                  "badpackets.pcap", "fuzz-2021-06-07-c6c72a0a56.pcap"};
    char tmp[] = "/tmp/capatlas-natXXXXXX";
    int fd = mkstemp(tmp);

    CHECK(fd >= 0);
    if (fd < 0)
        return;
    close(fd);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[1024];
        uint8_t *buf;
        size_t len;

        snprintf(path, sizeof(path), "%s/%s", unit_pcaps(), files[i]);
        same_as_libpcap(path);
        buf = slurp(files[i], &len);
        CHECK(buf != NULL);
        if (buf == NULL)
            continue;
        for (int v = 0; v < 4; v++) {
            uint8_t *b = malloc(len);
            CHECK(b != NULL);
            if (b == NULL)
                break;
            memcpy(b, buf, len);
            if (pcap_variant(b, len, v & 1, v >> 1) == 0) {
                /* whole, cut at a few points, and with a small snapshot length */
                size_t cuts[] = {len, len - 1, len * 2 / 3, len / 3 + 5, 40, 30};
                for (size_t k = 0; k < sizeof(cuts) / sizeof(cuts[0]); k++) {
                    FILE *f = fopen(tmp, "wb");
                    if (f == NULL)
                        break;
                    fwrite(b, 1, cuts[k] < len ? cuts[k] : len, f);
                    fclose(f);
                    same_as_libpcap(tmp);
                }
                wr32x(b + 16, 64, v & 1);
                FILE *f = fopen(tmp, "wb");
                if (f != NULL) {
                    fwrite(b, 1, len, f);
                    fclose(f);
                    same_as_libpcap(tmp);
                }
            }
            free(b);
        }
        free(buf);
    }
    unlink(tmp);
}

int main(int argc, char **argv)
{
    struct ca_engine_conf c;
    char err[256];
    const char *slash = argc > 0 ? strrchr(argv[0], '/') : NULL;

    snprintf(gencap_path, sizeof(gencap_path), "%.*sgencap",
             slash != NULL ? (int)(slash - argv[0] + 1) : 0, slash != NULL ? argv[0] : "");

    memset(&c, 0, sizeof(c));
    ca_engine_conf_defaults(&c);
    if (ca_engine_open(&c, &eng, err, sizeof(err)) != 0) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    unit_run("packets/bytes equal capinfos, flows equal ndpiReader", test_totals_vs_capinfos_ndpi);
    unit_run("per-protocol flow counts equal ndpiReader's", test_l7_vs_ndpireader);
    unit_run("direction: SYN sender, else ephemeral port", test_direction);
    unit_run("link types: QinQ, PPPoE, SLL2, PPP, C_HDLC, NFLOG, MPLS, big-endian",
             test_link_types);
    unit_run("nanosecond pcap", test_nanosecond);
    unit_run("FILE* input (memory, pipe) and gzip by content", test_streams_gzip);
    unit_run("a stream is read in big pieces, not a byte at a time", test_stream_reads);
    unit_run("IPv4 fragments reassembled (gencap frag4, zeek)", test_fragments);
    unit_run("direction without a handshake (gencap)", test_direction_generated);
    unit_run("radiotap + 802.11 data frames (gencap)", test_wlan);
    unit_run("TZSP and Teredo tunnels (gencap)", test_tzsp_teredo);
    unit_run("IPv6 extension headers and tunnels", test_tunnels_ipv6);
    unit_run("damaged and non-capture files", test_damaged);
    unit_run("native pcap reader equals libpcap (byte orders, ns, cuts, snaplen)",
             test_native_reader);
    unit_run("flow codec round trip and garbage", test_codec);
    unit_run("flow JSON field names", test_json);
    unit_run("geo and passive DNS", test_geo_pdns);
    unit_run("geo: cached lookups equal the database", test_geo_cache);
    ca_engine_close(eng);
    return unit_done();
}

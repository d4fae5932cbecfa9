/*
 * mkflows: builds a workspace of N synthetic but realistic flows straight
 * through the store's import protocol (ca_ws_capture_add, ca_ws_flows_put
 * in batches, ca_ws_capture_finish), for benchmarks and the views'
 * performance tests, without a capture file or the flow engine.
 *
 *   mkflows --data DIR (--workspace ID | --owner USER [--name NAME])
 *           --flows N [--captures K] [--days D] [--seed S] [--batch B]
 *
 * The mix: TLS with SNI (several CDNs and clouds), HTTP, DNS, QUIC, NTP,
 * SSH, ICMP/ICMPv6, unknown traffic on random ports; ~2,000 internal
 * clients with a Zipf-like activity (a few heavy hitters), ~30,000
 * external servers with countries and ASNs, 6 % IPv6, 5 % VLAN-tagged,
 * heavy-tailed byte counts, a diurnal pattern over D days (default 7)
 * split into K consecutive captures.  Deterministic for a given seed.
 * It prints one JSON line: {"workspace","flows","captures","sample_ip",
 * "seconds"}; --csv also writes the flows as CSV (see csv_flow); sample_ip is a mid-activity client
 * (a selective filter). Safe while the server runs (LMDB is multi-process); run it as the server's
 * user so the files keep their owner.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ca_error.h"
#include "store.h"

static uint64_t rs = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static double rndf(void)
{
    return (double)(rnd() >> 11) / 9007199254740992.0;
}

static uint32_t rndn(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

/* Zipf-like rank in [0, n): a few ranks get most of the draws. */
static uint32_t zipf(uint32_t n, double s)
{
    double u = rndf();
    double x = pow((double)n + 1.0, u);

    (void)s;
    x -= 1.0;
    return x >= n ? n - 1 : (uint32_t)x;
}

static double normal(void)
{
    double u1 = rndf() + 1e-12, u2 = rndf();

    return sqrt(-2.0 * log(u1)) * cos(2 * M_PI * u2);
}

static const struct {
    const char *cc;
    uint32_t asn;
    int weight;
} countries[] = {{"US", 15169, 30}, {"US", 16509, 12}, {"US", 8075, 10}, {"IE", 16509, 5},
                 {"NL", 8075, 5},   {"DE", 3320, 6},   {"GB", 2856, 4},  {"FR", 3215, 4},
                 {"JP", 2914, 3},   {"SG", 13335, 3},  {"CN", 4134, 3},  {"RU", 12389, 2},
                 {"BR", 28573, 2},  {"IN", 9498, 2},   {"CA", 577, 2},   {"AU", 1221, 2},
                 {"SE", 3301, 1},   {"CH", 3303, 1},   {"KR", 4766, 1},  {"ZA", 37100, 1}};
#define NCOUNTRY (sizeof(countries) / sizeof(countries[0]))

struct server {
    uint8_t ip[16];
    uint8_t v6;
    uint8_t country;
};

static const char *const tls_hosts[] = {"www.google.com",
                                        "fonts.gstatic.com",
                                        "login.microsoftonline.com",
                                        "graph.microsoft.com",
                                        "s3.amazonaws.com",
                                        "d1.cloudfront.net",
                                        "api.github.com",
                                        "www.youtube.com",
                                        "i.ytimg.com",
                                        "outlook.office365.com",
                                        "teams.microsoft.com",
                                        "cdn.jsdelivr.net",
                                        "www.wikipedia.org",
                                        "edge.skype.com",
                                        "static.xx.fbcdn.net",
                                        "pbs.twimg.com",
                                        "storage.azure.com",
                                        "management.azure.com",
                                        "vortex.data.microsoft.com",
                                        "updates.example-corp.com"};
static const char *const tls_protos[] = {
    "TLS.Google",  "TLS.Google", "TLS.Microsoft", "TLS.Microsoft", "TLS.Amazon",
    "TLS.Amazon",  "TLS.GitHub", "TLS.YouTube",   "TLS.YouTube",   "TLS.Outlook",
    "TLS.Teams",   "TLS",        "TLS.Wikipedia", "TLS.Skype",     "TLS.Facebook",
    "TLS.Twitter", "TLS.Azure",  "TLS.Azure",     "TLS.Microsoft", "TLS"};
static const char *const tls_cats[] = {
    "Web",           "Web",           "Cloud", "Cloud", "Cloud", "Web", "Collaborative",
    "Media",         "Media",         "Email", "VoIP",  "Web",   "Web", "VoIP",
    "SocialNetwork", "SocialNetwork", "Cloud", "Cloud", "Cloud", "Web"};
static const char *const http_hosts[] = {"ocsp.digicert.com", "ctldl.windowsupdate.com",
                                         "deb.debian.org",    "neverssl.com",
                                         "crl.pki.goog",      "archive.ubuntu.com"};
static const char *const dns_names[] = {
    "www.google.com", "api.github.com", "login.microsoftonline.com", "time.windows.com",
    "deb.debian.org", "example.com",    "wpad.corp.local",           "_ldap._tcp.dc.corp.local",
    "ntp.ubuntu.com", "www.youtube.com"};

static void set_v4(uint8_t ip[16], uint32_t a)
{
    memset(ip, 0, 16);
    ip[0] = (uint8_t)(a >> 24);
    ip[1] = (uint8_t)(a >> 16);
    ip[2] = (uint8_t)(a >> 8);
    ip[3] = (uint8_t)a;
}

static void set_v6(uint8_t ip[16], uint16_t net, uint32_t host)
{
    static const uint8_t pfx[6] = {0x20, 0x01, 0x0d, 0xb8, 0, 0};

    memset(ip, 0, 16);
    memcpy(ip, pfx, 6);
    ip[6] = (uint8_t)(net >> 8);
    ip[7] = (uint8_t)net;
    ip[12] = (uint8_t)(host >> 24);
    ip[13] = (uint8_t)(host >> 16);
    ip[14] = (uint8_t)(host >> 8);
    ip[15] = (uint8_t)host;
}

#define NCLIENT 2000
#define NSERVER 30000

static struct server servers[NSERVER];
static int cweights[NCOUNTRY + 1];

static void make_servers(void)
{
    int tot = 0;

    for (size_t i = 0; i < NCOUNTRY; i++)
        cweights[i] = (tot += countries[i].weight);
    for (uint32_t i = 0; i < NSERVER; i++) {
        struct server *s = &servers[i];
        int w = (int)rndn((uint32_t)tot);
        size_t c = 0;

        while (cweights[c] <= w)
            c++;
        s->country = (uint8_t)c;
        s->v6 = rndn(100) < 8;
        if (s->v6)
            set_v6(s->ip, (uint16_t)(0x100 + c), 0x10000 + i);
        else
            set_v4(s->ip, (uint32_t)((20 + c * 9 + rndn(9)) << 24 | (rnd() & 0xffffff)));
    }
}

static void client_ip(uint32_t rank, int v6, uint8_t ip[16])
{
    if (v6)
        set_v6(ip, 1, rank + 1);
    else
        set_v4(ip, 0x0a000000u | ((rank / 250) + 1) << 8 | (rank % 250 + 1));
}

static uint64_t heavy_bytes(double mu, double sigma)
{
    double b = exp(mu + sigma * normal());

    return b < 60 ? 60 : b > 5e9 ? 5000000000ULL : (uint64_t)b;
}

/* One synthetic flow at time t. */
static void make_flow(struct ca_flow *f, int64_t t)
{
    uint32_t crank = zipf(NCLIENT, 1.0);
    uint32_t kind = rndn(100);
    const struct server *sv = &servers[zipf(NSERVER, 1.0)];
    int v6 = sv->v6;
    uint64_t up, down;
    double dur;

    memset(f, 0, sizeof(*f));
    client_ip(crank, v6, f->cli_ip);
    memcpy(f->srv_ip, sv->ip, 16);
    f->ip_version = v6 ? 6 : 4;
    memcpy(f->cli_cc, "--", 2);
    memcpy(f->srv_cc, countries[sv->country].cc, 2);
    f->srv_asn = countries[sv->country].asn;
    f->cli_port = (uint16_t)(32768 + rndn(28000));
    f->vlan = rndn(100) < 5 ? (uint16_t)(10 * (1 + rndn(3))) : 0;
    f->tcp_state = CA_TCP_CLOSED;
    f->l4 = 6;
    up = heavy_bytes(7.0, 1.4);
    down = heavy_bytes(8.5, 2.0);
    dur = exp(0.5 + 1.8 * normal());
    if (kind < 45) { /* TLS */
        uint32_t h = zipf(sizeof(tls_hosts) / sizeof(tls_hosts[0]), 1.0);

        f->srv_port = 443;
        snprintf(f->l7_name, sizeof(f->l7_name), "%s", tls_protos[h]);
        snprintf(f->category_name, sizeof(f->category_name), "%s", tls_cats[h]);
        snprintf(f->host, sizeof(f->host), "%s", tls_hosts[h]);
        snprintf(f->tls_version, sizeof(f->tls_version), "%s",
                 rndn(10) < 8 ? "TLSv1.3" : "TLSv1.2");
        if (rndn(200) == 0) {
            f->risk = 1ULL << 10;
            snprintf(f->risks, sizeof(f->risks), "Self-signed Cert");
        }
        f->l7_master = 91;
    } else if (kind < 55) { /* HTTP */
        uint32_t h = rndn(sizeof(http_hosts) / sizeof(http_hosts[0]));

        f->srv_port = rndn(20) == 0 ? 8080 : 80;
        snprintf(f->l7_name, sizeof(f->l7_name), "HTTP");
        snprintf(f->category_name, sizeof(f->category_name), "Web");
        snprintf(f->host, sizeof(f->host), "%s", http_hosts[h]);
        snprintf(f->user_agent, sizeof(f->user_agent), "Mozilla/5.0 (X11; Linux x86_64)");
        if (f->srv_port == 8080) {
            f->risk = 1ULL << 3;
            snprintf(f->risks, sizeof(f->risks), "Known Proto on Non Std Port");
        }
        f->l7_master = 7;
    } else if (kind < 75) { /* DNS, mostly to the local resolver */
        f->l4 = 17;
        f->srv_port = 53;
        f->tcp_state = CA_TCP_NONE;
        if (rndn(10) < 7 && !v6) {
            set_v4(f->srv_ip, 0x0a000035);
            memcpy(f->srv_cc, "--", 2);
            f->srv_asn = 0;
        }
        snprintf(f->l7_name, sizeof(f->l7_name), "DNS");
        snprintf(f->category_name, sizeof(f->category_name), "Network");
        snprintf(f->host, sizeof(f->host), "%s",
                 dns_names[zipf(sizeof(dns_names) / sizeof(dns_names[0]), 1.0)]);
        up = 60 + rndn(40);
        down = 80 + rndn(400);
        dur = rndf() * 0.05;
    } else if (kind < 83) { /* QUIC */
        f->l4 = 17;
        f->srv_port = 443;
        f->tcp_state = CA_TCP_NONE;
        snprintf(f->l7_name, sizeof(f->l7_name), rndn(2) ? "QUIC.YouTube" : "QUIC.Google");
        snprintf(f->category_name, sizeof(f->category_name), "Media");
        snprintf(f->host, sizeof(f->host),
                 rndn(2) ? "rr3---sn-4g5e6nsz.googlevideo.com" : "www.google.com");
        down *= 4;
    } else if (kind < 85) { /* NTP */
        f->l4 = 17;
        f->srv_port = 123;
        f->cli_port = 123;
        f->tcp_state = CA_TCP_NONE;
        snprintf(f->l7_name, sizeof(f->l7_name), "NTP");
        snprintf(f->category_name, sizeof(f->category_name), "System");
        up = down = 90;
        dur = 0.02;
    } else if (kind < 87) { /* SSH */
        f->srv_port = 22;
        snprintf(f->l7_name, sizeof(f->l7_name), "SSH");
        snprintf(f->category_name, sizeof(f->category_name), "RemoteAccess");
        dur *= 20;
    } else if (kind < 90) { /* ICMP echo */
        f->l4 = v6 ? 58 : 1;
        f->cli_port = f->srv_port = 0;
        f->icmp_type = v6 ? 128 : 8;
        f->tcp_state = CA_TCP_NONE;
        snprintf(f->l7_name, sizeof(f->l7_name), v6 ? "ICMPV6" : "ICMP");
        snprintf(f->category_name, sizeof(f->category_name), "Network");
        up = down = 98 * (1 + rndn(4));
    } else { /* unknown, random ports */
        f->l4 = rndn(3) ? 6 : 17;
        f->srv_port = (uint16_t)(1 + rndn(65535));
        f->tcp_state = f->l4 == 6 ? (uint8_t)(1 + rndn(5)) : CA_TCP_NONE;
        snprintf(f->l7_name, sizeof(f->l7_name), "Unknown");
        snprintf(f->category_name, sizeof(f->category_name), "Unspecified");
    }
    if (f->l4 == 6 && rndn(20) == 0)
        f->tcp_state = (uint8_t)(CA_TCP_INCOMPLETE + rndn(5));
    if (f->l4 == 6)
        f->tcp_flags[0] = f->tcp_flags[1] = 0x1b;
    if (dur > 7200)
        dur = 7200;
    f->first_ns = t;
    f->last_ns = t + (int64_t)(dur * 1e9);
    f->bytes[0] = up;
    f->bytes[1] = down;
    f->pkts[0] = up / 700 + 1 + (f->l4 == 6 ? 2 : 0);
    f->pkts[1] = down / 1100 + 1 + (f->l4 == 6 ? 1 : 0);
    f->payload[0] = up > f->pkts[0] * 54 ? up - f->pkts[0] * 54 : 0;
    f->payload[1] = down > f->pkts[1] * 54 ? down - f->pkts[1] * 54 : 0;
    f->cli_mac[0] = 0x02;
    f->cli_mac[5] = (uint8_t)crank;
    f->srv_mac[0] = 0x02;
    f->srv_mac[5] = 0xfe;
    f->ts_nsec = 0;
    snprintf(f->encap, sizeof(f->encap), "%s", f->vlan ? "eth/vlan/ip" : "eth/ip");
    if (f->dns_name[0] == '\0' && f->l4 == 6 && rndn(3) == 0 && f->host[0] != '\0')
        snprintf(f->dns_name, sizeof(f->dns_name), "%s", f->host);
}

/* Seconds of day weighted to office hours: a rough diurnal pattern. */
static int64_t diurnal_offset(void)
{
    for (;;) {
        double h = rndf() * 24.0;
        double w = 0.15 + (h > 7 && h < 19 ? 0.85 * sin((h - 7) / 12 * M_PI) : 0);

        if (rndf() < w)
            return (int64_t)(h * 3600e9);
    }
}

/* One CSV line per flow (PostgreSQL COPY ... CSV) for the comparison in tests/bench. */
static void csv_flow(FILE *fp, uint32_t cap, uint64_t seq, const struct ca_flow *f)
{
    char s[64], d[64];

    fprintf(
        fp, "%llu,%u,%s,%s,%u,%u,%u,%s,%s,%s,%s,%.2s,%.2s,%u,%u,%lld,%lld,%llu,%llu,%llu,%llu,%u\n",
        (unsigned long long)((uint64_t)cap << 32 | seq), cap,
        ca_addr_str(f->ip_version, f->cli_ip, s, sizeof(s)),
        ca_addr_str(f->ip_version, f->srv_ip, d, sizeof(d)), f->cli_port, f->srv_port, f->l4,
        f->l7_name, f->category_name, f->host, f->dns_name, f->cli_cc, f->srv_cc, f->cli_asn,
        f->srv_asn, (long long)f->first_ns, (long long)f->last_ns,
        (unsigned long long)(f->bytes[0] + f->bytes[1]), (unsigned long long)f->bytes[0],
        (unsigned long long)f->bytes[1], (unsigned long long)(f->pkts[0] + f->pkts[1]), f->vlan);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

    return x < y ? -1 : x > y;
}

static void usage(void)
{
    fprintf(stderr, "usage: mkflows --data DIR (--workspace ID | --owner USER [--name NAME]) "
                    "--flows N [--captures K] [--days D] [--seed S] [--batch B] [--csv FILE]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *data = NULL, *owner = NULL, *name = NULL, *csv = NULL;
    FILE *csvf = NULL;
    unsigned long long ws_id = 0, nflows = 0, seed = 1;
    unsigned long ncap = 4, days = 7, batch = 4096;
    struct ca_ws *w = NULL;
    struct ca_flow *flows = NULL;
    int64_t *times = NULL;
    int64_t base = 1709251200LL * 1000000000LL; /* 2024-03-01T00:00:00Z */
    struct timespec t0, t1;
    char err[512] = "", ipbuf[64];
    uint8_t sample[16];
    int rc;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

        if (v == NULL)
            usage();
        if (strcmp(a, "--data") == 0)
            data = v;
        else if (strcmp(a, "--workspace") == 0)
            ws_id = strtoull(v, NULL, 10);
        else if (strcmp(a, "--owner") == 0)
            owner = v;
        else if (strcmp(a, "--name") == 0)
            name = v;
        else if (strcmp(a, "--flows") == 0)
            nflows = strtoull(v, NULL, 10);
        else if (strcmp(a, "--captures") == 0)
            ncap = strtoul(v, NULL, 10);
        else if (strcmp(a, "--days") == 0)
            days = strtoul(v, NULL, 10);
        else if (strcmp(a, "--seed") == 0)
            seed = strtoull(v, NULL, 10);
        else if (strcmp(a, "--csv") == 0)
            csv = v;
        else if (strcmp(a, "--batch") == 0)
            batch = strtoul(v, NULL, 10);
        else
            usage();
        i++;
    }
    if (data == NULL || nflows == 0 || ncap == 0 || days == 0 || batch == 0 ||
        (ws_id == 0) == (owner == NULL))
        usage();
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rs ^= seed * 0x2545f4914f6cdd1dULL;
    make_servers();
    if (owner != NULL) {
        struct ca_portal *p = NULL;
        uint64_t uid, id;
        char nm[128];

        snprintf(nm, sizeof(nm), "%s", name != NULL ? name : "");
        if (nm[0] == '\0')
            snprintf(nm, sizeof(nm), "synthetic %llu flows", nflows);
        rc = ca_portal_open(data, &p, err, sizeof(err));
        if (rc == 0 && (rc = ca_user_find(p, owner, &uid)) != 0)
            snprintf(err, sizeof(err), "no user %s", owner);
        if (rc == 0)
            rc = ca_workspace_create(p, uid, nm, "mkflows", &id, err, sizeof(err));
        ca_portal_close(p);
        if (rc != 0) {
            fprintf(stderr, "mkflows: %s\n", err[0] ? err : ca_strerror(rc));
            return 1;
        }
        ws_id = id;
    }
    if (csv != NULL && (csvf = fopen(csv, "w")) == NULL) {
        perror(csv);
        return 1;
    }
    rc = ca_ws_open(data, ws_id, &w, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "mkflows: workspace %llu: %s\n", ws_id, err);
        return 1;
    }
    flows = calloc(batch, sizeof(*flows));
    times = malloc(batch * sizeof(*times));
    if (flows == NULL || times == NULL) {
        fprintf(stderr, "mkflows: out of memory\n");
        return 1;
    }
    for (unsigned long c = 0; c < ncap; c++) {
        uint64_t lo = nflows * c / ncap, hi = nflows * (c + 1) / ncap;
        int64_t span = (int64_t)days * 86400 * 1000000000LL / (int64_t)ncap;
        int64_t cstart = base + span * (int64_t)c;
        uint32_t cap = 0;
        json_t *meta, *report;
        char cname[64];

        snprintf(cname, sizeof(cname), "synthetic-%02lu.pcap", c + 1);
        meta = json_pack("{s:s, s:s, s:I, s:s, s:n, s:n, s:I, s:s}", "name", cname, "source",
                         "mkflows", "size", (json_int_t)0, "state", "importing", "error", "report",
                         "created", (json_int_t)time(NULL), "path", "");
        rc = ca_ws_capture_add(w, meta, &cap);
        json_decref(meta);
        if (rc == 0)
            rc = ca_ws_capture_purge_flows(w, cap);
        for (uint64_t i = lo; rc == 0 && i < hi;) {
            size_t n = hi - i < batch ? (size_t)(hi - i) : batch;
            /* Each batch covers its share of the capture's span, times sorted
             * (the flow engine emits roughly in time order too). */
            int64_t b0 = cstart + (int64_t)((double)span * (double)(i - lo) / (double)(hi - lo));
            int64_t b1 =
                cstart + (int64_t)((double)span * (double)(i + n - lo) / (double)(hi - lo));
            int64_t day0 = b0 - (b0 - base) % (86400LL * 1000000000LL);

            for (size_t k = 0; k < n; k++) {
                int64_t t = day0 + diurnal_offset();

                if (t < b0 || t >= b1)
                    t = b0 + (int64_t)(rndf() * (double)(b1 - b0));
                times[k] = t;
            }
            qsort(times, n, sizeof(*times), cmp_i64);
            for (size_t k = 0; k < n; k++)
                make_flow(&flows[k], times[k]);
            rc = ca_ws_flows_put(w, cap, flows, n);
            for (size_t k = 0; csvf != NULL && k < n; k++)
                csv_flow(csvf, cap, i - lo + k + 1, &flows[k]);
            i += n;
        }
        report = json_pack("{s:s, s:I}", "generator", "mkflows", "flows", (json_int_t)(hi - lo));
        if (rc == 0)
            rc = ca_ws_capture_finish(w, cap, report);
        json_decref(report);
        if (rc != 0) {
            fprintf(stderr, "mkflows: capture %lu: %s\n", c + 1, ca_strerror(rc));
            return 1;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    client_ip(40, 0, sample);
    printf("{\"workspace\":%llu,\"flows\":%llu,\"captures\":%lu,\"sample_ip\":\"%s\","
           "\"seconds\":%.1f}\n",
           ws_id, nflows, ncap, ca_addr_str(4, sample, ipbuf, sizeof(ipbuf)),
           (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    if (csvf != NULL && fclose(csvf) != 0) {
        perror(csv);
        return 1;
    }
    ca_ws_close(w);
    free(flows);
    free(times);
    return 0;
}

/*
 * Capture file reader (see capture.h).  The magic number is checked here
 * first so that a wrong file gets a precise message instead of libpcap's
 * generic one; libpcap does the parsing.  Offsets come from ftell on
 * libpcap's FILE, which is exact because libpcap reads each record with
 * fread in order.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <pcap/pcap.h>

#include "ca_error.h"
#include "capture.h"

struct ca_capture {
    pcap_t *p;
    int dlt;
    int nsec;
    int ng; /* pcapng */
    uint64_t size;
    uint64_t pos;
};

static int known_magic(const uint8_t m[4])
{
    static const uint8_t magics[][4] = {
        {0xd4, 0xc3, 0xb2, 0xa1}, {0xa1, 0xb2, 0xc3, 0xd4}, /* pcap us */
        {0x4d, 0x3c, 0xb2, 0xa1}, {0xa1, 0xb2, 0x3c, 0x4d}, /* pcap ns */
        {0x0a, 0x0d, 0x0d, 0x0a},                           /* pcapng SHB */
        {0x34, 0xcd, 0xb2, 0xa1}, {0xa1, 0xb2, 0xcd, 0x34}, /* Kuznetzov pcap */
    };
    for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
        if (memcmp(m, magics[i], 4) == 0)
            return 1;
    return 0;
}

static uint32_t get32(const uint8_t *p, int be)
{
    return be ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
              : (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

/*
 * libpcap hides a pcapng interface's timestamp resolution: read it from the
 * first IDB's if_tsresol option ourselves.  1 when it is finer than 1 us.
 */
static int pcapng_nsec(const char *path)
{
    uint8_t b[4096];
    size_t n, off = 0;
    FILE *f = fopen(path, "rb");
    int be;

    if (f == NULL)
        return 0;
    n = fread(b, 1, sizeof(b), f);
    fclose(f);
    if (n < 28)
        return 0;
    be = b[8] == 0x1a;
    while (off + 12 <= n) {
        uint32_t type = get32(b + off, be), len = get32(b + off + 4, be);
        if (len < 12 || len % 4 != 0 || off + len > n)
            return 0;
        if (type == 1) { /* IDB: options after 16 bytes of fixed fields */
            size_t o = off + 16;
            while (o + 4 <= off + len - 4) {
                uint16_t code = (uint16_t)(be ? b[o] << 8 | b[o + 1] : b[o + 1] << 8 | b[o]);
                uint16_t ol = (uint16_t)(be ? b[o + 2] << 8 | b[o + 3] : b[o + 3] << 8 | b[o + 2]);
                if (code == 0 || o + 4 + ol > off + len - 4)
                    break;
                if (code == 9 && ol >= 1) {
                    uint8_t v = b[o + 4];
                    return (v & 0x80) ? (v & 0x7f) >= 20 : v >= 7;
                }
                o += 4 + (((size_t)ol + 3) & ~(size_t)3);
            }
            return 0;
        }
        off += len;
    }
    return 0;
}

int ca_capture_open(const char *path, struct ca_capture **out, char *err, size_t errlen)
{
    char ebuf[PCAP_ERRBUF_SIZE];
    uint8_t m[4] = {0};
    struct stat st;
    struct ca_capture *c;
    FILE *f;
    size_t n;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL)
        return ca_seterr(err, errlen, CA_EIO, "cannot open capture: %s", strerror(errno));
    n = fread(m, 1, 4, f);
    if (fstat(fileno(f), &st) != 0)
        st.st_size = 0;
    fclose(f);
    if (n < 4)
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "not a pcap or pcapng file: too short (%zu bytes)", n);
    if (!known_magic(m))
        return ca_seterr(err, errlen, CA_EFORMAT, "not a pcap or pcapng file: bad magic 0x%08x",
                         (unsigned)m[0] << 24 | (unsigned)m[1] << 16 | (unsigned)m[2] << 8 |
                             (unsigned)m[3]);
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    ebuf[0] = '\0';
    c->p = pcap_open_offline_with_tstamp_precision(path, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (c->p == NULL) {
        free(c);
        return ca_seterr(err, errlen, CA_EFORMAT, "unreadable capture: %s", ebuf);
    }
    c->dlt = pcap_datalink(c->p);
    /* libpcap converts to the precision asked for; the file's own comes from the magic */
    c->nsec = (m[0] == 0x4d || m[3] == 0x4d);
    c->ng = m[0] == 0x0a;
    if (c->ng)
        c->nsec = pcapng_nsec(path);
    c->size = (uint64_t)st.st_size;
    {
        long pos = ftell(pcap_file(c->p));
        c->pos = pos > 0 ? (uint64_t)pos : 0;
    }
    *out = c;
    return 0;
}

void ca_capture_close(struct ca_capture *c)
{
    if (c == NULL)
        return;
    if (c->p != NULL)
        pcap_close(c->p);
    free(c);
}

int ca_capture_next(struct ca_capture *c, struct ca_capture_pkt *pkt, char *err, size_t errlen)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    long before = ftell(pcap_file(c->p)), after;
    int r;

    r = pcap_next_ex(c->p, &h, &data);
    after = ftell(pcap_file(c->p));
    if (after > 0)
        c->pos = (uint64_t)after;
    if (r == PCAP_ERROR_BREAK)
        return 0;
    if (r != 1) {
        const char *msg = pcap_geterr(c->p);
        if (msg != NULL && strstr(msg, "different from the") != NULL)
            return ca_seterr(err, errlen, CA_EFORMAT,
                             "pcapng interfaces with different link types or snapshot lengths "
                             "are not supported: %s",
                             msg);
        return ca_seterr(err, errlen, CA_EFORMAT, "%s", msg != NULL && *msg ? msg : "read error");
    }
    /*
     * For pcapng, ftell before the read may point at a non-packet block
     * (IDB, statistics) that precedes the packet: best effort.  For classic
     * pcap the record header is 16 bytes before the data.
     */
    if (!c->ng && after > 0 && (uint64_t)after >= (uint64_t)h->caplen + 16)
        pkt->offset = (uint64_t)after - h->caplen - 16;
    else
        pkt->offset = before > 0 ? (uint64_t)before : 0;
    pkt->ts_ns = (int64_t)h->ts.tv_sec * 1000000000 + (int64_t)h->ts.tv_usec;
    pkt->caplen = h->caplen;
    pkt->len = h->len;
    pkt->data = data;
    return 1;
}

int ca_capture_linktype(const struct ca_capture *c)
{
    return c->dlt;
}

const char *ca_capture_linktype_name(int dlt)
{
    const char *n = pcap_datalink_val_to_name(dlt);
    return n != NULL ? n : "UNKNOWN";
}

int ca_capture_nsec(const struct ca_capture *c)
{
    return c->nsec;
}

uint64_t ca_capture_file_size(const struct ca_capture *c)
{
    return c->size;
}

uint64_t ca_capture_pos(const struct ca_capture *c)
{
    return c->pos;
}

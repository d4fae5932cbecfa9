/*
 * Capture file reader (see capture.h).  Only this file includes zlib.h.  The magic number is
 * checked here first so that a wrong file gets a precise message instead of libpcap's generic one;
 * libpcap parses the file header.  Plain pcap 2.4 records are then read here (nat_next), out of a
 * large buffer, exactly as libpcap would; other classic files are read by pcap_next_ex, whose
 * offsets come from ftell on libpcap's FILE (exact: libpcap reads each record with fread in order).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <pcap/pcap.h>
#include <zlib.h>

#include "ca_error.h"
#include "capture.h"

/*
 * Input stream under libpcap.  A plain file opened by path is handed to
 * libpcap as is (fast path, exact ftell).  Anything else -- a caller's FILE*
 * (pipe, growing file) or gzip-compressed content -- goes through a
 * fopencookie stream that first replays the bytes peeked to recognise the
 * format, then reads on, inflating when the input starts with 1f 8b.
 */
#define SRC_HEAD 4096
#define SRC_INBUF (64 * 1024)

#define CA_TS_MAX_SEC ((int64_t)1 << 32) /* 2106-02-07 */

struct src {
    FILE *in;       /* raw input */
    int gz;         /* inflating */
    int zdone;      /* zlib stream ended with no further member */
    int zerr;       /* corrupt compressed data */
    z_stream z;     /* when gz */
    uint64_t out;   /* decompressed bytes delivered to libpcap */
    uint64_t raw;   /* raw bytes consumed from in */
    uint64_t reads; /* calls of src_read (a test sees the stream read in big pieces) */
    size_t hlen;    /* peeked (decompressed) bytes still to replay from hpos */
    size_t hpos;
    uint8_t head[SRC_HEAD];
    uint8_t inbuf[SRC_INBUF];
};

/* pcapng, read here rather than by libpcap (see ng_next) */
#define NG_MAX_BLOCK (16u << 20)
#define NG_MAX_IFS 4096

struct ng_if {
    int dlt;
    uint32_t snap;
    uint64_t units; /* timestamp units per second */
    int64_t tsoff;  /* if_tsoffset, seconds */
};

struct ca_capture {
    pcap_t *p;
    FILE *ngf; /* pcapng: the stream read directly (closed at close) */
    int be;
    int pending; /* a packet block read at open is in buf */
    uint32_t ptype, plen;
    uint64_t poff;
    uint64_t ngoff;
    uint8_t *buf;
    size_t bufcap;
    struct ng_if *ifs;
    size_t nifs;
    int64_t last_ts;
    FILE *own;       /* FILE we opened (closed by pcap_close or by us) */
    struct src *src; /* NULL on the fast path */
    int dlt;
    int nsec;
    int ng; /* pcapng */
    int gz;
    uint64_t size;
    uint64_t pos;
    char *iobuf; /* the opened file's stdio buffer (ca_capture_open) */
    /*
     * Native classic-pcap reader (see nat_next): libpcap parses the file
     * header at open; the records are then read here, straight out of a
     * large buffer filled by fread of libpcap's FILE (bypassing
     * pcap_next_ex's per-record freads and ftells).
     */
    int nat;         /* records are read by nat_next */
    int nat_be;      /* record headers are big-endian */
    int nat_swapped; /* ... which is not the host's order */
    int hold;        /* ca_capture_hold: returned records stay valid until released */
    int nat_usec;    /* microsecond timestamps (scaled to ns) */
    uint32_t nat_snap;
    int nat_eof;   /* fread returned short: nothing more to read */
    int nat_errno; /* read error */
    uint32_t held; /* records returned since ca_capture_release */
    FILE *natf;    /* the stream read */
    int natfd;     /* >= 0: natf's descriptor, read directly (a plain file) */
    uint8_t *nbuf; /* unread bytes are nbuf[nstart, nend) */
    size_t ncap, nstart, nend;
    uint64_t nbase; /* stream offset of nbuf[0] */
    uint64_t noff;  /* stream offset where the last read ended (as libpcap's ftell) */
};

/* Decompressed (or raw) bytes from the input, without the replay buffer. */
static ssize_t src_fill(struct src *s, uint8_t *buf, size_t size)
{
    size_t n;

    if (!s->gz) {
        n = fread(buf, 1, size, s->in);
        s->raw += n;
        if (n == 0 && ferror(s->in)) {
            errno = EIO;
            return -1;
        }
        return (ssize_t)n;
    }
    if (s->zerr) {
        errno = EIO;
        return -1;
    }
    s->z.next_out = buf;
    s->z.avail_out = (uInt)(size > UINT32_MAX ? UINT32_MAX : size);
    while (s->z.avail_out > 0 && !s->zdone) {
        int zr;
        if (s->z.avail_in == 0) {
            n = fread(s->inbuf, 1, sizeof(s->inbuf), s->in);
            if (n == 0) {
                if (ferror(s->in)) {
                    s->zerr = 1;
                    break;
                }
                break; /* truncated compressed data: end of what we have */
            }
            s->raw += n;
            s->z.next_in = s->inbuf;
            s->z.avail_in = (uInt)n;
        }
        zr = inflate(&s->z, Z_NO_FLUSH);
        if (zr == Z_STREAM_END) {
            /* concatenated gzip members form one stream (like gzip -d) */
            if (s->z.avail_in == 0) {
                int c = fgetc(s->in);
                if (c == EOF) {
                    s->zdone = 1;
                    break;
                }
                s->raw++;
                s->inbuf[0] = (uint8_t)c;
                s->z.next_in = s->inbuf;
                s->z.avail_in = 1;
            }
            if (inflateReset(&s->z) != Z_OK)
                s->zerr = 1;
        } else if (zr != Z_OK && zr != Z_BUF_ERROR) {
            s->zerr = 1;
            break;
        } else if (zr == Z_BUF_ERROR && s->z.avail_in > 0) {
            s->zerr = 1;
            break;
        }
    }
    n = size - s->z.avail_out;
    if (n == 0 && s->zerr) {
        errno = EIO;
        return -1;
    }
    return (ssize_t)n;
}

static ssize_t src_read(void *cookie, char *buf, size_t size)
{
    struct src *s = cookie;
    size_t done = 0;
    ssize_t n;

    s->reads++;
    if (s->hlen > 0) {
        done = size < s->hlen ? size : s->hlen;
        memcpy(buf, s->head + s->hpos, done);
        s->hpos += done;
        s->hlen -= done;
    }
    if (done < size) {
        n = src_fill(s, (uint8_t *)buf + done, size - done);
        if (n < 0 && done == 0)
            return -1;
        if (n > 0)
            done += (size_t)n;
    }
    s->out += done;
    return (ssize_t)done;
}

/* Only ftell (SEEK_CUR 0) is supported: libpcap reads forward. */
static int src_seek(void *cookie, off64_t *off, int whence)
{
    struct src *s = cookie;

    if (whence != SEEK_CUR || *off != 0) {
        errno = ESPIPE;
        return -1;
    }
    *off = (off64_t)s->out;
    return 0;
}

static int src_close(void *cookie)
{
    (void)cookie; /* freed by ca_capture_close */
    return 0;
}

/* Reads up to want bytes into s->head (blocking until then or EOF). */
static size_t src_peek(struct src *s, size_t want)
{
    while (s->hlen < want) {
        ssize_t n = src_fill(s, s->head + s->hlen, want - s->hlen);
        if (n <= 0)
            break;
        s->hlen += (size_t)n;
    }
    return s->hlen;
}

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
 * pcapng reader.  libpcap 1.10 refuses files whose interfaces differ in link
 * type or snapshot length, and hides block offsets and per-interface
 * timestamp resolution; pcapng is simple enough to read here, from the same
 * stream.  Every length is checked; blocks are capped at 16 MiB.
 */
static uint16_t ng16(const struct ca_capture *c, const uint8_t *p)
{
    return (uint16_t)(c->be ? p[0] << 8 | p[1] : p[1] << 8 | p[0]);
}

static uint32_t ng32(const struct ca_capture *c, const uint8_t *p)
{
    return get32(p, c->be);
}

/* 1 read, 0 clean end of file, negative: damaged. */
static int ng_block(struct ca_capture *c, uint32_t *type, uint32_t *blen, char *err, size_t errlen)
{
    uint8_t h[12];
    size_t n = fread(h, 1, 8, c->ngf);
    uint32_t len;

    c->poff = c->ngoff;
    c->ngoff += n;
    if (n == 0 && !ferror(c->ngf))
        return 0;
    if (n < 8)
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "truncated pcapng file: block header of %zu of 8 bytes", n);
    *type = get32(h, c->be);
    if (*type == 0x0a0d0d0a) { /* SHB: the byte order follows the length */
        n = fread(h + 8, 1, 4, c->ngf);
        c->ngoff += n;
        if (n < 4)
            return ca_seterr(err, errlen, CA_EFORMAT, "truncated pcapng section header");
        if (memcmp(h + 8, "\x1a\x2b\x3c\x4d", 4) == 0)
            c->be = 1;
        else if (memcmp(h + 8, "\x4d\x3c\x2b\x1a", 4) == 0)
            c->be = 0;
        else
            return ca_seterr(err, errlen, CA_EFORMAT,
                             "pcapng section header: bad byte-order magic");
    }
    len = get32(h + 4, c->be);
    if (len < 12 || len % 4 != 0 || (*type == 0x0a0d0d0a && len < 28))
        return ca_seterr(err, errlen, CA_EFORMAT, "pcapng block of type 0x%x: bad length %u",
                         (unsigned)*type, (unsigned)len);
    if (len > NG_MAX_BLOCK)
        return ca_seterr(err, errlen, CA_EFORMAT, "pcapng block of %u bytes is over the %u limit",
                         (unsigned)len, NG_MAX_BLOCK);
    if (c->bufcap < len) {
        size_t nc = len < 65536 ? 65536 : len;
        uint8_t *b = realloc(c->buf, nc);
        if (b == NULL)
            return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        c->buf = b;
        c->bufcap = nc;
    }
    {
        size_t have = *type == 0x0a0d0d0a ? 4 : 0, want = len - 8 - have;
        if (have)
            memcpy(c->buf, h + 8, 4);
        n = fread(c->buf + have, 1, want, c->ngf);
        c->ngoff += n;
        if (n < want)
            return ca_seterr(err, errlen, CA_EFORMAT,
                             "truncated pcapng file: block of %u bytes, %zu present", (unsigned)len,
                             n + have + 8);
    }
    if (get32(c->buf + len - 12, c->be) != len)
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "pcapng block of type 0x%x: trailing length differs", (unsigned)*type);
    *blen = len - 12; /* body */
    return 1;
}

static int ng_idb(struct ca_capture *c, uint32_t blen, char *err, size_t errlen)
{
    struct ng_if *fi;
    size_t o = 8;

    if (blen < 8)
        return ca_seterr(err, errlen, CA_EFORMAT, "pcapng interface block too short");
    if (c->nifs >= NG_MAX_IFS)
        return ca_seterr(err, errlen, CA_EFORMAT, "more than %d pcapng interfaces", NG_MAX_IFS);
    if ((c->nifs & (c->nifs - 1)) == 0) { /* grow at powers of two */
        struct ng_if *n = realloc(c->ifs, (c->nifs ? c->nifs * 2 : 1) * sizeof(*n));
        if (n == NULL)
            return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
        c->ifs = n;
    }
    fi = &c->ifs[c->nifs++];
    fi->dlt = ng16(c, c->buf);
    if (fi->dlt == 101) /* LINKTYPE_RAW: libpcap's DLT differs for this one */
        fi->dlt = DLT_RAW;
    else if (fi->dlt == 100)
        fi->dlt = DLT_ATM_RFC1483;
    fi->snap = ng32(c, c->buf + 4);
    fi->units = 1000000;
    fi->tsoff = 0;
    while (o + 4 <= blen) {
        uint16_t code = ng16(c, c->buf + o), ol = ng16(c, c->buf + o + 2);
        if (code == 0 || o + 4 + ol > blen)
            break;
        if (code == 9 && ol >= 1) {
            uint8_t v = c->buf[o + 4];
            if (v & 0x80) {
                if ((v & 0x7f) <= 62)
                    fi->units = (uint64_t)1 << (v & 0x7f);
            } else if (v <= 18) {
                fi->units = 1;
                for (int i = 0; i < v; i++)
                    fi->units *= 10;
            }
        } else if (code == 14 && ol == 8) {
            uint64_t v = (uint64_t)ng32(c, c->buf + o + 4) << 32 | ng32(c, c->buf + o + 8);
            if (!c->be)
                v = (uint64_t)ng32(c, c->buf + o + 8) << 32 | ng32(c, c->buf + o + 4);
            fi->tsoff = (int64_t)v;
        }
        o += 4 + (((size_t)ol + 3) & ~(size_t)3);
    }
    return 0;
}

static int64_t ng_ts(const struct ng_if *fi, uint32_t hi, uint32_t lo)
{
    unsigned __int128 t = ((unsigned __int128)((uint64_t)hi << 32 | lo)) * 1000000000u / fi->units;
    __int128 ns = (__int128)t + (__int128)fi->tsoff * 1000000000;

    if (ns < 0)
        return 0;
    if (ns > (__int128)CA_TS_MAX_SEC * 1000000000)
        return CA_TS_MAX_SEC * 1000000000;
    return (int64_t)ns;
}

/* Reads blocks up to the first interface (so the link type is known at open). */
static int ng_open(struct ca_capture *c, char *err, size_t errlen)
{
    uint32_t type, blen;
    int r;

    while ((r = ng_block(c, &type, &blen, err, errlen)) == 1) {
        if (type == 0x0a0d0d0a) {
            c->nifs = 0;
        } else if (type == 1) {
            r = ng_idb(c, blen, err, errlen);
            if (r != 0)
                return r;
            c->dlt = c->ifs[0].dlt;
            c->nsec = c->ifs[0].units > 1000000;
            return 0;
        } else if (type == 2 || type == 3 || type == 6) {
            c->pending = 1;
            c->ptype = type;
            c->plen = blen;
            return 0;
        }
    }
    return r;
}

static int ng_next(struct ca_capture *c, struct ca_capture_pkt *pkt, char *err, size_t errlen)
{
    uint32_t type, blen;
    int r;

    for (;;) {
        if (c->pending) {
            c->pending = 0;
            type = c->ptype;
            blen = c->plen;
        } else {
            r = ng_block(c, &type, &blen, err, errlen);
            if (r != 1)
                return r;
        }
        if (type == 0x0a0d0d0a) {
            c->nifs = 0;
            continue;
        }
        if (type == 1) {
            r = ng_idb(c, blen, err, errlen);
            if (r != 0)
                return r;
            continue;
        }
        if (type != 2 && type != 3 && type != 6)
            continue;
        {
            const uint8_t *b = c->buf;
            uint32_t ifid, cap, len, hi = 0, lo = 0, hl;
            if (type == 6) { /* enhanced packet block */
                if (blen < 20)
                    return ca_seterr(err, errlen, CA_EFORMAT, "pcapng packet block too short");
                ifid = ng32(c, b);
                hi = ng32(c, b + 4);
                lo = ng32(c, b + 8);
                cap = ng32(c, b + 12);
                len = ng32(c, b + 16);
                hl = 20;
            } else if (type == 2) { /* obsolete packet block */
                if (blen < 20)
                    return ca_seterr(err, errlen, CA_EFORMAT, "pcapng packet block too short");
                ifid = ng16(c, b);
                hi = ng32(c, b + 4);
                lo = ng32(c, b + 8);
                cap = ng32(c, b + 12);
                len = ng32(c, b + 16);
                hl = 20;
            } else { /* simple packet block: interface 0, no timestamp */
                if (blen < 4)
                    return ca_seterr(err, errlen, CA_EFORMAT, "pcapng packet block too short");
                ifid = 0;
                len = ng32(c, b);
                cap = blen - 4;
                if (len < cap)
                    cap = len;
                hl = 4;
            }
            if (ifid >= c->nifs)
                return ca_seterr(err, errlen, CA_EFORMAT,
                                 "pcapng packet on interface %u, not described", (unsigned)ifid);
            if (type == 3 && c->ifs[0].snap != 0 && cap > c->ifs[0].snap)
                cap = c->ifs[0].snap;
            if (cap > blen - hl)
                return ca_seterr(err, errlen, CA_EFORMAT,
                                 "pcapng packet: captured length %u larger than its block",
                                 (unsigned)cap);
            pkt->ts_ns = type == 3 ? c->last_ts : ng_ts(&c->ifs[ifid], hi, lo);
            c->last_ts = pkt->ts_ns;
            pkt->caplen = cap;
            pkt->len = len < cap ? cap : len;
            pkt->offset = c->poff;
            pkt->data = b + hl;
            pkt->dlt = c->ifs[ifid].dlt;
            return 1;
        }
    }
}

/*
 * Native classic-pcap reader.  Behaves as libpcap 1.10's pcap_next_ex on
 * the files it is used for (plain pcap 2.x, us or ns, either byte order,
 * link types without byte-order-dependent pseudo-headers): the same
 * lengths, timestamps, messages, and stream position after a damaged record.
 */
#define NAT_MAXSNAP 262144u           /* libpcap's MAXIMUM_SNAPLEN */
#define NAT_CHUNK ((size_t)256 << 10) /* bytes asked of the stream at once */
#define NAT_BUF (2 * NAT_CHUNK + 16 + NAT_MAXSNAP)

static int nat_dlt_ok(int dlt, int swapped)
{
    switch (dlt) {
    case 0:   /* NULL */
    case 1:   /* EN10MB */
    case 9:   /* PPP */
    case 12:  /* RAW */
    case 14:  /* RAW (BSD) */
    case 50:  /* PPP_SERIAL */
    case 51:  /* PPP_ETHER */
    case 104: /* C_HDLC */
    case 105: /* IEEE802_11 */
    case 108: /* LOOP */
    case 127: /* IEEE802_11_RADIO */
    case 228: /* IPV4 */
    case 229: /* IPV6 */
        return 1;
    case 113: /* LINUX_SLL: libpcap swaps CAN ids in swapped files */
    case 276: /* LINUX_SLL2 */
        return !swapped;
    default:
        return 0;
    }
}

/* Until at least need bytes are unread, or the stream ended.  0, or -1 on a read error. */
static int nat_fill(struct ca_capture *c, size_t need)
{
    while (c->nend - c->nstart < need && !c->nat_eof) {
        size_t want, n;

        if (c->ncap - c->nend < NAT_CHUNK || c->ncap - c->nstart < need) {
            size_t keep = c->nend - c->nstart;
            memmove(c->nbuf, c->nbuf + c->nstart, keep);
            c->nbase += c->nstart;
            c->nstart = 0;
            c->nend = keep;
        }
        want = c->ncap - c->nend;
        if (want > NAT_CHUNK && need <= c->nend - c->nstart + NAT_CHUNK)
            want = NAT_CHUNK;
        if (c->natfd >= 0) { /* a plain file: read(2) into the buffer, no stdio copy */
            ssize_t k = read(c->natfd, c->nbuf + c->nend, want);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0) {
                c->nat_eof = 1;
                c->nat_errno = errno;
                return -1;
            }
            if (k == 0)
                c->nat_eof = 1;
            c->nend += (size_t)k;
            continue;
        }
        n = fread(c->nbuf + c->nend, 1, want, c->natf);
        c->nend += n;
        if (n < want) {
            c->nat_eof = 1;
            if (ferror(c->natf)) {
                c->nat_errno = errno ? errno : EIO;
                return -1;
            }
        }
    }
    return 0;
}

static uint32_t nat32(const struct ca_capture *c, const uint8_t *p)
{
    return get32(p, c->nat_be);
}

static int nat_next(struct ca_capture *c, struct ca_capture_pkt *pkt, char *err, size_t errlen)
{
    const uint8_t *h;
    uint32_t caplen, len, cap;
    uint64_t rec;
    size_t have;
    int64_t sec, frac;

    if (c->nend - c->nstart < 16) {
        if (c->held > 0)
            return 2;
        if (nat_fill(c, 16) != 0)
            goto rerr;
    }
    have = c->nend - c->nstart;
    rec = c->nbase + c->nstart;
    if (have < 16) {
        c->noff = rec + have;
        if (have == 0)
            return 0;
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "truncated dump file; tried to read 16 header bytes, only got %zu", have);
    }
    h = c->nbuf + c->nstart;
    caplen = nat32(c, h + 8);
    len = nat32(c, h + 12);
    if (caplen > NAT_MAXSNAP) {
        c->noff = rec + 16;
        if (caplen > c->nat_snap)
            return ca_seterr(err, errlen, CA_EFORMAT,
                             "invalid packet capture length %u, bigger than snaplen of %d",
                             (unsigned)caplen, (int)c->nat_snap);
        return ca_seterr(err, errlen, CA_EFORMAT,
                         "invalid packet capture length %u, bigger than maximum of %u",
                         (unsigned)caplen, NAT_MAXSNAP);
    }
    if (have < 16 + (size_t)caplen) {
        if (c->held > 0)
            return 2;
        if (nat_fill(c, 16 + (size_t)caplen) != 0)
            goto rerr;
        have = c->nend - c->nstart;
        h = c->nbuf + c->nstart;
        if (have < 16 + (size_t)caplen) {
            c->noff = rec + have;
            return ca_seterr(err, errlen, CA_EFORMAT,
                             "truncated dump file; tried to read %u captured bytes, only got %zu",
                             (unsigned)caplen, have - 16);
        }
    }
    cap = caplen > c->nat_snap ? c->nat_snap : caplen; /* the rest is read and dropped */
    c->nstart += 16 + (size_t)caplen;
    c->noff = rec + 16 + caplen;
    c->held += (uint32_t)c->hold;
    /* libpcap sign-extends the 32-bit fields of a file in host order, and
     * zero-extends those it byte-swapped */
    if (c->nat_swapped) {
        sec = (int64_t)nat32(c, h);
        frac = (int64_t)nat32(c, h + 4);
    } else {
        sec = (int32_t)nat32(c, h);
        frac = (int32_t)nat32(c, h + 4);
    }
    if (c->nat_usec)
        frac *= 1000;
    if (sec < 0)
        pkt->ts_ns = 0;
    else if (sec >= CA_TS_MAX_SEC)
        pkt->ts_ns = (int64_t)CA_TS_MAX_SEC * 1000000000;
    else
        pkt->ts_ns = sec * 1000000000 + frac;
    /* as libpcap's ftell after the record, less what it reports */
    pkt->offset = c->noff - cap - 16;
    pkt->caplen = cap;
    pkt->len = len;
    pkt->data = h + 16;
    pkt->dlt = c->dlt;
    return 1;
rerr:
    c->noff = c->nbase + c->nend;
    return ca_seterr(err, errlen, CA_EFORMAT, "error reading dump file: %s",
                     strerror(c->nat_errno));
}

/* Switches c to the native reader when libpcap's handle allows it. */
static void nat_start(struct ca_capture *c, const uint8_t magic[4])
{
    int swapped = pcap_is_swapped(c->p), minor = pcap_minor_version(c->p);
    int le = __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__;

    /* 2.4 only: older files may have caplen and len swapped (libpcap's call) */
    if (pcap_major_version(c->p) != 2 || minor != 4 || !nat_dlt_ok(c->dlt, swapped))
        return;
    if (memcmp(magic, "\xa1\xb2\xc3\xd4", 4) != 0 && memcmp(magic, "\xd4\xc3\xb2\xa1", 4) != 0 &&
        memcmp(magic, "\xa1\xb2\x3c\x4d", 4) != 0 && memcmp(magic, "\x4d\x3c\xb2\xa1", 4) != 0)
        return;
    if (pcap_snapshot(c->p) <= 0 || (unsigned)pcap_snapshot(c->p) > NAT_MAXSNAP)
        return;
    c->nbuf = malloc(NAT_BUF);
    if (c->nbuf == NULL)
        return; /* libpcap reads on */
    c->ncap = NAT_BUF;
    c->natf = pcap_file(c->p);
    c->nbase = c->noff = ca_capture_offset(c);
    c->natfd = -1;
    /* a plain file (the fast path): on from libpcap's position with read(2),
     * past the FILE's buffer (libpcap only closes it from now on) */
    if (c->src == NULL && fileno(c->natf) >= 0 &&
        lseek(fileno(c->natf), (off_t)c->nbase, SEEK_SET) == (off_t)c->nbase)
        c->natfd = fileno(c->natf);
    c->nat_be = le ? swapped : !swapped;
    c->nat_swapped = swapped;
    c->nat_usec = !c->nsec;
    c->nat_snap = (uint32_t)pcap_snapshot(c->p);
    c->nat = 1;
}

static void src_free(struct src *s)
{
    if (s == NULL)
        return;
    if (s->gz)
        inflateEnd(&s->z);
    free(s);
}

static int open_common(FILE *fp, int own, uint64_t size, struct ca_capture **out, char *err,
                       size_t errlen)
{
    static const cookie_io_functions_t fns = {src_read, NULL, src_seek, src_close};
    char ebuf[PCAP_ERRBUF_SIZE];
    struct ca_capture *c;
    struct src *s;
    FILE *pf = NULL;
    uint8_t magic[4];
    int r;

    c = calloc(1, sizeof(*c));
    s = calloc(1, sizeof(*s));
    if (c == NULL || s == NULL) {
        free(c);
        free(s);
        if (own)
            fclose(fp);
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    }
    c->src = s;
    c->own = own ? fp : NULL;
    c->size = size;
    s->in = fp;
    src_peek(s, 4);
    if (s->hlen >= 2 && s->head[0] == 0x1f && s->head[1] == 0x8b) {
        if (inflateInit2(&s->z, 15 + 32) != Z_OK) {
            r = ca_seterr(err, errlen, CA_ENOMEM, "out of memory (zlib)");
            goto out;
        }
        s->gz = c->gz = 1;
        memcpy(s->inbuf, s->head, s->hlen);
        s->z.next_in = s->inbuf;
        s->z.avail_in = (uInt)s->hlen;
        s->hlen = 0;
        src_peek(s, 4);
        if (s->zerr && s->hlen < 4) {
            r = ca_seterr(err, errlen, CA_EFORMAT, "gzip-compressed file is corrupt");
            goto out;
        }
    }
    if (s->hlen < 4) {
        r = ca_seterr(err, errlen, CA_EFORMAT, "not a pcap or pcapng file: too short (%zu bytes)%s",
                      s->hlen, c->gz ? " after gzip decompression" : "");
        goto out;
    }
    if (!known_magic(s->head)) {
        const uint8_t *m = s->head;
        r = ca_seterr(err, errlen, CA_EFORMAT, "not a pcap or pcapng file: bad magic 0x%08x%s",
                      (unsigned)m[0] << 24 | (unsigned)m[1] << 16 | (unsigned)m[2] << 8 |
                          (unsigned)m[3],
                      c->gz ? " after gzip decompression" : "");
        goto out;
    }
    memcpy(magic, s->head, 4);
    /* libpcap converts to the precision asked for; the file's own comes from the magic */
    c->nsec = (s->head[0] == 0x4d || s->head[3] == 0x4d);
    c->ng = s->head[0] == 0x0a;
    ebuf[0] = '\0';
    if (own && !c->gz && fseek(fp, 0, SEEK_SET) == 0) {
        /* fast path: libpcap reads the file directly */
        src_free(s);
        c->src = NULL;
        pf = fp;
    } else {
        pf = fopencookie(s, "r", fns);
        if (pf == NULL) {
            r = ca_seterr(err, errlen, CA_ENOMEM, "out of memory (stream)");
            goto out;
        }
        /* Fully buffered: libpcap's small reads come out of the buffer, and
         * nat_next's reads of a buffer's size or more go past it, whole, to
         * src_read (glibc reads those directly).  Not unbuffered: glibc then
         * feeds fread a byte per call of src_read (10x slower in all). */
        setvbuf(pf, NULL, _IOFBF, 256 * 1024);
    }
    if (c->ng) {
        c->ngf = pf;
        if (own && c->src != NULL)
            c->own = fp;
        else
            c->own = NULL;
        r = ng_open(c, err, errlen);
        if (r < 0) {
            ca_capture_close(c);
            return r;
        }
        *out = c;
        return 0;
    }
    c->p = pcap_fopen_offline_with_tstamp_precision(pf, PCAP_TSTAMP_PRECISION_NANO, ebuf);
    if (c->p == NULL) {
        if (pf != fp)
            fclose(pf);
        r = ca_seterr(err, errlen, CA_EFORMAT, "unreadable capture: %s", ebuf);
        goto out;
    }
    c->own = NULL; /* pcap_close closes pf; the raw FILE is closed below */
    if (own && c->src != NULL)
        c->own = fp;
    c->dlt = pcap_datalink(c->p);
    c->pos = ca_capture_offset(c);
    nat_start(c, magic);
    *out = c;
    return 0;
out:
    src_free(c->src);
    if (own)
        fclose(fp);
    free(c);
    return r;
}

#define CAP_IOBUF (256 * 1024)

int ca_capture_open(const char *path, struct ca_capture **out, char *err, size_t errlen)
{
    struct stat st;
    char *iobuf;
    FILE *f;
    int r;

    *out = NULL;
    f = fopen(path, "rb");
    if (f == NULL)
        return ca_seterr(err, errlen, CA_EIO, "cannot open capture: %s", strerror(errno));
    /* libpcap reads through this FILE: 256 KB reads, not 4 KB ones (glibc
     * sizes a buffer it allocates itself by st_blksize, whatever was asked) */
    iobuf = malloc(CAP_IOBUF);
    if (iobuf != NULL)
        setvbuf(f, iobuf, _IOFBF, CAP_IOBUF);
    if (fstat(fileno(f), &st) != 0)
        st.st_size = 0;
    r = open_common(f, 1, (uint64_t)st.st_size, out, err, errlen);
    if (r != 0)
        free(iobuf); /* open_common closed f */
    else
        (*out)->iobuf = iobuf;
    return r;
}

int ca_capture_open_fp(FILE *fp, struct ca_capture **out, char *err, size_t errlen)
{
    struct stat st;
    int fd = fileno(fp);
    uint64_t size = 0;

    *out = NULL;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
        size = (uint64_t)st.st_size;
    return open_common(fp, 0, size, out, err, errlen);
}

void ca_capture_close(struct ca_capture *c)
{
    if (c == NULL)
        return;
    if (c->p != NULL)
        pcap_close(c->p);
    if (c->ngf != NULL)
        fclose(c->ngf);
    free(c->buf);
    free(c->nbuf);
    free(c->ifs);
    src_free(c->src);
    if (c->own != NULL)
        fclose(c->own);
    free(c->iobuf); /* after the FILE that used it is closed */
    free(c);
}

int ca_capture_next(struct ca_capture *c, struct ca_capture_pkt *pkt, char *err, size_t errlen)
{
    struct pcap_pkthdr *h;
    const u_char *data;
    long before, after;
    int r;

    if (c->nat)
        return nat_next(c, pkt, err, errlen);
    if (c->hold && c->held > 0)
        return 2; /* the held record's data is overwritten by the next read */
    c->held += (uint32_t)c->hold;
    if (c->ngf != NULL)
        return ng_next(c, pkt, err, errlen);
    /* where the last read ended (one ftell a packet, not two) */
    before = c->pos > 0 ? (long)c->pos : ftell(pcap_file(c->p));
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
    /*
     * pcapng timestamps are 64-bit: clamp to [1970, 2116] so that time
     * arithmetic downstream (idle timeouts, durations) cannot overflow.
     */
    if (h->ts.tv_sec < 0)
        pkt->ts_ns = 0;
    else if (h->ts.tv_sec >= CA_TS_MAX_SEC)
        pkt->ts_ns = (int64_t)CA_TS_MAX_SEC * 1000000000;
    else
        pkt->ts_ns = (int64_t)h->ts.tv_sec * 1000000000 + (int64_t)h->ts.tv_usec;
    pkt->caplen = h->caplen;
    pkt->len = h->len;
    pkt->data = data;
    pkt->dlt = c->dlt;
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
    if (c->src != NULL)
        return c->src->raw;
    if (c->nat)
        return c->noff;
    return c->ngf != NULL ? c->ngoff : c->pos;
}

uint64_t ca_capture_offset(const struct ca_capture *c)
{
    if (c->ngf != NULL)
        return c->ngoff;
    if (c->nat)
        return c->noff;
    long pos = c->p != NULL ? ftell(pcap_file(c->p)) : -1;
    return pos > 0 ? (uint64_t)pos : 0;
}

uint64_t ca_capture_stream_reads(const struct ca_capture *c)
{
    return c->src != NULL ? c->src->reads : 0;
}

int ca_capture_gzip(const struct ca_capture *c)
{
    return c->gz;
}

void ca_capture_hold(struct ca_capture *c, int on)
{
    c->hold = on != 0;
    c->held = 0;
}

void ca_capture_release(struct ca_capture *c)
{
    c->held = 0;
}

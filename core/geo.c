/*
 * Geolocation (see geo.h).  Both database layouts are understood: the
 * ip-location-db files (top-level "country_code", "autonomous_system_number")
 * and MaxMind GeoLite2 ("country" -> "iso_code").  Three caches, all
 * direct-mapped (bounded memory): per address (real traffic's addresses
 * come back), per IPv4 /16 that one network holds whole (the addresses
 * seen once: a 1 GB capture of random servers imports 6% faster), and
 * per database record (reading its fields out).
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <maxminddb.h>

#include "ca_error.h"
#include "geo.h"

#define CACHE_SIZE 4096

struct geo_cache_ent {
    uint8_t used;
    uint8_t ver;
    uint8_t addr[16];
    char cc[3];
    uint32_t asn;
};

/*
 * What a database record (by its offset in the data section) gives: many
 * addresses share one record (a network's), and reading the fields out of
 * it (MMDB_get_value walks its map by key names) costs more than finding
 * it, so the values are kept per record too.
 */
#define REC_CACHE_SIZE 4096

struct geo_rec_ent {
    uint32_t off1; /* record offset + 1; 0 empty */
    uint8_t has_asn;
    char cc[3];
    uint32_t asn;
};

/*
 * Per IPv4 /16: what every address of it gives, when a lookup found the
 * /16 inside one network of each database (a database's networks are
 * maximal: most of a country database's are /16 or larger), so that the
 * addresses the per-address cache has not seen skip the tree walk.
 */
struct geo_net16_ent {
    uint8_t used;
    char cc[3];
    uint32_t asn;
};

struct ca_geo {
    MMDB_s db;
    MMDB_s asn_db;
    int has_asn_db;
    struct geo_cache_ent cache[CACHE_SIZE];
    struct geo_rec_ent rec[2][REC_CACHE_SIZE]; /* db, asn_db */
    struct geo_net16_ent net16[1 << 16];
};

int ca_geo_open(const char *path, const char *asn_path, struct ca_geo **out, char *err,
                size_t errlen)
{
    struct ca_geo *g;
    int r;

    *out = NULL;
    g = calloc(1, sizeof(*g));
    if (g == NULL)
        return ca_seterr(err, errlen, CA_ENOMEM, "out of memory");
    r = MMDB_open(path, MMDB_MODE_MMAP, &g->db);
    if (r != MMDB_SUCCESS) {
        free(g);
        return ca_seterr(err, errlen, r == MMDB_FILE_OPEN_ERROR ? CA_EIO : CA_EFORMAT,
                         "geo database %s: %s", path, MMDB_strerror(r));
    }
    if (asn_path != NULL && *asn_path != '\0') {
        r = MMDB_open(asn_path, MMDB_MODE_MMAP, &g->asn_db);
        if (r != MMDB_SUCCESS) {
            MMDB_close(&g->db);
            free(g);
            return ca_seterr(err, errlen, CA_EIO, "ASN database %s: %s", asn_path,
                             MMDB_strerror(r));
        }
        g->has_asn_db = 1;
    }
    *out = g;
    return 0;
}

void ca_geo_close(struct ca_geo *g)
{
    if (g == NULL)
        return;
    MMDB_close(&g->db);
    if (g->has_asn_db)
        MMDB_close(&g->asn_db);
    free(g);
}

static int v4_private(const uint8_t *a)
{
    return a[0] == 10 || a[0] == 127 || a[0] == 0 || (a[0] == 172 && (a[1] & 0xf0) == 16) ||
           (a[0] == 192 && a[1] == 168) || (a[0] == 169 && a[1] == 254) ||
           (a[0] == 100 && (a[1] & 0xc0) == 64) || a[0] >= 224;
}

int ca_geo_is_private(uint8_t v, const uint8_t a[16])
{
    if (v == 4)
        return v4_private(a);
    static const uint8_t zero[16];
    if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
        return 1;
    if ((a[0] & 0xfe) == 0xfc || a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80))
        return 1;
    /* v4-mapped */
    if (memcmp(a, zero, 10) == 0 && a[10] == 0xff && a[11] == 0xff)
        return v4_private(a + 12);
    return 0;
}

/* 1 found, 0 not in the database (res->netmask still says how far that
 * goes), -1 a lookup error. */
static int lookup_db(MMDB_s *db, uint8_t v, const uint8_t a[16], MMDB_lookup_result_s *res)
{
    struct sockaddr_in sin;
    struct sockaddr_in6 sin6;
    int gai = 0, merr = 0;

    if (v == 4) {
        memset(&sin, 0, sizeof(sin));
        sin.sin_family = AF_INET;
        memcpy(&sin.sin_addr, a, 4);
        *res = MMDB_lookup_sockaddr(db, (const struct sockaddr *)&sin, &merr);
    } else {
        memset(&sin6, 0, sizeof(sin6));
        sin6.sin6_family = AF_INET6;
        memcpy(&sin6.sin6_addr, a, 16);
        *res = MMDB_lookup_sockaddr(db, (const struct sockaddr *)&sin6, &merr);
    }
    (void)gai;
    if (merr != MMDB_SUCCESS)
        return -1;
    return res->found_entry ? 1 : 0;
}

/* Whether the network of an IPv4 lookup's result holds the address's whole /16. */
static int holds_16(const MMDB_s *db, const MMDB_lookup_result_s *res)
{
    unsigned bits = res->netmask;

    if (db->metadata.ip_version == 6) /* IPv4 lives in ::/96 */
        bits = bits >= 96 ? bits - 96 : 0;
    return bits <= 16;
}

static void get_cc(MMDB_lookup_result_s *res, char cc[3])
{
    MMDB_entry_data_s d;

    if ((MMDB_get_value(&res->entry, &d, "country_code", NULL) == MMDB_SUCCESS && d.has_data &&
         d.type == MMDB_DATA_TYPE_UTF8_STRING) ||
        (MMDB_get_value(&res->entry, &d, "country", "iso_code", NULL) == MMDB_SUCCESS &&
         d.has_data && d.type == MMDB_DATA_TYPE_UTF8_STRING) ||
        (MMDB_get_value(&res->entry, &d, "registered_country", "iso_code", NULL) == MMDB_SUCCESS &&
         d.has_data && d.type == MMDB_DATA_TYPE_UTF8_STRING)) {
        if (d.data_size == 2) {
            cc[0] = d.utf8_string[0];
            cc[1] = d.utf8_string[1];
            cc[2] = '\0';
        }
    }
}

/* 1 when the record has an ASN (then in *asn), else 0 and *asn unchanged. */
static int get_asn(MMDB_lookup_result_s *res, uint32_t *asn)
{
    MMDB_entry_data_s d;

    if (MMDB_get_value(&res->entry, &d, "autonomous_system_number", NULL) == MMDB_SUCCESS &&
        d.has_data) {
        if (d.type == MMDB_DATA_TYPE_UINT32)
            *asn = d.uint32;
        else if (d.type == MMDB_DATA_TYPE_UINT16)
            *asn = d.uint16;
        else if (d.type == MMDB_DATA_TYPE_UINT64)
            *asn = (uint32_t)d.uint64;
        else
            return 0;
        return 1;
    }
    return 0;
}

/* The record's country (which 0, the main database; cc NULL for the ASN
 * one) and ASN, as get_cc and get_asn give them, through the record cache. */
static void rec_values(struct ca_geo *g, int which, MMDB_lookup_result_s *res, char *cc,
                       uint32_t *asn)
{
    uint32_t off = res->entry.offset;
    struct geo_rec_ent *e = &g->rec[which][(off * 2654435761u) >> 20 & (REC_CACHE_SIZE - 1)];

    if (off == UINT32_MAX) { /* cannot be a key: read it out each time */
        if (cc != NULL)
            get_cc(res, cc);
        (void)get_asn(res, asn);
        return;
    }
    if (e->off1 != off + 1) {
        e->off1 = off + 1;
        e->cc[0] = '\0';
        e->asn = 0;
        if (which == 0)
            get_cc(res, e->cc);
        e->has_asn = (uint8_t)get_asn(res, &e->asn);
    }
    if (cc != NULL)
        memcpy(cc, e->cc, 3);
    if (e->has_asn)
        *asn = e->asn;
}

void ca_geo_lookup(struct ca_geo *g, uint8_t v, const uint8_t a[16], char cc[3], uint32_t *asn)
{
    MMDB_lookup_result_s res;
    struct geo_cache_ent *e;
    struct geo_net16_ent *n16;
    uint32_t h = 2166136261u;

    cc[0] = '\0';
    *asn = 0;
    if (ca_geo_is_private(v, a)) {
        memcpy(cc, "--", 3);
        return;
    }
    if (g == NULL)
        return;
    for (int i = 0; i < (v == 4 ? 4 : 16); i++)
        h = (h ^ a[i]) * 16777619u;
    e = &g->cache[h % CACHE_SIZE];
    if (e->used && e->ver == v && memcmp(e->addr, a, 16) == 0) {
        memcpy(cc, e->cc, 3);
        *asn = e->asn;
        return;
    }
    n16 = v == 4 ? &g->net16[a[0] << 8 | a[1]] : NULL;
    if (n16 != NULL && n16->used) {
        memcpy(cc, n16->cc, 3);
        *asn = n16->asn;
    } else {
        int whole = n16 != NULL, r = lookup_db(&g->db, v, a, &res);

        if (r > 0)
            rec_values(g, 0, &res, cc, asn);
        whole = whole && r >= 0 && holds_16(&g->db, &res);
        if (g->has_asn_db) {
            r = lookup_db(&g->asn_db, v, a, &res);
            if (r > 0)
                rec_values(g, 1, &res, NULL, asn);
            whole = whole && r >= 0 && holds_16(&g->asn_db, &res);
        }
        if (whole) {
            n16->used = 1;
            memcpy(n16->cc, cc, 3);
            n16->asn = *asn;
        }
    }
    e->used = 1;
    e->ver = v;
    memcpy(e->addr, a, 16);
    memcpy(e->cc, cc, 3);
    e->asn = *asn;
}

/*
 * Geolocation with libmaxminddb (only geo.c includes maxminddb.h): country
 * code and, when the database has it, ASN of an address.  Private,
 * loopback, link-local and ULA addresses get "--" without a lookup.  A
 * struct ca_geo is per process and keeps a small cache.
 */
#ifndef CA_GEO_H
#define CA_GEO_H

#include <stddef.h>
#include <stdint.h>

struct ca_geo;

/* path: country (or city) .mmdb; asn_path: optional ASN .mmdb (NULL = none). */
int ca_geo_open(const char *path, const char *asn_path, struct ca_geo **out, char *err,
                size_t errlen);
void ca_geo_close(struct ca_geo *g); /* accepts NULL */

/* cc receives "US", "--" (private) or "" (unknown); asn 0 when unknown. g may be NULL. */
void ca_geo_lookup(struct ca_geo *g, uint8_t ip_version, const uint8_t addr[16], char cc[3],
                   uint32_t *asn);

/* 1 for private/loopback/link-local/ULA/multicast/unspecified addresses */
int ca_geo_is_private(uint8_t ip_version, const uint8_t addr[16]);

#endif

/*
 * Passive DNS: remembers address -> name from the A/AAAA answers of DNS
 * responses seen in a capture, so that later flows to that address can be
 * labelled with the name the client looked up.  Bounded: a fixed-size
 * table where a newer answer replaces an older one on collision.
 */
#ifndef CA_PDNS_H
#define CA_PDNS_H

#include <stddef.h>
#include <stdint.h>

struct ca_pdns;

struct ca_pdns *ca_pdns_new(void);    /* NULL on ENOMEM */
void ca_pdns_free(struct ca_pdns *d); /* accepts NULL */

/* Parses a DNS message (UDP payload, len bytes present) and learns its answers. */
void ca_pdns_learn(struct ca_pdns *d, const uint8_t *msg, uint32_t len);

/* The name for addr or NULL; valid until the next ca_pdns_learn. */
const char *ca_pdns_lookup(const struct ca_pdns *d, uint8_t ip_version, const uint8_t addr[16]);

#endif

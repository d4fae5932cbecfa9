/*
 * The filter language, compiled once per request into a predicate over hot
 * flow records (struct ca_hot, store.h).  Grammar:
 *
 *   expr   := term ( ("or" | "||") term )*
 *   term   := factor ( ("and" | "&&") factor )*
 *   factor := ("not" | "!") factor | "(" expr ")" | field op value
 *           | field "in" "(" value ("," value)* ")"
 *   op     := == != < <= > >= ~
 *
 * Fields, values and units are listed in docs/api.md ("Filter language").
 * Names compare case-insensitively.  `a != v` is `not (a == v)`, also for
 * two-sided fields (ip, port, country, asn: "either side").
 *
 * Names (host, proto, category, risk, capture names) are resolved at
 * compile time through struct ca_filter_env, so matching is integer work.
 */
#ifndef CA_FILTER_H
#define CA_FILTER_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct ca_filter;

struct ca_filter_env {
    void *arg;
    /* Every interned string of a kind (enum ca_str_kind): fn(a, id, name). */
    int (*strings)(void *arg, int kind, int (*fn)(void *a, uint32_t id, const char *s), void *a);
    /* Largest string id (bitset size). */
    uint32_t (*str_max)(void *arg);
    /* Capture id by name; 0 or CA_ENOTFOUND. */
    int (*capture_by_name)(void *arg, const char *name, uint32_t *id);
};

/* What a compiled filter sees of a flow. */
struct ca_filter_row {
    const struct ca_hot *h;
    uint32_t capture;
    int64_t cap_start; /* first_ns of the flow's capture (relative times) */
};

/*
 * Compiles text (NULL or blank = every flow).  On a syntax or value error
 * returns CA_EINVAL with err set and *pos the 0-based column of the bad
 * token.  env may be NULL when no names need resolving (name fields then
 * match nothing).  *out is owned by the caller (ca_filter_free).
 */
int ca_filter_compile(const char *text, const struct ca_filter_env *env, struct ca_filter **out,
                      char *err, size_t errlen, int *pos);
void ca_filter_free(struct ca_filter *f); /* accepts NULL */
int ca_filter_match(const struct ca_filter *f, const struct ca_filter_row *row);
/*
 * The same test over n rows at once: sel[0..k) receives the indexes (into h)
 * of the k rows that match, ascending; returns k.  Much faster than n calls
 * of ca_filter_match on scans.  sel has room for n.
 */
size_t ca_filter_select(const struct ca_filter *f, const struct ca_hot *h, size_t n,
                        uint32_t capture, int64_t cap_start, uint32_t *sel);
/*
 * Addresses (at most max) one of which every matching flow has on some
 * side: an exact-address test (`ip == A`, `src in (A, B)`) that the whole
 * filter is an and of.  Returns how many (0 when the filter has no such
 * test), filling addr[] and ver[] (4 or 6).  Lets queries read an address
 * index instead of every flow.
 */
int ca_filter_required_addrs(const struct ca_filter *f, uint8_t (*addr)[16], int *ver, int max);
/* 1 when the filter accepts every flow (no condition). */
int ca_filter_is_all(const struct ca_filter *f);
/* 1 when the filter needs the capture start (relative times). */
int ca_filter_uses_cap_start(const struct ca_filter *f);

/* Helpers shared with the query engine. */
/* Parses an address or CIDR ("10.0.0.0/8", "2001:db8::/32"); 0 or -1. */
int ca_filter_parse_cidr(const char *s, uint8_t addr[16], int *ver, int *bits);
/* Parses an ISO 8601 time into ns since the epoch; 0 or -1. */
int ca_filter_parse_time(const char *s, int64_t *ns);
/* Name of an IP protocol number ("tcp", "udp"...) or NULL. */
const char *ca_l4_name(int l4);
const char *ca_tcp_state_name(int st);

#endif

/*
 * Sorting records by a 64-bit key: a radix sort (16 bits a pass, passes
 * where every key has the same digit skipped), stable, then a comparison
 * sort of each run of equal keys where the key is only a prefix of what
 * orders the records (addresses by their first bytes, say).
 */
#ifndef CA_KEYSORT_H
#define CA_KEYSORT_H

#include <stddef.h>
#include <stdint.h>

/* A record's key and its index in the caller's array. */
struct ca_keyord {
    uint64_t key;
    uint32_t idx;
    uint32_t pad;
};

/*
 * Sorts o[0 .. n) by key, stably.  o is a ca_big_alloc block; returns the
 * sorted array, o or another such block (o is then freed), or NULL when
 * out of memory (o freed).
 */
struct ca_keyord *ca_keyord_sort(struct ca_keyord *o, size_t n);

/* Then orders each run of equal keys in o[0 .. n) with cmp (qsort_r's
 * comparison: it gets two struct ca_keyord and arg). */
void ca_keyord_ties(struct ca_keyord *o, size_t n, int (*cmp)(const void *, const void *, void *),
                    void *arg);

#endif

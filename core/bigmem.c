/* Big arrays in huge-page-advised anonymous maps (see bigmem.h). */
#include <malloc.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bigmem.h"

#define BIG_UNIT ((size_t)2 << 20)
#define BIG_SMALL ((size_t)1 << 20) /* below: the heap */
#define BIG_HDR ((size_t)64)        /* data stays 64-aligned */

/* Before the data: what the block is. */
struct big_hdr {
    size_t len;  /* bytes usable */
    size_t mlen; /* bytes mapped; 0: a heap block */
    size_t hw;   /* a map: the most bytes it has been usable for (the rest is still zero) */
};

static size_t map_len(size_t len)
{
    if (len > SIZE_MAX - BIG_HDR - BIG_UNIT)
        return 0;
    return (len + BIG_HDR + BIG_UNIT - 1) & ~(BIG_UNIT - 1);
}

void ca_big_advise(void *p, size_t len)
{
    uintptr_t lo = ((uintptr_t)p + 4095) & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + len) & ~(uintptr_t)4095;

    if (p != NULL && hi > lo)
        (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE); /* a hint: failure is fine */
}

static void *big_new(size_t len)
{
    struct big_hdr h = {len, 0, len};
    char *m;

    if (len < BIG_SMALL) {
        m = calloc(1, BIG_HDR + len);
    } else {
        h.mlen = map_len(len);
        if (h.mlen == 0)
            return NULL;
        m = mmap(NULL, h.mlen, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (m == MAP_FAILED)
            return NULL;
        ca_big_advise(m, h.mlen);
    }
    if (m == NULL)
        return NULL;
    memcpy(m, &h, sizeof(h));
    return m + BIG_HDR;
}

void *ca_big_alloc(size_t len)
{
    return big_new(len);
}

void *ca_big_realloc(void *p, size_t len)
{
    struct big_hdr h;
    char *m, *g;

    if (p == NULL)
        return big_new(len);
    m = (char *)p - BIG_HDR;
    memcpy(&h, m, sizeof(h));
    if (h.mlen == 0 && len < BIG_SMALL) { /* heap to heap */
        g = realloc(m, BIG_HDR + len);
        if (g == NULL)
            return NULL;
        if (len > h.len)
            memset(g + BIG_HDR + h.len, 0, len - h.len);
    } else if (h.mlen == 0) { /* heap to a map */
        g = big_new(len);
        if (g == NULL)
            return NULL;
        memcpy(g, p, h.len < len ? h.len : len);
        free(m);
        return g;
    } else { /* a map stays a map */
        size_t ml = map_len(len);

        if (ml == 0)
            return NULL;
        g = m;
        if (ml != h.mlen) {
            g = mremap(m, h.mlen, ml, MREMAP_MAYMOVE);
            if (g == MAP_FAILED)
                return NULL;
            if (ml > h.mlen)
                ca_big_advise(g, ml); /* a moved map keeps its advice; a grown one may not */
            h.mlen = ml;
        }
        /* beyond the most it was ever usable for, a map is untouched: zero */
        if (len > h.len && h.hw > h.len)
            memset(g + BIG_HDR + h.len, 0, (len < h.hw ? len : h.hw) - h.len);
        if (len > h.hw)
            h.hw = len;
        if (h.hw > ml - BIG_HDR)
            h.hw = ml - BIG_HDR;
    }
    h.len = len;
    memcpy(g, &h, sizeof(h));
    return g + BIG_HDR;
}

void ca_big_free(void *p)
{
    struct big_hdr h;
    char *m;

    if (p == NULL)
        return;
    m = (char *)p - BIG_HDR;
    memcpy(&h, m, sizeof(h));
    if (h.mlen == 0)
        free(m);
    else
        munmap(m, h.mlen);
}

void ca_big_heap_keep(void)
{
    (void)mallopt(M_MMAP_THRESHOLD, 64 << 20);
    (void)mallopt(M_TRIM_THRESHOLD, 256 << 20);
}

void ca_big_heap_advise(void)
{
    static _Thread_local char *done; /* the heap's end when last advised */
    char *end = sbrk(0);

    if (end == (char *)-1 || end == done)
        return;
    if (done == NULL) {
        (void)mallopt(M_TOP_PAD, 32 << 20);
    } else if (end > done) {
        ca_big_advise(done, (size_t)(end - done));
    }
    done = end;
}

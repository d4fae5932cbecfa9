/*
 * Big arrays (core/bigmem.c): contents kept and new bytes zero across
 * growth from the heap to a map, growth of a map (moved or not), and a
 * shrink followed by a growth.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "unit.h"

/* Whether p[from .. to) holds the pattern of fill(). */
static int has_pattern(const uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != (uint8_t)(i * 131 + 7))
            return 0;
    return 1;
}

static void fill(uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        p[i] = (uint8_t)(i * 131 + 7);
}

static int all_zero(const uint8_t *p, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

static void test_grow(void)
{
    size_t sizes[] = {100, 4000, 900000, 3u << 20, 5u << 20, 40u << 20};
    size_t n = sizes[0];
    uint8_t *p = ca_big_alloc(n);

    CHECK(p != NULL);
    if (p == NULL)
        return;
    CHECK(all_zero(p, 0, n));
    fill(p, 0, n);
    for (size_t k = 1; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
        uint8_t *g = ca_big_realloc(p, sizes[k]);

        CHECK(g != NULL);
        if (g == NULL)
            break;
        p = g;
        CHECK(((uintptr_t)p & 15) == 0);
        CHECK(has_pattern(p, 0, n));
        CHECK(all_zero(p, n, sizes[k]));
        fill(p, n, sizes[k]);
        n = sizes[k];
    }
    ca_big_free(p);
    ca_big_free(NULL);
    p = ca_big_realloc(NULL, 10); /* NULL: a new block */
    CHECK(p != NULL && all_zero(p, 0, 10));
    ca_big_free(p);
}

static void test_shrink_regrow(void)
{
    size_t big = 9u << 20, small = 3u << 20;
    uint8_t *p = ca_big_alloc(big), *g;

    CHECK(p != NULL);
    if (p == NULL)
        return;
    fill(p, 0, big);
    g = ca_big_realloc(p, small);
    CHECK(g != NULL);
    if (g == NULL) {
        ca_big_free(p);
        return;
    }
    p = g;
    CHECK(has_pattern(p, 0, small));
    g = ca_big_realloc(p, big); /* the bytes given up before read back zero */
    CHECK(g != NULL);
    if (g != NULL) {
        p = g;
        CHECK(has_pattern(p, 0, small));
        CHECK(all_zero(p, small, big));
    }
    ca_big_free(p);
}

int main(void)
{
    unit_run("bigmem: growth keeps contents, new bytes zero", test_grow);
    unit_run("bigmem: a shrink then a growth gives zero bytes", test_shrink_regrow);
    return unit_done();
}

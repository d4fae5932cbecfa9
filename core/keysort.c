/* Sorting records by a 64-bit key (see keysort.h). */
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "keysort.h"

struct ca_keyord *ca_keyord_sort(struct ca_keyord *o, size_t n)
{
    size_t *cnt = malloc(65536 * sizeof(*cnt));
    struct ca_keyord *t = ca_big_alloc((n + 1) * sizeof(*t));

    if (t == NULL || cnt == NULL) {
        ca_big_free(o);
        ca_big_free(t);
        free(cnt);
        return NULL;
    }
    for (int shift = 0; shift < 64; shift += 16) {
        size_t sum = 0;
        struct ca_keyord *x;

        memset(cnt, 0, 65536 * sizeof(*cnt));
        for (size_t i = 0; i < n; i++)
            cnt[(o[i].key >> shift) & 0xffff]++;
        if (n > 0 && cnt[(o[0].key >> shift) & 0xffff] == n)
            continue; /* one digit for all: nothing to move */
        for (size_t d = 0; d < 65536; d++) {
            size_t c = cnt[d];

            cnt[d] = sum;
            sum += c;
        }
        for (size_t i = 0; i < n; i++)
            t[cnt[(o[i].key >> shift) & 0xffff]++] = o[i];
        x = o;
        o = t;
        t = x;
    }
    ca_big_free(t);
    free(cnt);
    return o;
}

void ca_keyord_ties(struct ca_keyord *o, size_t n, int (*cmp)(const void *, const void *, void *),
                    void *arg)
{
    for (size_t i = 0, j; i < n; i = j) {
        for (j = i + 1; j < n && o[j].key == o[i].key; j++)
            ;
        if (j - i > 1)
            qsort_r(o + i, j - i, sizeof(*o), cmp, arg);
    }
}

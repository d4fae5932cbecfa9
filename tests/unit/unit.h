/*
 * A tiny TAP producer for the C unit tests.  Each test binary prints
 * "ok N - name" / "not ok N - name" lines and a plan; tests/run.sh counts
 * them.  CHECK records a failure with file:line and continues.
 */
#ifndef CA_UNIT_H
#define CA_UNIT_H

#include <stdio.h>

extern int unit_failed_checks;

/* Runs fn as one TAP test point; fails when any CHECK inside fails. */
void unit_run(const char *name, void (*fn)(void));
/* Prints the plan; returns the process exit status (0 when all passed). */
int unit_done(void);
/* Directory of the shared corpus: $CAPATLAS_PCAPS or ../shared/pcaps. */
const char *unit_pcaps(void);

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            printf("#   check failed at %s:%d: %s\n", __FILE__, __LINE__, #cond);                  \
            unit_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#define CHECK_EQ_U(a, b)                                                                           \
    do {                                                                                           \
        unsigned long long ca__a = (a), ca__b = (b);                                               \
        if (ca__a != ca__b) {                                                                      \
            printf("#   check failed at %s:%d: %s == %s (%llu != %llu)\n", __FILE__, __LINE__, #a, \
                   #b, ca__a, ca__b);                                                              \
            unit_failed_checks++;                                                                  \
        }                                                                                          \
    } while (0)

#endif

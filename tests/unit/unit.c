/*
 * TAP output for the C unit tests (see unit.h).
 */
#include <stdlib.h>

#include "unit.h"

int unit_failed_checks;
static int unit_count, unit_failed;

void unit_run(const char *name, void (*fn)(void))
{
    int before = unit_failed_checks;

    fn();
    unit_count++;
    if (unit_failed_checks != before) {
        unit_failed++;
        printf("not ok %d - %s\n", unit_count, name);
    } else {
        printf("ok %d - %s\n", unit_count, name);
    }
    fflush(stdout);
}

int unit_done(void)
{
    printf("1..%d\n", unit_count);
    return unit_failed ? 1 : 0;
}

const char *unit_pcaps(void)
{
    const char *d = getenv("CAPATLAS_PCAPS");

    return d != NULL && *d != '\0' ? d : "../shared/pcaps";
}

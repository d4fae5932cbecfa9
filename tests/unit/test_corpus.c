/*
 * Imports every capture listed in the corpus MANIFEST.tsv (nDPI's and
 * zeek's) and checks that nothing crashes and that the packet count equals
 * capinfos'.  Files libpcap refuses are listed and skipped.  Prints our
 * flow count next to ndpiReader's for each file (informational: idle
 * timeouts and tunnel handling legitimately differ on some captures).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "engine.h"
#include "unit.h"

static struct ca_engine *eng;

static int count_sink(void *arg, const struct ca_flow *flows, size_t n)
{
    (void)flows;
    *(size_t *)arg += n;
    return 0;
}

static void test_corpus(void)
{
    char path[1024], line[4096];
    FILE *m;
    int files = 0, agree = 0, compared = 0, refused = 0;

    snprintf(path, sizeof(path), "%s/MANIFEST.tsv", unit_pcaps());
    m = fopen(path, "r");
    CHECK(m != NULL);
    if (m == NULL)
        return;
    if (fgets(line, sizeof(line), m) == NULL) { /* header */
        fclose(m);
        CHECK(0);
        return;
    }
    while (fgets(line, sizeof(line), m) != NULL) {
        char *col[12] = {0};
        int nc = 0;
        char *save = NULL, *tok;
        for (tok = strtok_r(line, "\t\n", &save); tok != NULL && nc < 12;
             tok = strtok_r(NULL, "\t\n", &save))
            col[nc++] = tok;
        /* columns: file sha256 bytes format linktypes packets snaplen_truncated ndpi_flows ... */
        if (nc < 6 || col[0] == NULL)
            continue;
        /* an empty nDPI column collapses with strtok: recognise it by content */
        const char *ndpi =
            (nc > 7 && strchr(col[7], '/') == NULL && strcmp(col[7], "zeek/zeek") != 0) ? col[7]
                                                                                        : NULL;
        unsigned long long want = strtoull(col[5], NULL, 10);
        struct ca_import_req req;
        json_t *rep = NULL;
        char err[512] = "";
        size_t nflows = 0;
        int r;

        snprintf(path, sizeof(path), "%s/%s", unit_pcaps(), col[0]);
        memset(&req, 0, sizeof(req));
        req.path = path;
        req.sink = count_sink;
        req.sink_arg = &nflows;
        r = ca_engine_import(eng, &req, &rep, err, sizeof(err));
        files++;
        if (r == CA_EFORMAT && strstr(err, "pcapng interfaces") != NULL) {
            printf("# %s: skipped, libpcap cannot read it: %s\n", col[0], err);
            refused++;
            json_decref(rep);
            continue;
        }
        CHECK_EQ_U(r, 0);
        unsigned long long got =
            (unsigned long long)json_integer_value(json_object_get(rep, "packets"));
        if (got != want) {
            printf("#   %s: %llu packets, capinfos %llu\n", col[0], got, want);
            CHECK(0);
        }
        if (ndpi != NULL) {
            compared++;
            if (strtoull(ndpi, NULL, 10) == nflows)
                agree++;
        }
        printf("# %-36s packets %6llu/%-6llu flows %5zu ndpi %s%s\n", col[0], got, want, nflows,
               ndpi ? ndpi : "-",
               json_is_true(json_object_get(rep, "partial")) ? " (partial)" : "");
        json_decref(rep);
    }
    fclose(m);
    printf("# %d files, %d refused by libpcap; flow count equal to nDPI's on %d of %d\n", files,
           refused, agree, compared);
    CHECK(files > 100);
}

int main(void)
{
    struct ca_engine_conf c;
    char err[256];

    memset(&c, 0, sizeof(c));
    ca_engine_conf_defaults(&c);
    if (ca_engine_open(&c, &eng, err, sizeof(err)) != 0) {
        printf("Bail out! %s\n", err);
        return 1;
    }
    unit_run("every corpus capture imports; packets equal capinfos", test_corpus);
    ca_engine_close(eng);
    return unit_done();
}

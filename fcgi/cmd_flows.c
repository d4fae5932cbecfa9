/*
 * `capatlasd flows [--report] [--geo-db F] [--tcp-idle S] [--udp-idle S] [--store DIR] FILE|-`:
 * runs the import engine on one file without a store and prints one
 * compact JSON object per flow per line, then optionally the import
 * report as {"report": {...}}.  The same engine and encoder as the server.
 * With --count only the report is printed (the engine alone).
 * With --store DIR the flows go instead into a new workspace of the data
 * directory DIR, exactly as an import worker writes them (benchmarks), and
 * only the report is printed; --part-flows N sets the flows of a part of
 * its tables (ca_ws_set_part_flows).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bigmem.h"
#include "ca_error.h"
#include "commands.h"
#include "engine.h"
#include "flow.h"
#include "store.h"

/* --store DIR: a full import into a new workspace of that data directory */
struct ws_sink {
    struct ca_ws *ws;
    uint32_t cap_id;
};

static int store_flows(void *arg, const struct ca_flow *flows, size_t n)
{
    struct ws_sink *s = arg;

    return ca_ws_flows_put(s->ws, s->cap_id, flows, n);
}

static int print_flows(void *arg, const struct ca_flow *flows, size_t n)
{
    (void)arg;
    for (size_t i = 0; i < n; i++) {
        json_t *j = ca_flow_to_json(&flows[i]);
        if (j == NULL)
            return CA_ENOMEM;
        if (json_dumpf(j, stdout, JSON_COMPACT) != 0) {
            json_decref(j);
            return CA_EIO;
        }
        json_decref(j);
        fputc('\n', stdout);
    }
    return ferror(stdout) ? CA_EIO : 0;
}

static int count_only(void *arg, const struct ca_flow *flows, size_t n)
{
    (void)arg;
    (void)flows;
    (void)n;
    return 0;
}

static int parse_secs(const char *s, uint32_t *out)
{
    char *end;
    unsigned long v = strtoul(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v == 0 || v > 86400 * 7)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: capatlasd flows [--report] [--geo-db F] [--tcp-idle S] "
                    "[--udp-idle S] [--count | --store DIR [--part-flows N]] FILE|-\n");
}

int cmd_flows(int argc, char **argv)
{
    struct ca_engine_conf conf;
    struct ca_engine *eng = NULL;
    struct ca_import_req req;
    json_t *report = NULL;
    const char *file = NULL;
    char err[512] = "";
    int want_report = 0, count = 0, r, i;
    const char *store = NULL;
    struct ca_portal *portal = NULL;
    struct ws_sink wsk = {NULL, 0};

    memset(&conf, 0, sizeof(conf));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--report") == 0) {
            want_report = 1;
        } else if (strcmp(a, "--count") == 0) {
            want_report = count = 1; /* the engine alone: flows are dropped */
        } else if (strcmp(a, "--store") == 0 && i + 1 < argc) {
            store = argv[++i];
            want_report = 1;
        } else if (strcmp(a, "--geo-db") == 0 && i + 1 < argc) {
            conf.geo_db = argv[++i];
        } else if (strcmp(a, "--part-flows") == 0 && i + 1 < argc) {
            char *end;
            long n = strtol(argv[++i], &end, 10);

            if (end == argv[i] || *end != '\0' || n <= 0) {
                fprintf(stderr, "capatlasd flows: bad --part-flows value\n");
                return 2;
            }
            ca_ws_set_part_flows((size_t)n);
        } else if (strcmp(a, "--tcp-idle") == 0 && i + 1 < argc) {
            if (parse_secs(argv[++i], &conf.tcp_idle_sec) != 0) {
                fprintf(stderr, "capatlasd flows: bad --tcp-idle value\n");
                return 2;
            }
        } else if (strcmp(a, "--udp-idle") == 0 && i + 1 < argc) {
            if (parse_secs(argv[++i], &conf.udp_idle_sec) != 0) {
                fprintf(stderr, "capatlasd flows: bad --udp-idle value\n");
                return 2;
            }
        } else if (strcmp(a, "--") == 0 && i + 1 < argc && file == NULL) {
            file = argv[++i];
        } else if (strcmp(a, "-") == 0 && file == NULL) {
            file = a; /* standard input (pcap, pcapng or gzip of either) */
        } else if (a[0] == '-' && a[1] != '\0') {
            usage();
            return 2;
        } else if (file == NULL) {
            file = a;
        } else {
            usage();
            return 2;
        }
    }
    if (file == NULL) {
        usage();
        return 2;
    }
    if (store != NULL)
        ca_big_heap_keep(); /* as an import worker does */
    ca_engine_conf_defaults(&conf);
    r = ca_engine_open(&conf, &eng, err, sizeof(err));
    if (r != 0) {
        fprintf(stderr, "capatlasd flows: %s\n", err[0] ? err : ca_strerror(r));
        return 1;
    }
    memset(&req, 0, sizeof(req));
    req.path = file;
    if (strcmp(file, "-") == 0)
        req.fp = stdin;
    req.sink = count ? count_only : print_flows;
    if (store != NULL) {
        uint64_t ws_id = 0;
        json_t *meta = json_pack("{s:s, s:s}", "name", file, "source", "cli");
        r = ca_portal_open(store, &portal, err, sizeof(err));
        if (r == 0)
            r = ca_workspace_create(portal, 1, "flows --store", "", &ws_id, err, sizeof(err));
        if (r == 0)
            r = ca_ws_open(store, ws_id, &wsk.ws, err, sizeof(err));
        if (r == 0)
            r = ca_ws_capture_add(wsk.ws, meta, &wsk.cap_id);
        json_decref(meta);
        if (r != 0) {
            fprintf(stderr, "capatlasd flows: store: %s\n", err[0] ? err : ca_strerror(r));
            ca_ws_close(wsk.ws);
            ca_portal_close(portal);
            ca_engine_close(eng);
            return 1;
        }
        req.capture_id = wsk.cap_id;
        req.sink = store_flows;
        req.sink_arg = &wsk;
    }
    r = ca_engine_import(eng, &req, &report, err, sizeof(err));
    if (r == 0 && wsk.ws != NULL) {
        r = ca_ws_capture_finish(wsk.ws, wsk.cap_id, report);
        if (r != 0)
            snprintf(err, sizeof(err), "store: cannot finish the capture");
    }
    ca_ws_close(wsk.ws);
    ca_portal_close(portal);
    if (r == 0 && want_report && report != NULL) {
        json_t *wrap = json_pack("{s:O}", "report", report);
        if (wrap != NULL) {
            json_dumpf(wrap, stdout, JSON_COMPACT);
            fputc('\n', stdout);
            json_decref(wrap);
        }
    }
    json_decref(report);
    ca_engine_close(eng);
    if (fflush(stdout) != 0 && r == 0) {
        fprintf(stderr, "capatlasd flows: write error\n");
        return 1;
    }
    if (r != 0) {
        fprintf(stderr, "capatlasd flows: %s\n", err[0] ? err : ca_strerror(r));
        return 1;
    }
    return 0;
}

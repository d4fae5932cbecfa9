/*
 * `capatlasd flows [--report] [--geo-db F] [--tcp-idle S] [--udp-idle S] FILE|-`:
 * runs the import engine on one file without a store and prints one
 * compact JSON object per flow per line, then optionally the import
 * report as {"report": {...}}.  The same engine and encoder as the server.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "commands.h"
#include "engine.h"
#include "flow.h"

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
                    "[--udp-idle S] FILE|-\n");
}

int cmd_flows(int argc, char **argv)
{
    struct ca_engine_conf conf;
    struct ca_engine *eng = NULL;
    struct ca_import_req req;
    json_t *report = NULL;
    const char *file = NULL;
    char err[512] = "";
    int want_report = 0, r, i;

    memset(&conf, 0, sizeof(conf));
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--report") == 0) {
            want_report = 1;
        } else if (strcmp(a, "--geo-db") == 0 && i + 1 < argc) {
            conf.geo_db = argv[++i];
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
    req.sink = print_flows;
    r = ca_engine_import(eng, &req, &report, err, sizeof(err));
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

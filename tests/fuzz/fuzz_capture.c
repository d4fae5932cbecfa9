/*
 * libFuzzer target for the capture decoder: the input bytes are a capture
 * file, fed through the real reader (fmemopen -> ca_import_req.fp, so gzip,
 * pcap, pcapng and libpcap's parsing are all in play), the decoder, the flow
 * table with nDPI, and the flow codec and JSON encoder on every flow.
 * Built by `make fuzz` with clang -fsanitize=fuzzer,address,undefined.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ca_error.h"
#include "engine.h"
#include "flow.h"

static struct ca_engine *eng;

static int sink(void *arg, const struct ca_flow *flows, size_t n)
{
    uint8_t buf[CA_FLOW_ENC_MAX];
    struct ca_flow back;

    (void)arg;
    for (size_t i = 0; i < n; i++) {
        size_t len = ca_flow_encode(&flows[i], buf);
        if (ca_flow_decode(buf, len, &back) != 0 || back.pkts[0] != flows[i].pkts[0])
            abort(); /* the codec must round-trip what the engine produced */
        json_t *j = ca_flow_to_json(&flows[i]);
        if (j != NULL) {
            char *s = json_dumps(j, JSON_COMPACT);
            free(s);
            json_decref(j);
        }
    }
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct ca_engine_conf c;
    char err[256];

    (void)argc;
    (void)argv;
    memset(&c, 0, sizeof(c));
    if (ca_engine_open(&c, &eng, err, sizeof(err)) != 0) {
        fprintf(stderr, "fuzz_capture: %s\n", err);
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct ca_import_req req;
    json_t *rep = NULL;
    char err[256];
    FILE *fp;

    if (size == 0)
        return 0;
    fp = fmemopen((void *)(uintptr_t)data, size, "rb");
    if (fp == NULL)
        return 0;
    memset(&req, 0, sizeof(req));
    req.path = "fuzz";
    req.fp = fp;
    req.sink = sink;
    ca_engine_import(eng, &req, &rep, err, sizeof(err));
    if (rep != NULL) {
        char *s = json_dumps(rep, JSON_COMPACT);
        free(s);
        json_decref(rep);
    }
    fclose(fp);
    return 0;
}

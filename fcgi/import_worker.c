/*
 * An import worker: takes queued jobs from the portal store one at a time
 * and runs the flow engine on the job's file, writing flows into the
 * workspace store.  Flows become visible only when ca_ws_capture_finish
 * commits, so a crash or a SIGTERM mid-import leaves nothing half-visible:
 * on SIGTERM the job goes back to "queued" for the next worker.  A file
 * that fails to import is kept, and the error is shown on the capture.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ca_error.h"
#include "config.h"
#include "engine.h"
#include "log.h"
#include "store.h"
#include "workers.h"

#define PROGRESS_EVERY_MS 500
#define IDLE_SLEEP_MS 200
/* A capture that keeps killing the worker is failed, not retried forever. */
#define MAX_ATTEMPTS 3

static volatile sig_atomic_t imp_term;

static void imp_on_term(int sig)
{
    imp_term = 1;
}

struct imp {
    struct ca_portal *portal;
    struct ca_ws *ws;
    uint64_t job_id;
    uint32_t cap_id;
    double last_ms;
    uint64_t bytes, packets;
};

static double mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL); /* a signal cuts it short, which is what we want */
}

static int imp_sink(void *arg, const struct ca_flow *flows, size_t n)
{
    struct imp *im = arg;

    return ca_ws_flows_put(im->ws, im->cap_id, flows, n);
}

static void job_set(struct ca_portal *p, uint64_t id, json_t *fields)
{
    if (fields == NULL)
        return;
    if (ca_job_update(p, id, fields) < 0)
        log_line("job %llu: cannot update its state", (unsigned long long)id);
    json_decref(fields);
}

static void cap_set(struct ca_ws *w, uint32_t id, json_t *fields)
{
    if (fields == NULL)
        return;
    if (w != NULL && ca_ws_capture_update(w, id, fields) < 0)
        log_line("capture %u: cannot update its state", id);
    json_decref(fields);
}

static int imp_progress(void *arg, uint64_t bytes_done, uint64_t packets_done)
{
    struct imp *im = arg;
    double now = mono_ms();

    im->bytes = bytes_done;
    im->packets = packets_done;
    if (now - im->last_ms >= PROGRESS_EVERY_MS) {
        im->last_ms = now;
        job_set(im->portal, im->job_id,
                json_pack("{s:I, s:I}", "bytes_done", (json_int_t)bytes_done, "packets_done",
                          (json_int_t)packets_done));
    }
    return imp_term ? 1 : 0;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

static void run_job(const struct config *c, struct ca_portal *p, struct ca_engine *eng, json_t *job)
{
    struct imp im;
    struct ca_import_req req;
    json_t *report = NULL;
    char err[512] = "";
    const char *path = jstr(job, "path"), *kind = jstr(job, "kind");
    uint64_t ws_id = jint(job, "workspace"), attempts;
    int rc;

    memset(&im, 0, sizeof(im));
    im.portal = p;
    im.job_id = jint(job, "id");
    im.cap_id = (uint32_t)jint(job, "capture");
    log_line("job %llu: import of capture %u in workspace %llu started",
             (unsigned long long)im.job_id, im.cap_id, (unsigned long long)ws_id);
    attempts = jint(job, "attempts") + 1;
    job_set(p, im.job_id,
            json_pack("{s:I, s:I}", "started", (json_int_t)time(NULL), "attempts",
                      (json_int_t)attempts));
    if (attempts > MAX_ATTEMPTS) {
        snprintf(err, sizeof(err), "the import stopped the worker %d times; giving up",
                 MAX_ATTEMPTS);
        rc = CA_EINTERNAL;
        if (ca_ws_open(c->data, ws_id, &im.ws, NULL, 0) < 0)
            im.ws = NULL;
        goto failed;
    }
    if (kind == NULL || strcmp(kind, "import") != 0 || path == NULL || ws_id == 0 ||
        im.cap_id == 0) {
        snprintf(err, sizeof(err), "malformed job");
        rc = CA_EINTERNAL;
        goto failed;
    }
    rc = ca_ws_open(c->data, ws_id, &im.ws, err, sizeof(err));
    if (rc < 0)
        goto failed;
    cap_set(im.ws, im.cap_id, json_pack("{s:s, s:n}", "state", "importing", "error"));
    rc = ca_ws_capture_purge_flows(im.ws, im.cap_id);
    if (rc < 0) {
        snprintf(err, sizeof(err), "cannot clear earlier flows: %s", ca_strerror(rc));
        goto failed;
    }
    memset(&req, 0, sizeof(req));
    req.path = path;
    req.capture_id = im.cap_id;
    req.sink = imp_sink;
    req.sink_arg = &im;
    req.progress = imp_progress;
    req.progress_arg = &im;
    im.last_ms = mono_ms();
    rc = ca_engine_import(eng, &req, &report, err, sizeof(err));
    if (rc == CA_ECANCELED && imp_term) {
        /* Shutting down: give the job back; leftovers are purged next time. */
        cap_set(im.ws, im.cap_id, json_pack("{s:s}", "state", "queued"));
        job_set(p, im.job_id,
                json_pack("{s:s, s:n, s:I, s:I, s:I}", "state", "queued", "started", "bytes_done",
                          (json_int_t)0, "packets_done", (json_int_t)0, "attempts",
                          (json_int_t)(attempts - 1)));
        log_line("job %llu: abandoned on shutdown, requeued", (unsigned long long)im.job_id);
        goto out;
    }
    if (rc < 0)
        goto failed;
    rc = ca_ws_capture_finish(im.ws, im.cap_id, report);
    if (rc < 0) {
        snprintf(err, sizeof(err), "cannot publish the flows: %s", ca_strerror(rc));
        goto failed;
    }
    {
        json_t *bt = json_object_get(job, "bytes_total");

        job_set(p, im.job_id,
                json_pack("{s:s, s:n, s:I, s:O, s:I}", "state", "done", "error", "finished",
                          (json_int_t)time(NULL), "bytes_done", bt != NULL ? bt : json_null(),
                          "packets_done", (json_int_t)jint(report, "packets")));
    }
    log_line("job %llu: done, %llu packets, %llu flows", (unsigned long long)im.job_id,
             (unsigned long long)jint(report, "packets"),
             (unsigned long long)jint(report, "flows"));
    goto out;
failed:
    if (err[0] == '\0')
        snprintf(err, sizeof(err), "%s", ca_strerror(rc));
    if (im.ws != NULL) {
        ca_ws_capture_purge_flows(im.ws, im.cap_id);
        cap_set(im.ws, im.cap_id,
                json_pack("{s:s, s:s, s:O}", "state", "failed", "error", err, "report",
                          report != NULL ? report : json_null()));
    }
    job_set(p, im.job_id,
            json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", "failed", "error", err, "finished",
                      (json_int_t)time(NULL), "bytes_done", (json_int_t)im.bytes, "packets_done",
                      (json_int_t)im.packets));
    log_line("job %llu: failed: %s", (unsigned long long)im.job_id, err);
out:
    json_decref(report);
    ca_ws_close(im.ws);
}

int import_worker_run(const struct config *c, int index)
{
    struct ca_portal *portal = NULL;
    struct ca_engine *eng = NULL;
    struct ca_engine_conf ec;
    struct sigaction sa;
    char err[256] = "";
    int rc, status = 1;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = imp_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    memset(&ec, 0, sizeof(ec));
    ca_engine_conf_defaults(&ec);
    ec.geo_db = c->geo_db[0] != '\0' ? c->geo_db : NULL;
    rc = ca_engine_open(&ec, &eng, err, sizeof(err));
    if (rc < 0) {
        log_line("import worker %d: cannot open the engine: %s", index,
                 err[0] ? err : ca_strerror(rc));
        goto out;
    }
    rc = ca_portal_open(c->data, &portal, err, sizeof(err));
    if (rc < 0) {
        log_line("import worker %d: cannot open the portal store: %s", index,
                 err[0] ? err : ca_strerror(rc));
        goto out;
    }
    log_line("import worker %d ready", index);
    while (!imp_term) {
        json_t *job = NULL;

        rc = ca_job_claim(portal, getpid(), &job);
        if (rc == CA_ENOTFOUND) {
            sleep_ms(IDLE_SLEEP_MS);
            continue;
        }
        if (rc < 0) {
            log_line("import worker %d: cannot claim a job: %s", index, ca_strerror(rc));
            sleep_ms(1000);
            continue;
        }
        run_job(c, portal, eng, job);
        json_decref(job);
    }
    log_line("import worker %d stopped", index);
    status = 0;
out:
    ca_portal_close(portal);
    ca_engine_close(eng);
    return status;
}

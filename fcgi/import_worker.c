/*
 * An import worker: takes queued jobs from the portal store one at a time
 * and runs the flow engine on the job's file, writing flows into the
 * workspace store.  Flows become visible only when ca_ws_capture_finish
 * commits, so a crash or a SIGTERM mid-import leaves nothing half-visible:
 * on SIGTERM the job goes back to "queued" for the next worker.  A file
 * that fails to import is kept, and the error is shown on the capture.
 *
 * Job kinds: "import" (a file already in the workspace: upload, inbox,
 * archive member), "url" (download and parse at once: a thread streams
 * the URL into a ring in memory that the engine reads through a
 * fopencookie reader, and from there into the capture file), "stream"
 * (the same reader on a file an API worker is appending to; the end comes
 * when the job's "stream" field says "closed"), "list" and "container"
 * (an Azure container listing: shown, or turned into one "url" job per
 * blob).  A zip (by content) is unpacked into one capture per member.
 */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "azure.h"
#include "bigmem.h"
#include "ca_archive.h"
#include "ca_error.h"
#include "config.h"
#include "engine.h"
#include "fetch.h"
#include "ingest.h"
#include "log.h"
#include "store.h"
#include "workers.h"

#define PROGRESS_EVERY_MS 500
#define IDLE_SLEEP_MS 200
/* A capture that keeps killing the worker is failed, not retried forever. */
#define MAX_ATTEMPTS 3
#define LIST_MAX_BYTES (16 * 1024 * 1024) /* one List Blobs page */
#define LIST_MAX_BLOBS 100000
#define STREAM_STALL_MS (330 * 1000) /* nginx gives up on a silent client after 300 s */
/* Imports are background work: a user waiting on a chart goes first. */
#define IMPORT_NICE 10
#define FEED_RING (64u << 20)   /* a download's lead over the engine */
#define FEED_CHUNK (1u << 20)   /* the download is written to its file a MiB at a time */
#define FEED_WAKE (256u << 10)  /* bytes that wake the engine waiting for them */
#define FEED_NAP 50             /* ms the engine waits before it takes fewer */
#define FEED_ROOM (8u << 20)    /* room in the ring that wakes the download */
#define FEED_RBUF (1024 * 1024) /* the engine's reads of its input */

static volatile sig_atomic_t imp_term;

static void imp_on_term(int sig)
{
    imp_term = 1;
}

/* The fetch settings of this process, from the configuration. */
static struct ca_fetch_conf imp_fetch;
static const char *imp_allow[CONFIG_LIST_MAX], *imp_deny[CONFIG_LIST_MAX];

static void imp_fetch_conf(const struct config *c)
{
    memset(&imp_fetch, 0, sizeof(imp_fetch));
    for (size_t i = 0; i < c->fetch_allow_hosts.n; i++)
        imp_allow[i] = c->fetch_allow_hosts.item[i];
    for (size_t i = 0; i < c->fetch_deny_hosts.n; i++)
        imp_deny[i] = c->fetch_deny_hosts.item[i];
    imp_fetch.allow_hosts = imp_allow;
    imp_fetch.n_allow = c->fetch_allow_hosts.n;
    imp_fetch.deny_hosts = imp_deny;
    imp_fetch.n_deny = c->fetch_deny_hosts.n;
    imp_fetch.allow_http = c->fetch_allow_http;
    imp_fetch.connect_timeout_s = c->fetch_connect_timeout;
    imp_fetch.total_timeout_s = c->fetch_timeout;
    imp_fetch.max_size = c->fetch_max_size;
    imp_fetch.ca_file = c->fetch_ca_file[0] != '\0' ? c->fetch_ca_file : NULL;
    imp_fetch.max_retries = c->fetch_retries;
}

/*
 * The engine's input while it is still arriving.  A stream job's file
 * grows (an API worker appends to it): the engine reads it through
 * fopencookie, and at its current end the reader waits for more or for
 * the end of the stream.  A URL job's bytes go from the download thread
 * into a ring in memory that the engine reads, and from the ring into
 * the capture file: parsed without a trip through the page cache, and
 * written with O_DIRECT, a MiB at a time, where the file system allows
 * it.  Filling a GB of new page-cache pages cost the download thread
 * more CPU than anything but the MD5 (on a 2-core VM: 0.2-1.4 s), and
 * the engine's reading them back was more work on the thread that sets
 * the import's pace.  The ring also bounds the download's lead over the
 * engine (FEED_RING): a download runs at the pace of the parsing instead
 * of taking a core from it in a burst.
 */
struct feed {
    int rfd; /* stream: the growing file */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint64_t written; /* bytes the producer has made readable */
    uint64_t total;   /* expected size, 0 = unknown */
    uint64_t readpos;
    int done;  /* the producer has finished (well or not) */
    int stop;  /* the reader asks the producer to stop */
    int dl_rc; /* the download's result */
    char dl_err[512];
    struct ca_fetch_info info;
    /* download (URL jobs) */
    int wfd;
    int direct; /* wfd is O_DIRECT */
    const char *url;
    char *ring;      /* FEED_RING bytes, page-aligned; byte i at ring[i % FEED_RING] */
    uint64_t ondisk; /* bytes written to the file (download thread only) */
    int reader;      /* the engine reads the ring: its bytes are kept until read */
    int rwait;       /* the reader waits for bytes */
    int wwait;       /* the download waits for room */
    double rwaited;  /* ms the engine waited for bytes */
    double wwaited;  /* ms the download waited for room */
    char *rbuf;      /* the engine's stdio buffer */
    /* stream jobs: the end is told by the job record */
    int stream;
    struct imp *im;
};

struct imp {
    const struct config *conf;
    struct ca_portal *portal;
    struct ca_ws *ws;
    uint64_t ws_id;
    uint64_t job_id;
    uint32_t cap_id;
    double last_ms, start_ms, poll_ms;
    uint64_t bytes, packets;
    int canceled;
    struct feed *feed;
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

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static uint64_t jint(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);

    return json_is_integer(v) && json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
}

/* Reads the job's cancel flag (and, for streams, its end) now and then. */
static void imp_poll(struct imp *im, json_t **jobp)
{
    json_t *job = NULL;

    if (ca_job_get(im->portal, im->job_id, &job) < 0)
        return;
    if (json_is_true(json_object_get(job, "cancel")))
        im->canceled = 1;
    if (jobp != NULL)
        *jobp = job;
    else
        json_decref(job);
}

/* Progress into the job, at most every PROGRESS_EVERY_MS; also polls cancel. */
static void imp_note(struct imp *im, int force)
{
    double now = mono_ms();
    uint64_t done = im->bytes, total = 0;
    json_t *f;

    if (!force && now - im->last_ms < PROGRESS_EVERY_MS)
        return;
    im->last_ms = now;
    if (im->feed != NULL) {
        pthread_mutex_lock(&im->feed->mu);
        done = im->feed->stream ? im->feed->readpos : im->feed->written;
        total = im->feed->total;
        pthread_mutex_unlock(&im->feed->mu);
    }
    f = json_pack("{s:I, s:I}", "bytes_done", (json_int_t)done, "packets_done",
                  (json_int_t)im->packets);
    if (f != NULL && now > im->start_ms + 1) {
        double rate = (double)done / ((now - im->start_ms) / 1e3);

        json_object_set_new(f, "rate", json_integer((json_int_t)rate));
        if (total > 0) {
            json_object_set_new(f, "bytes_total", json_integer((json_int_t)total));
            json_object_set_new(
                f, "percent",
                json_real(done >= total ? 100.0 : 100.0 * (double)done / (double)total));
            json_object_set_new(
                f, "eta",
                rate > 0 ? json_integer(
                               (json_int_t)((double)(total - (done < total ? done : total)) / rate))
                         : json_null());
        }
    }
    job_set(im->portal, im->job_id, f);
    if (now - im->poll_ms >= PROGRESS_EVERY_MS) {
        im->poll_ms = now;
        imp_poll(im, NULL);
    }
}

static int imp_progress(void *arg, uint64_t bytes_done, uint64_t packets_done)
{
    struct imp *im = arg;

    im->bytes = bytes_done;
    im->packets = packets_done;
    imp_note(im, 0);
    return imp_term || im->canceled ? 1 : 0;
}

/* ---- the growing-file reader ---------------------------------------------- */

/* Wakes whoever waits on the feed (the caller holds f->mu): the engine when FEED_WAKE bytes
 * wait for it (it comes for fewer on its own, after FEED_NAP ms), the download when the
 * engine has made FEED_ROOM of room in the ring: a wake-up per TLS record, or per read of
 * the engine, costs more than the parsing gains. */
static void feed_wake(struct feed *f)
{
    if ((f->rwait && (f->written - f->readpos >= FEED_WAKE || f->done)) ||
        (f->wwait && f->written - f->readpos <= FEED_RING - FEED_ROOM))
        pthread_cond_broadcast(&f->cv);
}

/* Waits on f->cv for at most ms (the caller holds f->mu). */
static void feed_wait(struct feed *f, long ms)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_nsec += ms * 1000000L;
    ts.tv_sec += ts.tv_nsec / 1000000000L;
    ts.tv_nsec %= 1000000000L;
    pthread_cond_timedwait(&f->cv, &f->mu, &ts);
}

/* Asks the producer to stop, and wakes it if it waits for room. */
static void feed_stop(struct feed *f)
{
    pthread_mutex_lock(&f->mu);
    f->stop = 1;
    f->reader = 0;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

/* A download's bytes, out of the ring: what has arrived, up to size, without waiting longer
 * than it takes the first byte to come.  0 at the end. */
static ssize_t ring_read(struct feed *f, char *buf, size_t size)
{
    uint64_t avail, at;
    size_t k;

    pthread_mutex_lock(&f->mu);
    while (f->readpos >= f->written && !f->done) {
        if (imp_term || f->im->canceled) {
            pthread_mutex_unlock(&f->mu);
            return -1;
        }
        double t0 = mono_ms();

        f->rwait = 1;
        feed_wait(f, FEED_NAP);
        f->rwait = 0;
        f->rwaited += mono_ms() - t0;
        pthread_mutex_unlock(&f->mu);
        imp_note(f->im, 0); /* progress and the cancel flag while the download is slow */
        pthread_mutex_lock(&f->mu);
    }
    avail = f->written - f->readpos;
    at = f->readpos % FEED_RING;
    pthread_mutex_unlock(&f->mu);
    k = size;
    if (k > avail)
        k = (size_t)avail;
    if (k > FEED_RING - at)
        k = (size_t)(FEED_RING - at);
    if (k == 0)
        return 0;
    /* [readpos, written) stays put until readpos moves past it */
    memcpy(buf, f->ring + at, k);
    pthread_mutex_lock(&f->mu);
    f->readpos += k;
    feed_wake(f);
    pthread_mutex_unlock(&f->mu);
    return (ssize_t)k;
}

static ssize_t feed_read(void *cookie, char *buf, size_t size)
{
    struct feed *f = cookie;
    double idle_since = mono_ms();

    if (f->ring != NULL)
        return ring_read(f, buf, size);
    for (;;) {
        ssize_t n = read(f->rfd, buf, size);

        if (n > 0) {
            pthread_mutex_lock(&f->mu);
            f->readpos += (uint64_t)n;
            pthread_mutex_unlock(&f->mu);
            return n;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        /* At the current end of the file. */
        if (imp_term || f->im->canceled)
            return -1;
        {
            /* a stream's file: it ends when the job says so */
            json_t *job = NULL;
            const char *st;
            int end;

            imp_note(f->im, 0);
            imp_poll(f->im, &job);
            st = jstr(job, "stream");
            end = st == NULL || strcmp(st, "open") != 0;
            json_decref(job);
            if (end) {
                /* one last read: bytes written just before "closed" */
                n = read(f->rfd, buf, size);
                if (n > 0) {
                    pthread_mutex_lock(&f->mu);
                    f->readpos += (uint64_t)n;
                    pthread_mutex_unlock(&f->mu);
                }
                return n < 0 ? -1 : n;
            }
            if (mono_ms() - idle_since > STREAM_STALL_MS) {
                snprintf(f->dl_err, sizeof(f->dl_err),
                         "the stream sent nothing for %d s; giving up", STREAM_STALL_MS / 1000);
                f->dl_rc = CA_EIO;
                return -1;
            }
            sleep_ms(100);
        }
    }
}

/* Writes n bytes of the ring, from f->ondisk on, to the capture file. */
static int dl_disk(struct feed *f, size_t n)
{
    const char *p = f->ring + f->ondisk % FEED_RING;

    while (n > 0) {
        ssize_t w = write(f->wfd, p, n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EINVAL && f->direct) {
            /* O_DIRECT refused here after all: through the page cache then */
            int fl = fcntl(f->wfd, F_GETFL);

            if (fl < 0 || fcntl(f->wfd, F_SETFL, fl & ~O_DIRECT) < 0)
                return CA_EIO;
            f->direct = 0;
            continue;
        }
        if (w <= 0)
            return CA_EIO;
        p += w;
        n -= (size_t)w;
        f->ondisk += (uint64_t)w;
    }
    return 0;
}

/* The rest of the download's bytes to the file, the last partial MiB without O_DIRECT. */
static int dl_disk_all(struct feed *f)
{
    while (f->written - f->ondisk >= FEED_CHUNK)
        if (dl_disk(f, FEED_CHUNK) < 0)
            return CA_EIO;
    if (f->written > f->ondisk && f->direct) {
        int fl = fcntl(f->wfd, F_GETFL);

        if (fl < 0 || fcntl(f->wfd, F_SETFL, fl & ~O_DIRECT) < 0)
            return CA_EIO;
        f->direct = 0;
    }
    return f->written > f->ondisk ? dl_disk(f, (size_t)(f->written - f->ondisk)) : 0;
}

/* The download's bytes: into the ring (waiting while it is full of bytes the engine has yet to
 * read) and, each whole MiB, on to the file. */
static int dl_write(void *arg, const void *buf, size_t n)
{
    struct feed *f = arg;
    const char *p = buf;

    while (n > 0) {
        uint64_t low, at;
        size_t k;

        /* written and ondisk change on this thread only */
        while (f->written - f->ondisk >= FEED_CHUNK)
            if (dl_disk(f, FEED_CHUNK) < 0)
                return CA_EIO;
        pthread_mutex_lock(&f->mu);
        for (;;) {
            low = f->reader && f->readpos < f->ondisk ? f->readpos : f->ondisk;
            if (f->written - low < FEED_RING)
                break;
            if (f->stop || imp_term) {
                pthread_mutex_unlock(&f->mu);
                return CA_ECANCELED;
            }
            double t0 = mono_ms();

            f->wwait = 1;
            feed_wait(f, 200);
            f->wwait = 0;
            f->wwaited += mono_ms() - t0;
        }
        pthread_mutex_unlock(&f->mu);
        at = f->written % FEED_RING;
        k = n;
        if (k > FEED_RING - (f->written - low))
            k = (size_t)(FEED_RING - (f->written - low));
        if (k > FEED_RING - at)
            k = (size_t)(FEED_RING - at);
        memcpy(f->ring + at, p, k);
        pthread_mutex_lock(&f->mu);
        f->written += k;
        feed_wake(f);
        pthread_mutex_unlock(&f->mu);
        p += k;
        n -= k;
    }
    return 0;
}

static int dl_progress(void *arg, uint64_t done, uint64_t total)
{
    struct feed *f = arg;
    int stop;

    pthread_mutex_lock(&f->mu);
    if (total > 0)
        f->total = total;
    stop = f->stop;
    pthread_mutex_unlock(&f->mu);
    return stop || imp_term;
}

static void *dl_thread(void *arg)
{
    struct feed *f = arg;
    struct ca_fetch_req req;
    char err[512] = "";
    int rc;

    memset(&req, 0, sizeof(req));
    req.url = f->url;
    req.write = dl_write;
    req.write_arg = f;
    req.progress = dl_progress;
    req.progress_arg = f;
    req.verify_md5 = 1;
    rc = ca_fetch_get(&imp_fetch, &req, &f->info, err, sizeof(err));
    if (dl_disk_all(f) < 0 && rc == 0)
        rc = ca_seterr(err, sizeof(err), CA_EIO, "cannot write the capture file: %s",
                       strerror(errno));
    pthread_mutex_lock(&f->mu);
    f->dl_rc = rc;
    snprintf(f->dl_err, sizeof(f->dl_err), "%s", err);
    if (f->info.size > 0)
        f->total = f->info.size;
    f->done = 1;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    return NULL;
}

/* The download's failure in words (the URL's query string never in them). */
static void dl_describe(const struct feed *f, const char *url, char *err, size_t len)
{
    struct ca_azure_url *u = calloc(1, sizeof(*u));

    if (u != NULL && f->info.status >= 400 && ca_azure_parse(url, u, NULL, 0) == 0 &&
        u->kind != CA_AZURE_NONE) {
        ca_azure_http_error(u, f->info.status, f->info.error_code, err, len);
    } else if (f->info.status == 404 && (f->dl_rc == CA_ENOTFOUND)) {
        snprintf(err, len, "not found on the server (HTTP 404)");
    } else if (f->info.status >= 400 && f->dl_rc == CA_EFORBIDDEN) {
        snprintf(err, len, "the server refused the download (HTTP %ld)", f->info.status);
    } else {
        snprintf(err, len, "%s", f->dl_err[0] ? f->dl_err : ca_strerror(f->dl_rc));
    }
    free(u);
}

/* ---- outcomes ----------------------------------------------------------------- */

static void job_requeue(struct imp *im, uint64_t attempts)
{
    cap_set(im->ws, im->cap_id, json_pack("{s:s}", "state", "queued"));
    job_set(im->portal, im->job_id,
            json_pack("{s:s, s:n, s:I, s:I, s:I}", "state", "queued", "started", "bytes_done",
                      (json_int_t)0, "packets_done", (json_int_t)0, "attempts",
                      (json_int_t)(attempts - 1)));
    log_line("job %llu: abandoned on shutdown, requeued", (unsigned long long)im->job_id);
}

static void job_fail(struct imp *im, const char *state, const char *err, json_t *report)
{
    if (im->ws != NULL && im->cap_id != 0) {
        ca_ws_capture_purge_flows(im->ws, im->cap_id);
        cap_set(im->ws, im->cap_id,
                json_pack("{s:s, s:s, s:O}", "state", "failed", "error", err, "report",
                          report != NULL ? report : json_null()));
    }
    job_set(im->portal, im->job_id,
            json_pack("{s:s, s:s, s:I, s:I, s:I, s:n, s:n}", "state", state, "error", err,
                      "finished", (json_int_t)time(NULL), "bytes_done", (json_int_t)im->bytes,
                      "packets_done", (json_int_t)im->packets, "url", "password"));
    log_line("job %llu: %s: %s", (unsigned long long)im->job_id, state, err);
}

/* Publishes the flows: the capture is ready, the job done. */
static int job_finish(struct imp *im, json_t *report, uint64_t bytes, char *err, size_t errlen)
{
    int rc = ca_ws_capture_finish(im->ws, im->cap_id, report);

    if (rc < 0) {
        snprintf(err, errlen, "cannot publish the flows: %s", ca_strerror(rc));
        return rc;
    }
    job_set(im->portal, im->job_id,
            json_pack("{s:s, s:n, s:I, s:I, s:I, s:I, s:f, s:I, s:n, s:n}", "state", "done",
                      "error", "finished", (json_int_t)time(NULL), "bytes_done", (json_int_t)bytes,
                      "bytes_total", (json_int_t)bytes, "packets_done",
                      (json_int_t)jint(report, "packets"), "percent", 100.0, "eta", (json_int_t)0,
                      "url", "password"));
    log_line("job %llu: done, %llu packets, %llu flows", (unsigned long long)im->job_id,
             (unsigned long long)jint(report, "packets"),
             (unsigned long long)jint(report, "flows"));
    return 0;
}

/* ---- zip archives ------------------------------------------------------------- */

static int file_is_zip(const char *path)
{
    unsigned char head[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC), z = 0;

    if (fd >= 0) {
        z = read(fd, head, 4) == 4 && ca_archive_is_zip(head, 4);
        close(fd);
    }
    return z;
}

/*
 * Unpacks the zip at path into one new capture (and "import" job) per
 * member, then removes the archive's own capture.  The job's result lists
 * the new captures and jobs.
 */
static int import_zip(struct imp *im, json_t *job, const char *path, char *err, size_t errlen)
{
    struct ca_archive *z = NULL;
    json_t *caps = json_array(), *jobs = json_array(), *cap = NULL;
    const char *source = jstr(job, "source"), *password = jstr(job, "password");
    char name[1024], tmp[PATH_MAX + 64], dst[4200], *buf = NULL;
    int rc, n = 0;

    buf = malloc(1 << 16);
    if (caps == NULL || jobs == NULL || buf == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = ca_archive_open(path, password, &z, err, errlen);
    if (rc < 0)
        goto out;
    for (;;) {
        int64_t size;
        uint64_t total = 0;
        int fd;
        ssize_t got;
        struct ingest_req iq;
        char src[1024], disp[256];
        const char *base;
        uint32_t cid;
        uint64_t jid;

        rc = ca_archive_next(z, name, sizeof(name), &size, err, errlen);
        if (rc <= 0)
            break;
        snprintf(tmp, sizeof(tmp), "%s/tmp/zip-XXXXXX", im->conf->data);
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0) {
            rc = ca_seterr(err, errlen, CA_EIO, "cannot unpack the zip: %s", strerror(errno));
            break;
        }
        while ((got = ca_archive_read(z, buf, 1 << 16, err, errlen)) > 0) {
            total += (uint64_t)got;
            if (total > im->conf->fetch_max_size) {
                got = ca_seterr(err, errlen, CA_ETOOBIG,
                                "zip member %s is larger than the limit of %llu bytes", name,
                                (unsigned long long)im->conf->fetch_max_size);
                break;
            }
            if (write(fd, buf, (size_t)got) != got) {
                got = ca_seterr(err, errlen, CA_EIO, "cannot unpack the zip: disk full?");
                break;
            }
            if (imp_term || im->canceled) {
                got = CA_ECANCELED;
                break;
            }
        }
        close(fd);
        if (got < 0) {
            unlink(tmp);
            rc = (int)got;
            break;
        }
        base = strrchr(name, '/');
        base = base != NULL ? base + 1 : name;
        snprintf(disp, sizeof(disp), "%.200s", base);
        for (char *p = disp; *p != '\0'; p++)
            if ((unsigned char)*p < 0x20)
                *p = '_';
        snprintf(src, sizeof(src), "%.700s : %.200s", source != NULL ? source : "zip", disp);
        memset(&iq, 0, sizeof(iq));
        iq.ws_id = im->ws_id;
        iq.name = disp;
        iq.source = src;
        iq.kind = "import";
        iq.move_from = tmp;
        iq.bytes_total = total;
        rc = ingest_create(im->portal, im->ws, im->conf->data, &iq, &cid, &jid, dst, sizeof(dst),
                           err, errlen);
        if (rc < 0) {
            unlink(tmp);
            break;
        }
        json_array_append_new(caps, json_integer(cid));
        json_array_append_new(jobs, json_integer((json_int_t)jid));
        n++;
    }
    if (rc == 0 && n == 0)
        rc = ca_seterr(err, errlen, CA_EFORMAT, "the zip archive holds no files");
out:
    ca_archive_close(z);
    if (rc == 0) {
        /* The archive itself is no capture: its members are. */
        ca_ws_capture_delete(im->ws, im->cap_id);
        job_set(im->portal, im->job_id,
                json_pack("{s:s, s:n, s:I, s:{s:O, s:O, s:i}, s:n, s:n, s:I}", "state", "done",
                          "error", "finished", (json_int_t)time(NULL), "result", "captures", caps,
                          "jobs", jobs, "members", n, "url", "password", "capture", (json_int_t)0));
        log_line("job %llu: zip unpacked into %d capture(s)", (unsigned long long)im->job_id, n);
    }
    json_decref(cap);
    json_decref(caps);
    json_decref(jobs);
    free(buf);
    return rc;
}

/* ---- Azure container listings ------------------------------------------------- */

static int list_container(struct imp *im, const char *url, json_t *blobs, char *err, size_t errlen)
{
    struct ca_azure_url *u = calloc(1, sizeof(*u));
    char *lurl = malloc(CA_AZURE_URL_MAX + 8192), marker[4096] = "";
    int rc, pages = 0;

    if (u == NULL || lurl == NULL) {
        rc = CA_ENOMEM;
        goto out;
    }
    rc = ca_azure_parse(url, u, err, errlen);
    if (rc < 0)
        goto out;
    if (u->kind != CA_AZURE_CONTAINER) {
        rc = ca_seterr(err, errlen, CA_EINVAL, "not an Azure container URL");
        goto out;
    }
    do {
        struct ca_fetch_info info;
        char *body = NULL;
        size_t len = 0;

        rc = ca_azure_list_url(u, marker, im->conf->azure_list_max, lurl, CA_AZURE_URL_MAX + 8192);
        if (rc < 0) {
            rc = ca_seterr(err, errlen, CA_EINVAL, "the listing URL is too long");
            goto out;
        }
        rc = ca_fetch_mem(&imp_fetch, lurl, LIST_MAX_BYTES, &body, &len, &info, err, errlen);
        if (rc < 0) {
            if (info.status >= 400)
                ca_azure_http_error(u, info.status, info.error_code, err, errlen);
            goto out;
        }
        rc = ca_azure_parse_list(body, len, blobs, LIST_MAX_BLOBS, marker, sizeof(marker), err,
                                 errlen);
        free(body);
        if (rc < 0)
            goto out;
        pages++;
        imp_poll(im, NULL);
        if (imp_term || im->canceled) {
            rc = ca_seterr(err, errlen, CA_ECANCELED, "cancelled");
            goto out;
        }
    } while (marker[0] != '\0');
    log_line("job %llu: container listed, %zu blob(s) in %d page(s)",
             (unsigned long long)im->job_id, json_array_size(blobs), pages);
out:
    free(u);
    free(lurl);
    return rc;
}

static int selected(json_t *select, const char *name)
{
    size_t i;
    json_t *v;

    if (!json_is_array(select))
        return 1;
    json_array_foreach(select, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

static void run_list_job(struct imp *im, json_t *job)
{
    const char *url = jstr(job, "url"), *kind = jstr(job, "kind");
    json_t *blobs = json_array(), *caps = json_array(), *jobs = json_array();
    char err[512] = "";
    int rc;

    if (url == NULL || blobs == NULL || caps == NULL || jobs == NULL) {
        job_fail(im, "failed", "malformed job", NULL);
        goto out;
    }
    rc = list_container(im, url, blobs, err, sizeof(err));
    if (rc < 0) {
        job_fail(im, im->canceled ? "canceled" : "failed", err[0] ? err : ca_strerror(rc), NULL);
        goto out;
    }
    if (strcmp(kind, "list") == 0) {
        char red[1024];

        ca_url_redact(url, red, sizeof(red));
        job_set(im->portal, im->job_id,
                json_pack("{s:s, s:n, s:I, s:{s:O, s:s}, s:n}", "state", "done", "error",
                          "finished", (json_int_t)time(NULL), "result", "blobs", blobs, "container",
                          red, "url"));
        goto out;
    }
    /* "container": one capture and "url" job per (selected) blob. */
    rc = ca_ws_open(im->conf->data, im->ws_id, &im->ws, err, sizeof(err));
    if (rc < 0) {
        job_fail(im, "failed", err, NULL);
        goto out;
    }
    {
        struct ca_azure_url *u = calloc(1, sizeof(*u));
        char *full = malloc(CA_AZURE_URL_MAX);
        json_t *select = json_object_get(job, "select");
        const char *password = jstr(job, "password");
        size_t i;
        json_t *b;

        if (u == NULL || full == NULL || ca_azure_parse(url, u, NULL, 0) < 0) {
            free(u);
            free(full);
            job_fail(im, "failed", "out of memory", NULL);
            goto out;
        }
        json_array_foreach(blobs, i, b)
        {
            const char *bn = jstr(b, "name");
            struct ingest_req iq;
            json_t *extra, *labels = NULL;
            char src[1024], nm[256], path[4200];
            const char *base;
            uint32_t cid;
            uint64_t jid;

            if (bn == NULL || !selected(select, bn) ||
                ca_azure_blob_url(u, bn, full, CA_AZURE_URL_MAX) < 0)
                continue;
            ca_url_redact(full, src, sizeof(src));
            base = strrchr(bn, '/');
            base = base != NULL ? base + 1 : bn;
            if (json_is_string(json_object_get(b, "vm"))) {
                labels = json_pack("{s:O, s:O}", "vm", json_object_get(b, "vm"), "capture_time",
                                   json_object_get(b, "capture_time"));
                snprintf(nm, sizeof(nm), "%.100s %.140s", jstr(b, "vm"), base);
            } else {
                snprintf(nm, sizeof(nm), "%.200s", base);
            }
            for (char *p = nm; *p != '\0'; p++)
                if ((unsigned char)*p < 0x20)
                    *p = '_';
            extra = json_pack("{s:s, s:s?}", "url", full, "password", password);
            memset(&iq, 0, sizeof(iq));
            iq.ws_id = im->ws_id;
            iq.name = nm;
            iq.source = src;
            iq.kind = "url";
            iq.job_extra = extra;
            iq.cap_extra = labels != NULL ? json_pack("{s:O}", "labels", labels) : NULL;
            iq.bytes_total = jint(b, "size");
            rc = ingest_create(im->portal, im->ws, im->conf->data, &iq, &cid, &jid, path,
                               sizeof(path), err, sizeof(err));
            json_decref(iq.cap_extra);
            json_decref(labels);
            json_decref(extra);
            if (rc < 0) {
                log_line("job %llu: cannot queue a blob: %s", (unsigned long long)im->job_id, err);
                continue;
            }
            json_array_append_new(caps, json_integer(cid));
            json_array_append_new(jobs, json_integer((json_int_t)jid));
        }
        free(u);
        free(full);
    }
    job_set(im->portal, im->job_id,
            json_pack("{s:s, s:n, s:I, s:{s:O, s:O, s:I}, s:n, s:n}", "state", "done", "error",
                      "finished", (json_int_t)time(NULL), "result", "captures", caps, "jobs", jobs,
                      "blobs", (json_int_t)json_array_size(blobs), "url", "password"));
    log_line("job %llu: %zu import(s) queued from the container", (unsigned long long)im->job_id,
             json_array_size(jobs));
out:
    json_decref(blobs);
    json_decref(caps);
    json_decref(jobs);
}

/* ---- imports ------------------------------------------------------------------- */

static void run_job(const struct config *c, struct ca_portal *p, struct ca_engine *eng, json_t *job)
{
    struct imp im;
    struct ca_import_req req;
    struct feed *fd = NULL;
    pthread_t th;
    int th_started = 0;
    FILE *fp = NULL;
    json_t *report = NULL;
    char err[512] = "";
    const char *path = jstr(job, "path"), *kind = jstr(job, "kind");
    uint64_t attempts, bytes = 0;
    int rc, is_url, is_stream;

    memset(&im, 0, sizeof(im));
    im.conf = c;
    im.portal = p;
    im.job_id = jint(job, "id");
    im.cap_id = (uint32_t)jint(job, "capture");
    im.ws_id = jint(job, "workspace");
    im.start_ms = im.last_ms = im.poll_ms = mono_ms();
    log_line("job %llu: %s of capture %u in workspace %llu started", (unsigned long long)im.job_id,
             kind != NULL ? kind : "?", im.cap_id, (unsigned long long)im.ws_id);
    attempts = jint(job, "attempts") + 1;
    job_set(p, im.job_id,
            json_pack("{s:I, s:I}", "started", (json_int_t)time(NULL), "attempts",
                      (json_int_t)attempts));
    if (json_is_true(json_object_get(job, "cancel"))) {
        if (im.cap_id != 0)
            ca_ws_open(c->data, im.ws_id, &im.ws, NULL, 0);
        job_fail(&im, "canceled", "cancelled by the user", NULL);
        goto out;
    }
    if (attempts > MAX_ATTEMPTS) {
        snprintf(err, sizeof(err), "the import stopped the worker %d times; giving up",
                 MAX_ATTEMPTS);
        rc = CA_EINTERNAL;
        if (ca_ws_open(c->data, im.ws_id, &im.ws, NULL, 0) < 0)
            im.ws = NULL;
        goto failed;
    }
    if (kind != NULL && (strcmp(kind, "list") == 0 || strcmp(kind, "container") == 0)) {
        run_list_job(&im, job);
        goto out;
    }
    is_url = kind != NULL && strcmp(kind, "url") == 0;
    is_stream = kind != NULL && strcmp(kind, "stream") == 0;
    if (kind == NULL || (strcmp(kind, "import") != 0 && !is_url && !is_stream) || path == NULL ||
        im.ws_id == 0 || im.cap_id == 0 || (is_url && jstr(job, "url") == NULL)) {
        snprintf(err, sizeof(err), "malformed job");
        rc = CA_EINTERNAL;
        goto failed;
    }
    rc = ca_ws_open(c->data, im.ws_id, &im.ws, err, sizeof(err));
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
    if (is_url || is_stream) {
        cookie_io_functions_t io = {.read = feed_read};

        fd = calloc(1, sizeof(*fd));
        if (fd == NULL) {
            rc = CA_ENOMEM;
            goto failed;
        }
        pthread_mutex_init(&fd->mu, NULL);
        pthread_cond_init(&fd->cv, NULL);
        fd->im = &im;
        fd->rfd = -1;
        fd->wfd = -1;
        fd->stream = is_stream;
        im.feed = fd;
        if (is_url) {
            void *ring;

            fd->url = jstr(job, "url");
            fd->wfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0640);
            fd->direct = fd->wfd >= 0;
            if (fd->wfd < 0 && errno == EINVAL)
                fd->wfd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
            if (fd->wfd < 0) {
                rc = ca_seterr(err, sizeof(err), CA_EIO, "cannot open the capture file: %s",
                               strerror(errno));
                goto failed;
            }
            /* page-aligned, as O_DIRECT wants its buffers */
            ring =
                mmap(NULL, FEED_RING, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (ring == MAP_FAILED) {
                rc = CA_ENOMEM;
                goto failed;
            }
            fd->ring = ring;
            fd->reader = 1; /* the ring's start is kept: the engine reads it from byte 0 */
            if (pthread_create(&th, NULL, dl_thread, fd) != 0) {
                rc = ca_seterr(err, sizeof(err), CA_EIO, "cannot start the download");
                goto failed;
            }
            th_started = 1;
            /* A zip needs its end (the central directory): wait for the whole file. */
            pthread_mutex_lock(&fd->mu);
            while (fd->written < 4 && !fd->done) {
                fd->rwait = 1;
                feed_wait(fd, FEED_NAP);
                fd->rwait = 0;
                pthread_mutex_unlock(&fd->mu);
                imp_note(&im, 0); /* polls the cancel flag */
                pthread_mutex_lock(&fd->mu);
                if (imp_term || im.canceled) {
                    fd->stop = 1;
                    pthread_cond_broadcast(&fd->cv);
                }
            }
            /* the ring holds the first bytes until the engine has read them */
            if (fd->written >= 4 && ca_archive_is_zip((const unsigned char *)fd->ring, 4)) {
                /* nothing reads the ring: the download only writes the file */
                fd->reader = 0;
                pthread_cond_broadcast(&fd->cv);
                while (!fd->done) {
                    pthread_mutex_unlock(&fd->mu);
                    imp_note(&im, 0);
                    if (imp_term || im.canceled)
                        feed_stop(fd);
                    sleep_ms(100);
                    pthread_mutex_lock(&fd->mu);
                }
                pthread_mutex_unlock(&fd->mu);
                pthread_join(th, NULL);
                th_started = 0;
                goto after_engine;
            }
            pthread_mutex_unlock(&fd->mu);
        } else {
            fd->rfd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd->rfd < 0) {
                rc = ca_seterr(err, sizeof(err), CA_EIO, "cannot open the capture file: %s",
                               strerror(errno));
                goto failed;
            }
        }
        fp = fopencookie(fd, "r", io);
        if (fp == NULL) {
            rc = ca_seterr(err, sizeof(err), CA_ENOMEM, "fopencookie failed");
            goto failed;
        }
        /* glibc ignores the size without a buffer (a cookie stream gets 8 KiB), and
         * reads a cookie stream through its buffer whatever the size of an fread */
        fd->rbuf = malloc(FEED_RBUF);
        if (fd->rbuf != NULL)
            setvbuf(fp, fd->rbuf, _IOFBF, FEED_RBUF);
        req.fp = fp;
    } else if (file_is_zip(path)) {
        rc = import_zip(&im, job, path, err, sizeof(err));
        if (rc < 0)
            goto failed;
        goto out;
    }
    rc = ca_engine_import(eng, &req, &report, err, sizeof(err));
after_engine:
    if (fd != NULL) {
        /* Tell the download the engine is done with it (early on an error). */
        feed_stop(fd);
        if (th_started)
            pthread_join(th, NULL);
        th_started = 0;
        bytes = is_url ? fd->written : fd->readpos;
        im.bytes = bytes;
        if (is_url)
            log_line("job %llu: %llu bytes downloaded; the engine waited %.1f s for bytes, the "
                     "download %.1f s for room in the ring",
                     (unsigned long long)im.job_id, (unsigned long long)bytes, fd->rwaited / 1e3,
                     fd->wwaited / 1e3);
    }
    if (imp_term) {
        /* Shutting down: give the job back; leftovers are purged next time. */
        job_requeue(&im, attempts);
        goto out;
    }
    if (im.canceled) {
        ca_ws_capture_purge_flows(im.ws, im.cap_id);
        job_fail(&im, "canceled", "cancelled by the user", NULL);
        goto out;
    }
    if (is_url) {
        int engine_done_early = rc < 0 && fd->dl_rc == CA_ECANCELED;

        if (fd->dl_rc < 0 && !engine_done_early) {
            dl_describe(fd, jstr(job, "url"), err, sizeof(err));
            rc = fd->dl_rc;
            goto failed;
        }
        if (fd->dl_rc == 0 && file_is_zip(path)) {
            rc = import_zip(&im, job, path, err, sizeof(err));
            if (rc < 0)
                goto failed;
            goto out;
        }
        if (rc == CA_EFORMAT) {
            char tmp[512];

            snprintf(tmp, sizeof(tmp), "not a capture: %s", err);
            snprintf(err, sizeof(err), "%s", tmp);
        }
        if (rc == 0 && fd->info.md5_verified)
            json_object_set_new(report, "md5_verified", json_true());
        if (rc == 0 && fd->info.resumes > 0)
            json_object_set_new(report, "download",
                                json_pack("{s:i, s:i}", "attempts", fd->info.attempts, "resumes",
                                          fd->info.resumes));
    }
    if (is_stream) {
        json_t *j = NULL;

        imp_poll(&im, &j);
        if (fd->dl_rc < 0 ||
            (jstr(j, "stream") != NULL && strcmp(jstr(j, "stream"), "aborted") == 0)) {
            snprintf(err, sizeof(err), "%s",
                     fd->dl_rc < 0 ? fd->dl_err
                                   : (jstr(j, "stream_error") != NULL ? jstr(j, "stream_error")
                                                                      : "the stream was aborted"));
            json_decref(j);
            rc = CA_EIO;
            goto failed;
        }
        json_decref(j);
    }
    if (rc < 0)
        goto failed;
    {
        struct stat st;

        if (bytes == 0 && stat(path, &st) == 0)
            bytes = (uint64_t)st.st_size;
        cap_set(im.ws, im.cap_id, json_pack("{s:I}", "size", (json_int_t)bytes));
    }
    rc = job_finish(&im, report, bytes, err, sizeof(err));
    if (rc < 0)
        goto failed;
    goto out;
failed:
    if (err[0] == '\0')
        snprintf(err, sizeof(err), "%s", ca_strerror(rc));
    job_fail(&im, "failed", err, report);
out:
    if (fp != NULL)
        fclose(fp);
    if (fd != NULL) {
        if (th_started) {
            feed_stop(fd);
            pthread_join(th, NULL);
        }
        if (fd->rfd >= 0)
            close(fd->rfd);
        if (fd->wfd >= 0)
            close(fd->wfd);
        pthread_mutex_destroy(&fd->mu);
        pthread_cond_destroy(&fd->cv);
        if (fd->ring != NULL)
            munmap(fd->ring, FEED_RING);
        free(fd->rbuf);
        free(fd);
    }
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
    /* before any thread starts: a download thread inherits it */
    if (setpriority(PRIO_PROCESS, 0, IMPORT_NICE) != 0)
        log_line("import worker %d: cannot lower its priority: %s", index, strerror(errno));

    imp_fetch_conf(c);
    if (ca_fetch_init() < 0) {
        log_line("import worker %d: cannot initialise libcurl", index);
        goto out;
    }
    ca_ws_set_part_flows((size_t)c->table_part_flows);
    ca_big_heap_keep(); /* LMDB's pages of each commit: reused, not mapped afresh */
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
        /* the import's heap, kept for reuse while it ran (ca_big_heap_keep),
         * goes back while the worker waits for the next job */
        (void)malloc_trim(0);
    }
    log_line("import worker %d stopped", index);
    status = 0;
out:
    ca_portal_close(portal);
    ca_engine_close(eng);
    return status;
}

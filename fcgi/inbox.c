/*
 * The inbox watcher: a process forked by the supervisor when the admin
 * configured `inbox = WS:/folder, ...`.  Every complete file dropped into
 * a folder is moved into its workspace and queued for import, exactly
 * once: the file leaves the inbox when its capture is created.
 *
 * "Complete" means: inotify saw it closed after writing (IN_CLOSE_WRITE)
 * or moved in (IN_MOVED_TO), and then nothing touched it for
 * inbox_settle_ms -- so a file written slowly, or by a writer that opens
 * it several times, is taken only after it has been quiet.  Names starting
 * with '.' (temp files of rsync, editors, blobfuse) are ignored.  A full
 * scan every few seconds catches what inotify cannot see (network mounts)
 * and files that were there before the watcher started; files found that
 * way must also have been quiet for the settle time (by mtime and size).
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "ca_error.h"
#include "config.h"
#include "ingest.h"
#include "log.h"
#include "store.h"
#include "workers.h"

#define INBOX_SCAN_MS 3000
#define INBOX_PENDING_MAX 1024

static volatile sig_atomic_t inbox_term;

static void inbox_on_term(int sig)
{
    inbox_term = 1;
}

struct folder {
    uint64_t ws_id;
    char dir[PATH_MAX];
    int wd;
};

struct pending {
    int folder;
    char name[NAME_MAX + 1];
    double last_ms; /* last inotify activity */
    int closed;     /* a close-after-write or move-in was seen */
    off_t size;     /* for scans: size when first seen */
    time_t mtime;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static struct pending *pending_find(struct pending *p, size_t n, int folder, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (p[i].folder == folder && strcmp(p[i].name, name) == 0)
            return &p[i];
    return NULL;
}

/* Moves dir/name into its workspace and queues the import.  0, or -1 to retry later. */
static int inbox_take(const struct config *c, struct ca_portal *portal, const struct folder *f,
                      const char *name)
{
    struct ca_ws *w = NULL;
    struct ingest_req iq;
    char src[PATH_MAX + NAME_MAX + 2], source[NAME_MAX + 16], path[4200], err[256] = "",
                                                                          disp[NAME_MAX + 1];
    struct stat st;
    uint32_t cap_id;
    uint64_t job_id;
    int rc;

    snprintf(src, sizeof(src), "%s/%s", f->dir, name);
    if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode))
        return 0; /* gone, or no regular file: nothing to do */
    if (st.st_size == 0)
        return -1; /* not written yet */
    rc = ca_ws_open(c->data, f->ws_id, &w, err, sizeof(err));
    if (rc < 0) {
        log_line("inbox %s: workspace %llu not available (%s); will retry", f->dir,
                 (unsigned long long)f->ws_id, err[0] ? err : ca_strerror(rc));
        return -1;
    }
    snprintf(disp, sizeof(disp), "%s", name);
    for (char *p = disp; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20)
            *p = '_';
    snprintf(source, sizeof(source), "inbox: %s", disp);
    memset(&iq, 0, sizeof(iq));
    iq.ws_id = f->ws_id;
    iq.name = disp;
    iq.source = source;
    iq.kind = "import";
    iq.move_from = src;
    iq.bytes_total = (uint64_t)st.st_size;
    rc = ingest_create(portal, w, c->data, &iq, &cap_id, &job_id, path, sizeof(path), err,
                       sizeof(err));
    ca_ws_close(w);
    if (rc < 0) {
        log_line("inbox %s: cannot take %s: %s", f->dir, disp, err[0] ? err : ca_strerror(rc));
        return -1;
    }
    log_line("inbox %s: %s taken as capture %u of workspace %llu, job %llu", f->dir, disp, cap_id,
             (unsigned long long)f->ws_id, (unsigned long long)job_id);
    return 0;
}

static int parse_folders(const struct config *c, struct folder *fs)
{
    int n = 0;

    for (size_t i = 0; i < c->inbox.n; i++) {
        const char *it = c->inbox.item[i], *colon = strchr(it, ':');
        char *end;
        unsigned long long ws;

        if (colon == NULL || colon == it) {
            log_line("inbox: \"%s\" is not WORKSPACE_ID:/folder; ignored", it);
            continue;
        }
        ws = strtoull(it, &end, 10);
        if (end != colon || ws == 0 || colon[1] != '/') {
            log_line("inbox: \"%s\" is not WORKSPACE_ID:/folder; ignored", it);
            continue;
        }
        fs[n].ws_id = ws;
        snprintf(fs[n].dir, sizeof(fs[n].dir), "%s", colon + 1);
        fs[n].wd = -1;
        n++;
    }
    return n;
}

int inbox_run(const struct config *c)
{
    struct folder fs[CONFIG_LIST_MAX];
    struct pending *pend = NULL;
    struct ca_portal *portal = NULL;
    struct sigaction sa;
    size_t npend = 0;
    char err[256] = "", buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
    double last_scan = 0;
    int nf, ifd = -1, status = 1, rc;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = inbox_on_term;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);

    nf = parse_folders(c, fs);
    pend = calloc(INBOX_PENDING_MAX, sizeof(*pend));
    if (pend == NULL)
        goto out;
    rc = ca_portal_open(c->data, &portal, err, sizeof(err));
    if (rc < 0) {
        log_line("inbox: cannot open the portal store: %s", err[0] ? err : ca_strerror(rc));
        goto out;
    }
    ifd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    if (ifd < 0) {
        log_line("inbox: inotify: %s", strerror(errno));
        goto out;
    }
    for (int i = 0; i < nf; i++) {
        fs[i].wd = inotify_add_watch(ifd, fs[i].dir,
                                     IN_CLOSE_WRITE | IN_MOVED_TO | IN_MODIFY | IN_CREATE |
                                         IN_ATTRIB | IN_ONLYDIR);
        if (fs[i].wd < 0)
            log_line("inbox: cannot watch %s: %s (scanned every %d s instead)", fs[i].dir,
                     strerror(errno), INBOX_SCAN_MS / 1000);
        else
            log_line("inbox: watching %s for workspace %llu", fs[i].dir,
                     (unsigned long long)fs[i].ws_id);
    }
    while (!inbox_term) {
        struct pollfd pfd = {ifd, POLLIN, 0};
        double t;
        ssize_t len;

        poll(&pfd, 1, 200);
        while ((len = read(ifd, buf, sizeof(buf))) > 0) {
            for (char *p = buf; p < buf + len;) {
                struct inotify_event *ev = (struct inotify_event *)p;
                int fi = -1;

                p += sizeof(*ev) + ev->len;
                for (int i = 0; i < nf; i++)
                    if (fs[i].wd == ev->wd)
                        fi = i;
                if (fi < 0 || ev->len == 0 || ev->name[0] == '.' || (ev->mask & IN_ISDIR))
                    continue;
                {
                    struct pending *pe = pending_find(pend, npend, fi, ev->name);

                    if (pe == NULL) {
                        if (npend == INBOX_PENDING_MAX)
                            continue; /* the scan will find it */
                        pe = &pend[npend++];
                        memset(pe, 0, sizeof(*pe));
                        pe->folder = fi;
                        snprintf(pe->name, sizeof(pe->name), "%s", ev->name);
                    }
                    pe->last_ms = now_ms();
                    if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO))
                        pe->closed = 1;
                    else if (ev->mask & (IN_MODIFY | IN_CREATE))
                        pe->closed = 0;
                }
            }
        }
        t = now_ms();
        /* Files quiet for the settle time after their close are taken. */
        for (size_t i = 0; i < npend;) {
            if (pend[i].closed && t - pend[i].last_ms >= c->inbox_settle_ms) {
                if (inbox_take(c, portal, &fs[pend[i].folder], pend[i].name) < 0) {
                    pend[i].last_ms = t + 2000; /* retry later */
                    i++;
                    continue;
                }
                pend[i] = pend[--npend];
                continue;
            }
            i++;
        }
        /* The scan: files inotify did not report (or that were there at start). */
        if (t - last_scan >= INBOX_SCAN_MS) {
            last_scan = t;
            for (int fi = 0; fi < nf; fi++) {
                DIR *d = opendir(fs[fi].dir);
                struct dirent *de;

                if (d == NULL)
                    continue;
                while ((de = readdir(d)) != NULL) {
                    char full[PATH_MAX + NAME_MAX + 2];
                    struct stat st;

                    if (de->d_name[0] == '.' || pending_find(pend, npend, fi, de->d_name))
                        continue;
                    snprintf(full, sizeof(full), "%s/%s", fs[fi].dir, de->d_name);
                    if (lstat(full, &st) != 0 || !S_ISREG(st.st_mode))
                        continue;
                    if (time(NULL) - st.st_mtime < (c->inbox_settle_ms + 999) / 1000 + 1)
                        continue; /* still being written, maybe: next scan */
                    inbox_take(c, portal, &fs[fi], de->d_name);
                }
                closedir(d);
            }
        }
    }
    status = 0;
out:
    if (ifd >= 0)
        close(ifd);
    free(pend);
    ca_portal_close(portal);
    log_line("inbox watcher stopped");
    return status;
}

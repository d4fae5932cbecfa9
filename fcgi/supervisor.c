/*
 * capatlasd serve: the supervisor.  It prepares the data folder, requeues
 * jobs of workers that died with an earlier run, opens the FastCGI socket,
 * forks the API and import workers and restarts any that die (with a
 * back-off when one keeps dying).  SIGTERM/SIGINT: forward SIGTERM, wait
 * for the workers (SIGKILL after a grace period), remove the socket, exit 0.
 *
 * The supervisor itself holds no store handle while workers run: LMDB
 * environments must not cross fork(), so each worker opens its own.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ca_error.h"
#include "commands.h"
#include "config.h"
#include "log.h"
#include "store.h"
#include "workers.h"

#define STOP_GRACE_SEC 8 /* within docker stop's default 10 s */
#define QUICK_DEATH_SEC 5
#define BACKOFF_MAX_MS 10000

enum { KIND_API, KIND_IMPORT, KIND_INBOX };

struct child {
    pid_t pid; /* 0 when not running */
    int kind;
    int index;
    int fails; /* consecutive quick deaths */
    double started_ms;
    double restart_at_ms;
};

static double now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static const char *kind_name(int kind)
{
    return kind == KIND_API      ? "api worker"
           : kind == KIND_IMPORT ? "import worker"
                                 : "inbox watcher";
}

static int mkdir_p(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t len = strlen(path);

    if (len == 0 || len >= sizeof(buf))
        return -1;
    memcpy(buf, path, len + 1);
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/* Removes a socket left by a dead server; refuses when one is alive or the path is no socket. */
static int clear_stale_socket(const char *path)
{
    struct sockaddr_un sun;
    struct stat st;
    int fd, alive;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : -1;
    if (!S_ISSOCK(st.st_mode)) {
        log_line("%s exists and is not a socket; not touching it", path);
        return -1;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    alive = connect(fd, (struct sockaddr *)&sun, sizeof(sun)) == 0;
    close(fd);
    if (alive) {
        log_line("another capatlasd is listening on %s", path);
        return -1;
    }
    if (unlink(path) != 0)
        return -1;
    log_line("removed stale socket %s", path);
    return 0;
}

static pid_t spawn(struct child *ch, const struct config *c, int listen_fd, const sigset_t *oldmask)
{
    pid_t parent = getpid();
    pid_t pid = fork();

    if (pid < 0) {
        log_line("fork failed: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int st;

        signal(SIGCHLD, SIG_DFL);
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        /* A worker must not outlive a supervisor killed with SIGKILL. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        if (ch->kind == KIND_API) {
            st = api_worker_run(c, listen_fd, ch->index);
        } else {
            close(listen_fd);
            st = ch->kind == KIND_INBOX ? inbox_run(c) : import_worker_run(c, ch->index);
        }
        exit(st);
    }
    ch->pid = pid;
    ch->started_ms = now_ms();
    log_line("%s %d started as pid %d", kind_name(ch->kind), ch->index, (int)pid);
    return pid;
}

static void describe_exit(int status, char *buf, size_t len)
{
    if (WIFEXITED(status))
        snprintf(buf, len, "exited with status %d", WEXITSTATUS(status));
    else if (WIFSIGNALED(status))
        snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
                 strsignal(WTERMSIG(status)));
    else
        snprintf(buf, len, "stopped (status 0x%x)", status);
}

static struct child *find_child(struct child *kids, int n, pid_t pid)
{
    for (int i = 0; i < n; i++)
        if (kids[i].pid == pid)
            return &kids[i];
    return NULL;
}

static int requeue_orphans(const struct config *c)
{
    struct ca_portal *p = NULL;
    char err[256] = "";
    int n = 0, rc;

    rc = ca_portal_open(c->data, &p, err, sizeof(err));
    if (rc < 0) {
        log_line("cannot open the portal store in %s: %s", c->data, err[0] ? err : ca_strerror(rc));
        return -1;
    }
    rc = ca_job_requeue_orphans(p, &n);
    ca_portal_close(p);
    if (rc < 0) {
        log_line("cannot requeue orphaned jobs: %s", ca_strerror(rc));
        return -1;
    }
    if (n > 0)
        log_line("requeued %d job(s) left running by a dead worker", n);
    return 0;
}

int cmd_serve(int argc, char **argv)
{
    struct config conf;
    struct child *kids = NULL;
    sigset_t set, oldmask;
    char err[512], path[PATH_MAX + 16];
    int nkids, listen_fd = -1, status = 1, stopping = 0;
    double stop_deadline = 0;

    if (config_parse(&conf, argc - 1, argv + 1, err, sizeof(err)) < 0) {
        fprintf(stderr, "capatlasd serve: %s\n", err);
        return 2;
    }
    snprintf(path, sizeof(path), "%s/run", conf.data);
    if (mkdir_p(conf.data, 0750) != 0 || mkdir_p(path, 0750) != 0) {
        log_line("cannot create %s: %s", path, strerror(errno));
        return 1;
    }
    snprintf(path, sizeof(path), "%s/tmp", conf.data);
    if (mkdir_p(path, 0700) != 0) {
        log_line("cannot create %s: %s", path, strerror(errno));
        return 1;
    }
    {
        /* The socket may live outside DATA/run. */
        char *slash;

        snprintf(path, sizeof(path), "%s", conf.socket);
        slash = strrchr(path, '/');
        if (slash != NULL && slash != path) {
            *slash = '\0';
            if (mkdir_p(path, 0750) != 0) {
                log_line("cannot create %s: %s", path, strerror(errno));
                return 1;
            }
        }
    }
    if (requeue_orphans(&conf) < 0)
        return 1;
    if (clear_stale_socket(conf.socket) < 0) {
        log_line("cannot use socket path %s", conf.socket);
        return 1;
    }

    /* Signals are taken synchronously with sigtimedwait; block them first. */
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &oldmask);

    listen_fd = api_worker_listen(&conf, err, sizeof(err));
    if (listen_fd < 0) {
        log_line("%s", err);
        goto out;
    }
    /* One inbox watcher when the admin configured inbox folders. */
    nkids = conf.api_workers + conf.import_workers + (conf.inbox.n > 0 ? 1 : 0);
    kids = calloc((size_t)nkids, sizeof(*kids));
    if (kids == NULL)
        goto out;
    for (int i = 0; i < nkids; i++) {
        kids[i].kind = i < conf.api_workers                         ? KIND_API
                       : i < conf.api_workers + conf.import_workers ? KIND_IMPORT
                                                                    : KIND_INBOX;
        kids[i].index = i < conf.api_workers ? i + 1 : i - conf.api_workers + 1;
    }
    log_line("serving on %s (data %s, %d api, %d import workers)", conf.socket, conf.data,
             conf.api_workers, conf.import_workers);
    for (int i = 0; i < nkids; i++)
        spawn(&kids[i], &conf, listen_fd, &oldmask);

    for (;;) {
        struct timespec ts;
        siginfo_t si;
        double t = now_ms(), wait_ms = 1000;
        int sig, alive = 0, wst;
        pid_t pid;

        /* Reap every dead child. */
        while ((pid = waitpid(-1, &wst, WNOHANG)) > 0) {
            struct child *ch = find_child(kids, nkids, pid);
            char how[96];

            if (ch == NULL)
                continue;
            describe_exit(wst, how, sizeof(how));
            ch->pid = 0;
            if (stopping) {
                log_line("%s %d (pid %d) %s", kind_name(ch->kind), ch->index, (int)pid, how);
                continue;
            }
            /* Its job, if any, goes back to the queue (the next attempt is counted). */
            if (ch->kind == KIND_IMPORT)
                requeue_orphans(&conf);
            if (t - ch->started_ms < QUICK_DEATH_SEC * 1000.0)
                ch->fails++;
            else
                ch->fails = 0;
            {
                double delay = ch->fails == 0 ? 0 : 250.0 * (1 << (ch->fails < 6 ? ch->fails : 6));

                if (delay > BACKOFF_MAX_MS)
                    delay = BACKOFF_MAX_MS;
                ch->restart_at_ms = t + delay;
                log_line("%s %d (pid %d) %s; restarting in %.1fs", kind_name(ch->kind), ch->index,
                         (int)pid, how, delay / 1000.0);
            }
        }
        for (int i = 0; i < nkids; i++) {
            if (kids[i].pid != 0) {
                alive++;
                continue;
            }
            if (stopping)
                continue;
            if (kids[i].restart_at_ms <= t) {
                if (spawn(&kids[i], &conf, listen_fd, &oldmask) > 0)
                    alive++;
                else
                    kids[i].restart_at_ms = t + 1000;
            } else if (kids[i].restart_at_ms - t < wait_ms) {
                wait_ms = kids[i].restart_at_ms - t;
            }
        }
        if (stopping) {
            if (alive == 0)
                break;
            if (t >= stop_deadline) {
                log_line("workers still running after %ds; killing them", STOP_GRACE_SEC);
                for (int i = 0; i < nkids; i++)
                    if (kids[i].pid != 0)
                        kill(kids[i].pid, SIGKILL);
                stop_deadline = t + 1e9;
            }
        }
        if (wait_ms < 10)
            wait_ms = 10;
        ts.tv_sec = (time_t)(wait_ms / 1000);
        ts.tv_nsec = (long)((wait_ms - (double)ts.tv_sec * 1000) * 1e6);
        sig = sigtimedwait(&set, &si, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                log_line("received %s; stopping workers", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                stopping = 1;
                stop_deadline = now_ms() + STOP_GRACE_SEC * 1000.0;
                for (int i = 0; i < nkids; i++)
                    if (kids[i].pid != 0)
                        kill(kids[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP) {
            log_line("SIGHUP ignored");
        }
    }
    status = 0;
out:
    if (listen_fd >= 0) {
        close(listen_fd);
        unlink(conf.socket);
    }
    free(kids);
    log_line("stopped");
    sigprocmask(SIG_SETMASK, &oldmask, NULL);
    return status;
}

/*
 * enum ca_err -> HTTP status, in one table (DESIGN.md §4).
 */
#include <stdarg.h>
#include <stdio.h>

#include "ca_error.h"
#include "errmap.h"
#include "http.h"
#include "log.h"

static const struct {
    int err;
    int status;
} errmap_table[] = {
    {CA_OK, 200},        {CA_EINVAL, 400},    {CA_EAUTH, 401},     {CA_EFORBIDDEN, 403},
    {CA_ENOTFOUND, 404}, {CA_EEXIST, 409},    {CA_ETOOBIG, 413},   {CA_EQUOTA, 413},
    {CA_EFORMAT, 422},   {CA_EBUSY, 503},     {CA_ENOMEM, 500},    {CA_EIO, 500},
    {CA_ESTORE, 500},    {CA_ECANCELED, 500}, {CA_EINTERNAL, 500},
};

int errmap_status(int err)
{
    for (size_t i = 0; i < sizeof(errmap_table) / sizeof(errmap_table[0]); i++)
        if (errmap_table[i].err == err)
            return errmap_table[i].status;
    return 500;
}

int errmap_reply(json_t **out, int err, const char *field, const char *msg)
{
    int status = errmap_status(err);

    if (status >= 500) {
        log_line("error: %s%s%s", ca_strerror(err), msg != NULL && *msg ? ": " : "",
                 msg != NULL ? msg : "");
        msg = NULL;
    }
    *out = http_error_json(field, msg != NULL && *msg != '\0' ? msg : ca_strerror(err));
    return status;
}

int errmap_fail(json_t **out, int status, const char *field, const char *fmt, ...)
{
    char buf[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    *out = http_error_json(field, buf);
    return status;
}

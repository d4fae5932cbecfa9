/*
 * The audit log for admins, newest first: logins, failed logins, user,
 * share and workspace changes, imports, exports and deletions (see
 * authz_audit and h_auth.c), with who, what, when and from where.
 */
#include "ca_error.h"
#include "errmap.h"
#include "handlers.h"
#include "store.h"

#define AUDIT_LIMIT_DEFAULT 100
#define AUDIT_LIMIT_MAX 1000

int h_audit_list(struct request *r, json_t **out)
{
    const char *ls = http_kv_get(r->query, r->nquery, "limit");
    const char *bs = http_kv_get(r->query, r->nquery, "before");
    uint64_t limit = AUDIT_LIMIT_DEFAULT, before = 0, next = 0;
    json_t *list = NULL;
    int rc;

    if (ls != NULL && (http_parse_u64(ls, &limit) < 0 || limit < 1 || limit > AUDIT_LIMIT_MAX))
        return errmap_fail(out, 400, "limit", "limit must be a whole number from 1 to %d",
                           AUDIT_LIMIT_MAX);
    if (bs != NULL && http_parse_u64(bs, &before) < 0)
        return errmap_fail(out, 400, "before", "before must be an entry id");
    rc = ca_audit_list(r->portal, before, (size_t)limit, &list, &next);
    if (rc < 0)
        return errmap_reply(out, rc, NULL, "could not read the audit log");
    *out = json_pack("{s:o, s:o}", "entries", list, "next",
                     next != 0 ? json_integer((json_int_t)next) : json_null());
    return 200;
}

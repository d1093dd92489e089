/*
 * daemon/mapid/perms.c - permissions that function libraries ask mapid about through the host
 * API (mapi/flib.h): whether a flow's owner may use the site's secret anonymisation key.
 *
 * The key of mapi.conf's anon_key_file turns ANONYMIZE / ANONYMIZEIP into an oracle: whoever
 * may anonymise chosen addresses with it can invert traces anonymised with it. So its use is
 * a permission: root always, and the members of the group anon_key_group (unset: nobody
 * else). Membership is taken from the group database for the flow's uid (the uid mapid read
 * with SO_PEERCRED when the client connected): the primary group of the user's passwd entry
 * and the groups getgrouplist() lists. Nothing the client sends is trusted, and nothing
 * depends on the client's process still existing (no /proc/PID lookup, so no pid reuse race).
 * The lookup runs at apply time on the control thread.
 */
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "daemon/mapid/mapid.h"

/* Whether uid belongs to the group named group (primary or supplementary). 0 on any lookup
 * failure (an unknown group or user grants nothing). */
static int uid_in_group(uid_t uid, const char *group)
{
    char buf[16384];
    struct group gr, *grp = NULL;
    struct passwd pw, *pwp = NULL;
    if (getgrnam_r(group, &gr, buf, sizeof(buf), &grp) != 0 || !grp) {
        static int warned; /* control thread only; once, whoever asks */
        if (!warned++)
            mapi_log(LOG_LVL_WARN,
                     "anon_key_group=%s: no such group; only root may use the site key", group);
        return 0;
    }
    gid_t want = grp->gr_gid;
    if (getpwuid_r(uid, &pw, buf, sizeof(buf), &pwp) != 0 || !pwp)
        return 0;
    if (pwp->pw_gid == want)
        return 1;
    int n = 64;
    for (int tries = 0; tries < 4; tries++) {
        gid_t *groups = malloc(sizeof(*groups) * (size_t)n);
        if (!groups)
            return 0;
        int got = n;
        if (getgrouplist(pwp->pw_name, pwp->pw_gid, groups, &got) >= 0) {
            int found = 0;
            for (int i = 0; i < got; i++)
                found |= groups[i] == want;
            free(groups);
            return found;
        }
        free(groups);
        n = got > n ? got : n * 4; /* got holds the number needed */
    }
    return 0;
}

int perms_may_use_site_key(const struct mapi_fn_instance *fi)
{
    const struct fn_inst *fn = (const struct fn_inst *)fi;
    if (!fi || !fn->flow)
        return 0;
    uid_t uid = fn->flow->uid;
    if (uid == 0)
        return 1;
    const char *group = g_mapid.conf.anon_key_group;
    if (!group[0])
        return 0;
    return uid_in_group(uid, group);
}

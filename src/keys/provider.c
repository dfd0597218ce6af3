/* provider.c — the generic helpers of the key-provider interface (provider.h). */
#include "keys/provider.h"

#include <stdio.h>

int kp_wrapped_version(struct key_provider *kp, const struct kp_wrapped *w, char *buf, size_t n)
{
    if (kp->ops->iVersion >= 2 && kp->ops->wrapped_version)
        return kp->ops->wrapped_version(kp, w, buf, n);
    if (snprintf(buf, n, "%u", (unsigned)w->kek_version) >= (int)n)
        return at_error_set(AT_EINVAL, "version buffer too small");
    return 0;
}

const char *kp_cause_name(enum kp_cause c)
{
    switch (c) {
    case KP_CAUSE_OK:
        return "available";
    case KP_CAUSE_DISABLED:
        return "disabled";
    case KP_CAUSE_DENIED:
        return "access revoked";
    case KP_CAUSE_DELETED:
        return "deleted";
    case KP_CAUSE_WRONG_KEY:
        return "not the key that wrapped the data keys";
    case KP_CAUSE_UNREACHABLE:
        return "unreachable";
    default:
        return "refused";
    }
}

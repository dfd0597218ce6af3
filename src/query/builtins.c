/*
 * builtins.c — the Cosmos built-in scalar functions (placeholder: none yet).
 */
#include "query/qval.h"

int q_builtin_find(const char *name, size_t len)
{
    (void)name;
    (void)len;
    return -1;
}

const char *q_builtin_name(int id)
{
    (void)id;
    return "";
}

void q_builtin_arity(int id, int *min, int *max)
{
    (void)id;
    *min = 0;
    *max = 0;
}

int q_builtin_call(int id, json_t *const *args, size_t n, const struct q_ctx *ctx, json_t **out,
                   struct q_error *err)
{
    (void)id;
    (void)args;
    (void)n;
    (void)ctx;
    (void)err;
    *out = NULL;
    return 0;
}

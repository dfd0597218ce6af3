/*
 * builtins_time.c — the Cosmos date and time functions.
 *
 * A date and time is held as ticks: 100-nanosecond units since the Unix
 * epoch (the unit of DateTimeToTicks), as int64. Valid values run from
 * 0001-01-01T00:00:00.0000000Z to 9999-12-31T23:59:59.9999999Z; a result
 * outside that range is undefined.
 *
 * Accepted text: YYYY-MM-DDThh:mm:ss with an optional fraction of 1 to 7
 * digits and an optional trailing Z (the documented examples omit it).
 * Output is always YYYY-MM-DDThh:mm:ss.fffffffZ.
 */
#include "query/builtins_int.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define TICKS_PER_MS  INT64_C(10000)
#define TICKS_PER_SEC INT64_C(10000000)
#define TICKS_PER_DAY (TICKS_PER_SEC * 86400)

/* ---- the civil calendar (proleptic Gregorian) ---- */

/* Days from 1970-01-01 to y-m-d (Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yoe + era * 400 + (*m <= 2));
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : dm[m - 1];
}

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return q - ((a % b != 0) && ((a < 0) != (b < 0)));
}

#define MIN_TICKS (-INT64_C(719162) * TICKS_PER_DAY)     /* 0001-01-01 */
#define MAX_TICKS (INT64_C(2932897) * TICKS_PER_DAY - 1) /* 9999-12-31T23:59:59.9999999 */

static int in_range(double t)
{
    return t >= (double)MIN_TICKS && t <= (double)MAX_TICKS;
}

struct parts {
    int y, mo, d, h, mi, s;
    int64_t frac; /* ticks within the second */
};

static void split(int64_t t, struct parts *p)
{
    int64_t days = floor_div(t, TICKS_PER_DAY), rest = t - days * TICKS_PER_DAY;
    civil_from_days(days, &p->y, &p->mo, &p->d);
    p->h = (int)(rest / (3600 * TICKS_PER_SEC));
    p->mi = (int)(rest / (60 * TICKS_PER_SEC) % 60);
    p->s = (int)(rest / TICKS_PER_SEC % 60);
    p->frac = rest % TICKS_PER_SEC;
}

/* Ticks of valid parts, or 0 with *ok cleared. */
static int64_t join(const struct parts *p, int *ok)
{
    *ok = p->y >= 1 && p->y <= 9999 && p->mo >= 1 && p->mo <= 12 && p->d >= 1 &&
          p->d <= days_in_month(p->y, p->mo) && p->h >= 0 && p->h < 24 && p->mi >= 0 &&
          p->mi < 60 && p->s >= 0 && p->s < 60 && p->frac >= 0 && p->frac < TICKS_PER_SEC;
    if (!*ok)
        return 0;
    return days_from_civil(p->y, p->mo, p->d) * TICKS_PER_DAY +
           ((int64_t)p->h * 3600 + p->mi * 60 + p->s) * TICKS_PER_SEC + p->frac;
}

/* ---- text ---- */

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 1;
}

/* Parse len bytes of ISO 8601 date-time text into ticks; 0 when it is
 * not one. */
static int parse_text(const char *s, size_t len, int64_t *t)
{
    struct parts p = {0};
    if (len < 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' ||
        !digits(s, 4, &p.y) || !digits(s + 5, 2, &p.mo) || !digits(s + 8, 2, &p.d) ||
        !digits(s + 11, 2, &p.h) || !digits(s + 14, 2, &p.mi) || !digits(s + 17, 2, &p.s))
        return 0;
    size_t i = 19;
    if (i < len && s[i] == '.') {
        size_t n = 0;
        for (i++; i < len && s[i] >= '0' && s[i] <= '9'; i++, n++)
            if (n < 7)
                p.frac = p.frac * 10 + (s[i] - '0');
        if (n == 0 || n > 7)
            return 0;
        for (; n < 7; n++)
            p.frac *= 10;
    }
    if (i < len && s[i] == 'Z')
        i++;
    int ok;
    *t = join(&p, &ok);
    return ok && i == len;
}

/* A date-time string argument; 0 when it is not one. */
static int parse_time(const json_t *v, int64_t *t)
{
    return json_is_string(v) && parse_text(json_string_value(v), json_string_length(v), t);
}

/* parse_time, and also a date alone ("2024-01-10": midnight) or a space
 * instead of the 'T' ("2024-10-10 14:40:20"), the forms the documented
 * examples of DAY, MONTH, YEAR and DateTimeFormat use. */
static int parse_loose(const json_t *v, int64_t *t)
{
    if (!json_is_string(v))
        return 0;
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    char buf[48];
    if (len == 10) {
        memcpy(buf, s, 10);
        memcpy(buf + 10, "T00:00:00", 9);
        return parse_text(buf, 19, t);
    }
    if (len >= 19 && len <= sizeof buf && s[10] == ' ') {
        memcpy(buf, s, len);
        buf[10] = 'T';
        return parse_text(buf, len, t);
    }
    return parse_text(s, len, t);
}

static int put_time(struct bi_call *c, int64_t t)
{
    if (t < MIN_TICKS || t > MAX_TICKS)
        return 0;
    struct parts p;
    split(t, &p);
    char text[40];
    int n = snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%07lldZ", p.y, p.mo, p.d,
                     p.h, p.mi, p.s, (long long)p.frac);
    return bi_str(c, text, (size_t)n);
}

/* ---- date and time parts ---- */

enum part { P_YEAR, P_MONTH, P_DAY, P_HOUR, P_MINUTE, P_SECOND, P_MS, P_MCS, P_NS };

/* The part named by a string argument (names and abbreviations as
 * documented, compared without regard to case), or -1. */
static int part_of(const json_t *v)
{
    static const struct {
        const char *name;
        enum part part;
    } names[] = {
        {"year", P_YEAR}, {"yyyy", P_YEAR},      {"yy", P_YEAR},       {"month", P_MONTH},
        {"mm", P_MONTH},  {"m", P_MONTH},        {"day", P_DAY},       {"dd", P_DAY},
        {"d", P_DAY},     {"hour", P_HOUR},      {"hh", P_HOUR},       {"minute", P_MINUTE},
        {"mi", P_MINUTE}, {"n", P_MINUTE},       {"second", P_SECOND}, {"ss", P_SECOND},
        {"s", P_SECOND},  {"millisecond", P_MS}, {"ms", P_MS},         {"microsecond", P_MCS},
        {"mcs", P_MCS},   {"nanosecond", P_NS},  {"ns", P_NS},
    };
    if (!json_is_string(v))
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strlen(names[i].name) == json_string_length(v) &&
            strcasecmp(names[i].name, json_string_value(v)) == 0)
            return (int)names[i].part;
    return -1;
}

/* Ticks in one unit of a fixed-length part (day and smaller); ns is
 * 1/100 tick, so it returns 0. */
static int64_t part_ticks(int part)
{
    static const int64_t t[] = {[P_DAY] = TICKS_PER_DAY,
                                [P_HOUR] = 3600 * TICKS_PER_SEC,
                                [P_MINUTE] = 60 * TICKS_PER_SEC,
                                [P_SECOND] = TICKS_PER_SEC,
                                [P_MS] = TICKS_PER_MS,
                                [P_MCS] = 10,
                                [P_NS] = 0};
    return t[part];
}

/* t plus n parts (DateTimeAdd, NOW, AGO): years and months keep the
 * day, clamped to the end of the month (2020-01-31 + 1 month is
 * 2020-02-29); nanoseconds add whole ticks (n / 100); undefined out of
 * range. */
static int add_part(struct bi_call *c, int part, double n, int64_t t)
{
    if (part == P_YEAR || part == P_MONTH) {
        double months = part == P_YEAR ? n * 12 : n;
        if (fabs(months) > 12 * 10000)
            return 0;
        struct parts p;
        split(t, &p);
        int64_t m0 = (int64_t)p.y * 12 + (p.mo - 1) + (int64_t)months;
        p.y = (int)floor_div(m0, 12);
        p.mo = (int)(m0 - (int64_t)p.y * 12) + 1;
        if (p.y < 1 || p.y > 9999)
            return 0;
        if (p.d > days_in_month(p.y, p.mo))
            p.d = days_in_month(p.y, p.mo);
        int ok;
        t = join(&p, &ok);
        return ok ? put_time(c, t) : 0;
    }
    double add = part == P_NS ? trunc(n / 100) : n * (double)part_ticks(part);
    if (!in_range((double)t + add))
        return 0;
    return put_time(c, t + (int64_t)add);
}

/* DateTimeAdd(part, n, datetime): n must be an integer (documented). */
int bi_datetimeadd(struct bi_call *c)
{
    int part = part_of(c->a[0]);
    double n;
    int64_t t;
    if (part < 0 || !bi_int(c->a[1], &n) || !parse_time(c->a[2], &t))
        return 0;
    return add_part(c, part, n, t);
}

/* The value of part within t (DateTimePart). */
static int64_t part_value(int64_t t, int part)
{
    struct parts p;
    split(t, &p);
    switch (part) {
    case P_YEAR:
        return p.y;
    case P_MONTH:
        return p.mo;
    case P_DAY:
        return p.d;
    case P_HOUR:
        return p.h;
    case P_MINUTE:
        return p.mi;
    case P_SECOND:
        return p.s;
    case P_MS:
        return p.frac / TICKS_PER_MS;
    case P_MCS:
        return p.frac / 10;
    default:
        return p.frac * 100;
    }
}

/* DAY, MONTH, YEAR(datetime): DateTimePart of that part (documented),
 * of the forms parse_loose takes. */
static int part_of_date(struct bi_call *c, int part)
{
    int64_t t;
    if (!parse_loose(c->a[0], &t))
        return 0;
    return bi_num(c, (double)part_value(t, part));
}

int bi_day(struct bi_call *c)
{
    return part_of_date(c, P_DAY);
}

int bi_month(struct bi_call *c)
{
    return part_of_date(c, P_MONTH);
}

int bi_year(struct bi_call *c)
{
    return part_of_date(c, P_YEAR);
}

int bi_datetimepart(struct bi_call *c)
{
    int part = part_of(c->a[0]);
    int64_t t;
    if (part < 0 || !parse_time(c->a[1], &t))
        return 0;
    return bi_num(c, (double)part_value(t, part));
}

/* DateTimeDiff(part, start, end): the number of part boundaries crossed
 * from start to end (documented), signed. */
int bi_datetimediff(struct bi_call *c)
{
    int part = part_of(c->a[0]);
    int64_t a, b;
    if (part < 0 || !parse_time(c->a[1], &a) || !parse_time(c->a[2], &b))
        return 0;
    struct parts pa, pb;
    split(a, &pa);
    split(b, &pb);
    switch (part) {
    case P_YEAR:
        return bi_num(c, (double)(pb.y - pa.y));
    case P_MONTH:
        return bi_num(c, (double)((pb.y - pa.y) * 12 + (pb.mo - pa.mo)));
    case P_NS:
        return bi_num(c, (double)(b - a) * 100);
    default: {
        int64_t u = part_ticks(part);
        return bi_num(c, (double)(floor_div(b, u) - floor_div(a, u)));
    }
    }
}

/* DateTimeBin(datetime, part [, size = 1 [, origin = Unix epoch]]): part
 * is day or finer (documented), size a positive integer, origin not before
 * 1601 (documented). The result is the start of the bin holding datetime,
 * bins being size parts long from origin. */
int bi_datetimebin(struct bi_call *c)
{
    int64_t t, origin = 0;
    int part = part_of(c->a[1]);
    double size = 1;
    if (!parse_time(c->a[0], &t) || part < P_DAY || (c->n > 2 && !bi_int(c->a[2], &size)) ||
        size <= 0 || (c->n > 3 && !parse_time(c->a[3], &origin)))
        return 0;
    if (origin < days_from_civil(1601, 1, 1) * TICKS_PER_DAY)
        return 0;
    double width = part == P_NS ? floor(size / 100) : size * (double)part_ticks(part);
    if (width < 1)
        return put_time(c, t);
    if (width > (double)(MAX_TICKS - MIN_TICKS))
        width = (double)(MAX_TICKS - MIN_TICKS);
    int64_t w = (int64_t)width;
    return put_time(c, origin + floor_div(t - origin, w) * w);
}

/* DateTimeFromParts(y, m, d [, h [, mi [, s [, fraction]]]]): every part an
 * integer and the whole a valid date (documented); fraction is in 100 ns
 * units (0 to 9999999). */
int bi_datetimefromparts(struct bi_call *c)
{
    double v[7] = {0};
    for (size_t i = 0; i < c->n; i++)
        if (!bi_int(c->a[i], &v[i]) || fabs(v[i]) > 1e8)
            return 0;
    struct parts p = {(int)v[0], (int)v[1], (int)v[2],    (int)v[3],
                      (int)v[4], (int)v[5], (int64_t)v[6]};
    int ok;
    int64_t t = join(&p, &ok);
    return ok ? put_time(c, t) : 0;
}

int bi_datetimetoticks(struct bi_call *c)
{
    int64_t t;
    if (!parse_time(c->a[0], &t))
        return 0;
    return bi_num(c, (double)t);
}

/* Milliseconds since the epoch, rounded down. */
int bi_datetimetotimestamp(struct bi_call *c)
{
    int64_t t;
    if (!parse_time(c->a[0], &t))
        return 0;
    return bi_num(c, (double)floor_div(t, TICKS_PER_MS));
}

/* TicksToDateTime / TimestampToDateTime: a fraction of the unit is
 * dropped (rounded down). Integer arithmetic: ticks exceed 2^53. */
static int from_units(struct bi_call *c, int64_t per_unit)
{
    double n;
    if (!bi_number(c->a[0], &n))
        return 0;
    n = floor(n);
    if (n < (double)(MIN_TICKS / per_unit) - 1 || n > (double)(MAX_TICKS / per_unit) + 1)
        return 0;
    return put_time(c, (int64_t)n * per_unit);
}

int bi_tickstodatetime(struct bi_call *c)
{
    return from_units(c, 1);
}

int bi_timestamptodatetime(struct bi_call *c)
{
    return from_units(c, TICKS_PER_MS);
}

/* ---- the current time: fixed for one execution (q_ctx.now_ms), so the
 * *Static variants are the same functions ---- */

static int64_t now_ms(const struct bi_call *c)
{
    if (c->ctx)
        return c->ctx->now_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int bi_getcurrentdatetime(struct bi_call *c)
{
    return put_time(c, now_ms(c) * TICKS_PER_MS);
}

int bi_getcurrentticks(struct bi_call *c)
{
    return bi_num(c, (double)(now_ms(c) * TICKS_PER_MS));
}

int bi_getcurrenttimestamp(struct bi_call *c)
{
    return bi_num(c, (double)now_ms(c));
}

/* NOW() is GetCurrentDateTime; NOW(part, n) and AGO(part, n) add or
 * subtract n parts (an integer, as for DateTimeAdd) to or from it. */
static int now_plus(struct bi_call *c, int sign)
{
    int64_t t = now_ms(c) * TICKS_PER_MS;
    if (c->n == 0)
        return put_time(c, t);
    int part = part_of(c->a[0]);
    double n;
    if (c->n != 2 || part < 0 || !bi_int(c->a[1], &n))
        return 0;
    return add_part(c, part, sign * n, t);
}

int bi_now(struct bi_call *c)
{
    return now_plus(c, 1);
}

int bi_ago(struct bi_call *c)
{
    return now_plus(c, -1);
}

/* ---- DateTimeFormat ---- */

#define FORMAT_MAX 4096 /* bytes of format text */

static const char *const month_names[] = {"January",   "February", "March",    "April",
                                          "May",       "June",     "July",     "August",
                                          "September", "October",  "November", "December"};
static const char *const day_names[] = {"Sunday",   "Monday", "Tuesday", "Wednesday",
                                        "Thursday", "Friday", "Saturday"};

/* One run of n copies of the specifier letter ch (.NET's custom date and
 * time format, invariant culture, UTC); -1 for a run it does not take. */
static int format_run(struct doc_buf *b, char ch, int n, const struct parts *p, int64_t t)
{
    char num[16];
    int v = -1, pad = n > 2 ? 2 : n;
    switch (ch) {
    case 'y':
        if (n <= 2)
            v = p->y % 100;
        else
            v = p->y, pad = n;
        break;
    case 'M':
        if (n >= 3) {
            const char *m = month_names[p->mo - 1];
            return doc_buf_put(b, m, n == 3 ? 3 : strlen(m));
        }
        v = p->mo;
        break;
    case 'd':
        if (n >= 3) {
            const char *d = day_names[(floor_div(t, TICKS_PER_DAY) % 7 + 11) % 7];
            return doc_buf_put(b, d, n == 3 ? 3 : strlen(d));
        }
        v = p->d;
        break;
    case 'H':
        v = p->h;
        break;
    case 'h':
        v = p->h % 12 ? p->h % 12 : 12;
        break;
    case 'm':
        v = p->mi;
        break;
    case 's':
        v = p->s;
        break;
    case 't':
        return doc_buf_put(b, p->h < 12 ? "AM" : "PM", n == 1 ? 1 : 2);
    case 'f':
    case 'F': {
        if (n > 7)
            return -1;
        snprintf(num, sizeof num, "%07lld", (long long)p->frac);
        int k = n;
        if (ch == 'F') /* trailing zeros dropped (the '.' before stays) */
            while (k > 0 && num[k - 1] == '0')
                k--;
        return doc_buf_put(b, num, (size_t)k);
    }
    case 'K':
        return doc_buf_put(b, "Z", 1);
    case 'z':
        return doc_buf_puts(b, n == 1 ? "+0" : n == 2 ? "+00" : "+00:00");
    default:
        return -1;
    }
    if (v < 0 || pad > 9)
        return -1;
    int len = snprintf(num, sizeof num, "%0*d", pad, v);
    return doc_buf_put(b, num, (size_t)len);
}

/* DateTimeFormat(datetime, format): the format's specifier runs (y, M, d,
 * H, h, m, s, f, F, t, K, z) replaced by the date-time's parts, a
 * backslash making the next character literal, text in quotes literal,
 * anything else copied. */
int bi_datetimeformat(struct bi_call *c)
{
    int64_t t;
    if (!parse_loose(c->a[0], &t) || !json_is_string(c->a[1]) ||
        json_string_length(c->a[1]) > FORMAT_MAX)
        return 0;
    const char *f = json_string_value(c->a[1]);
    size_t n = json_string_length(c->a[1]);
    struct parts p;
    split(t, &p);
    struct doc_buf b = {0};
    int rc = doc_buf_put(&b, "", 0);
    for (size_t i = 0; i < n && !rc;) {
        char ch = f[i];
        if (ch == '\\') {
            if (i + 1 == n)
                rc = -1;
            else
                rc = doc_buf_put(&b, f + i + 1, 1);
            i += 2;
        } else if (ch == '\'' || ch == '"') {
            const char *end = memchr(f + i + 1, ch, n - i - 1);
            if (!end)
                rc = -1;
            else
                rc = doc_buf_put(&b, f + i + 1, (size_t)(end - f - i - 1));
            i = end ? (size_t)(end - f) + 1 : n;
        } else if (ch && strchr("yMdHhmsfFtKz", ch)) {
            size_t j = i;
            while (j < n && f[j] == ch)
                j++;
            rc = format_run(&b, ch, (int)(j - i > 99 ? 99 : j - i), &p, t);
            i = j;
        } else {
            rc = doc_buf_put(&b, f + i, 1);
            i++;
        }
    }
    if (rc) {
        doc_buf_free(&b);
        return rc == AT_ENOMEM ? bi_oom(c) : 0; /* a bad format: undefined */
    }
    rc = bi_str(c, b.p, b.len);
    doc_buf_free(&b);
    return rc;
}

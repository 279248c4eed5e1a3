/* cli.c - what every command shares: option parsing, help, error messages. */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- option parsing */
int cli_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "stride: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return 2;
}

int cli_fail(void) {
    fprintf(stderr, "stride: %s\n", st_errmsg());
    return 1;
}

static void print_help(const char *cmd, const char *usage, const cli_opt *opts) {
    printf("usage: stride %s %s\n\noptions:\n", cmd, usage);
    for (const cli_opt *o = opts; o->name; o++) {
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-22s %s\n", left, o->help);
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

int parse_options(const char *cmd, const char *usage, cli_opt *opts, int argc, char **argv, int first,
                  const char **pos, int max_pos, int *npos) {
    *npos = 0;
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) { print_help(cmd, usage, opts); return 1; }
        if (a[0] == '-' && a[1] == '-') {
            const char *eq = strchr(a, '=');
            size_t len = eq ? (size_t)(eq - a) : strlen(a);
            cli_opt *o = opts;
            for (; o->name; o++)
                if (strlen(o->name) == len && !strncmp(o->name, a, len)) break;
            if (!o->name) return cli_error("unknown option '%.*s' for 'stride %s' (see 'stride %s --help')", (int)len, a, cmd, cmd);
            if (o->arg) {
                if (eq) o->value = eq + 1;
                else if (i + 1 < argc) o->value = argv[++i];
                else return cli_error("option '%s' needs a value (%s)", o->name, o->arg);
            } else {
                if (eq) return cli_error("option '%s' takes no value", o->name);
                o->value = "1";
            }
        } else {
            if (*npos >= max_pos) return cli_error("unexpected argument '%s' for 'stride %s' (see 'stride %s --help')", a, cmd, cmd);
            pos[(*npos)++] = a;
        }
    }
    return 0;
}

const char *opt_get(const cli_opt *opts, const char *name) {
    for (; opts->name; opts++)
        if (!strcmp(opts->name, name)) return opts->value;
    return NULL;
}

int opt_int(const cli_opt *opts, const char *name, long def, long lo, long hi, long *out) {
    const char *v = opt_get(opts, name);
    *out = def;
    if (!v) return 0;
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (end == v || *end || errno) return cli_error("%s: '%s' is not an integer", name, v);
    if (x < lo || x > hi) return cli_error("%s: %ld is out of range %ld..%ld", name, x, lo, hi);
    *out = x;
    return 0;
}

int opt_double(const cli_opt *opts, const char *name, double def, double *out) {
    const char *v = opt_get(opts, name);
    *out = def;
    if (!v) return 0;
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (end == v || *end || errno || x != x) return cli_error("%s: '%s' is not a number", name, v);
    *out = x;
    return 0;
}

void fmt_thousands(int64_t v, char *buf, size_t len) {
    char raw[32];
    snprintf(raw, sizeof raw, "%lld", (long long)(v < 0 ? -v : v));
    size_t n = strlen(raw), at = 0;
    if (v < 0 && at + 1 < len) buf[at++] = '-';
    for (size_t i = 0; i < n && at + 2 < len; i++) {
        buf[at++] = raw[i];
        if ((n - i - 1) % 3 == 0 && i + 1 < n) buf[at++] = ',';
    }
    buf[at] = 0;
}


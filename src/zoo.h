/* zoo.h - the model zoo's generators (internal). Every built-in model is model-file text;
 * the generated ones take options after a colon ("resnet18:classes=10,size=32").
 *
 * A generator gets the base name (before the colon) and the option text (after it, "" if
 * none) and returns malloc'ed model-file text in *text. It returns ST_ERR_NOTFOUND, without
 * setting a message, when the base name is not one of its models, and ST_ERR_ARG with a
 * message naming the model and the option when an option is unknown or out of range. */
#ifndef ST_ZOO_H
#define ST_ZOO_H

#include "internal.h"

typedef st_status (*st_zoo_generator)(const char *base, const char *opts, char **text);

st_status st_zoo_vision(const char *base, const char *opts, char **text);    /* zoo_vision.c */
const char *const *st_zoo_vision_names(void); /* its models, NULL-terminated */
st_status st_zoo_unet(const char *base, const char *opts, char **text);      /* zoo_unet.c */
st_status st_zoo_hourglass(const char *base, const char *opts, char **text); /* zoo_hourglass.c */
st_status st_zoo_lenet(const char *base, const char *opts, char **text);     /* zoo_lenet.c */

/* One integer option: `key=value` with min <= value <= max; *value keeps its default when
 * the key is absent. */
typedef struct {
    const char *key;
    int *value;
    int min, max;
} st_zoo_opt;

/* Parses "k=v,k=v" into opts; errors name the model, the key and the allowed keys or range. */
st_status st_zoo_options(const char *model, const char *text, st_zoo_opt *opts, int nopts);

/* printf into a malloc'ed string that grows; on failure `failed` is set and the text freed
 * by st_sb_take. */
typedef struct {
    char *s;
    size_t len, cap;
    int failed;
} st_sbuf;
void st_sb_printf(st_sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The text (the caller frees it), or NULL with ST_ERR_NOMEM set if any printf failed. */
st_status st_sb_take(st_sbuf *b, char **text);

/* "61,100,840" */
const char *st_commas(int64_t v, char *buf, size_t len);

#endif

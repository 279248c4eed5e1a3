/* plot.h - line plots for the stride CLI (training curves), written as PNG with cairo.
 *
 * One figure holds 1..4 panels side by side; each series is drawn in one panel. The
 * y range is shared by all panels; each panel's x range fits the data drawn in it.
 * Points with a NaN or infinite coordinate are skipped (the line breaks there). Without
 * cairo (built without ST_HAVE_CAIRO) plot_lines only reports that it is unavailable.
 */
#ifndef STRIDE_PLOT_H
#define STRIDE_PLOT_H

#include <stddef.h>

typedef struct {
    const char *label;     /* legend text; NULL or "" leaves the series out of the legend */
    int n;                 /* number of points */
    const double *x, *y;   /* n values each */
    int panel;             /* which panel (0-based) it is drawn in */
    int dashed;            /* 0 solid, 1 dashed */
    int color;             /* index into a fixed, colour-blind-safe palette (Okabe-Ito) */
} plot_series;

typedef struct {
    const char *title;               /* figure title, may be NULL */
    int n_panels;                    /* panels side by side, 1..4 */
    const char *const *panel_titles; /* n_panels strings, may be NULL */
    const char *xlabel, *ylabel;     /* axis labels, may be NULL */
    double ymin, ymax;               /* y range; if ymin >= ymax, automatic */
    int width, height;               /* pixels; 0 = defaults: 600 per panel (700 at least) x 500 */
} plot_opts;

/* Writes a PNG. Returns 0 on success; on failure returns -1 and writes a message into err. */
int plot_lines(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
               char *err, size_t errlen);

#endif

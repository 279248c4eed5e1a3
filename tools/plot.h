/* plot.h - line plots for the stride CLI (training curves), written as PNG with cairo.
 *
 * One figure holds 1..4 panels side by side; each series is drawn in one panel. The
 * y range is shared by all panels (plot_lines_own_y: fits each panel's data); each panel's
 * x range fits the data drawn in it.
 * Points with a NaN or infinite coordinate are skipped (the line breaks there). Without
 * cairo (built without ST_HAVE_CAIRO) plot_lines only reports that it is unavailable.
 */
#ifndef STRIDE_PLOT_H
#define STRIDE_PLOT_H

#include <stddef.h>
#include <stdint.h>

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
/* The same, but each panel has its own automatic y range (o->ymin, o->ymax are ignored):
 * for panels of different quantities (loss, error, learning rate). */
int plot_lines_own_y(const char *png_path, const plot_opts *o, const plot_series *s, int ns,
                     char *err, size_t errlen);

/* ---------------------------------------------------------------- pictures of data
 * Library-independent drawings for the CLI's commands (plot, show, eval). Each writes one
 * PNG and returns 0, or -1 with the reason in plot_errmsg(). Images are float (n, channels,
 * h, w), row-major as the library's tensors; each image is shown min-max scaled on its
 * own: grey for one channel, RGB for three, the first channel otherwise. */
const char *plot_errmsg(void); /* why the last plot_* call failed ("" if it did not) */

/* A confusion matrix: counts[t * classes + p] samples of true class t predicted as p.
 * Cells are coloured by the row-normalised share and show the count; names may be NULL
 * (class numbers) or hold `classes` strings. */
int plot_confusion(const char *png, const int64_t *counts, int classes, const char *const *names);

/* Segmentation: a row per image: the image, the image with the true mask, the image with
 * the predicted mask (class c > 0 in a fixed colour, class 0 and labels outside 0..classes-1,
 * such as an ignore index, transparent). truth or pred may be NULL (column left out).
 * Masks are (n, h, w). */
int plot_masks(const char *png, const float *images, int n, int channels, int h, int w,
               const int32_t *truth, const int32_t *pred, int classes);

/* Keypoints: a row per image: the image with the predicted heatmaps (n, joints, hh, hw)
 * overlaid (maximum over joints, scaled to the image, colour map, each joint's peak marked),
 * and, if truth_heat is not NULL (same shape as heat), the truth beside it. */
int plot_heatmaps(const char *png, const float *images, int n, int channels, int h, int w,
                  const float *heat, int joints, int hh, int hw, const float *truth_heat);

/* 1D inputs (MNIST-1D): signals (n, channels, length) as line plots in a grid, one colour
 * per channel; labels and pred (n values each) may be NULL; a wrong prediction is shown in
 * red. */
int plot_signals(const char *png, const float *x, int n, int channels, int length,
                 const int32_t *labels, const int32_t *pred);

/* The building blocks of the above, for grids of anything (filters, feature maps). */
typedef enum {
    PLOT_GREY,      /* per cell min-max, grey (or RGB if channels == 3 and rgb is set) */
    PLOT_VIRIDIS,   /* per cell min-max, viridis colour map (first channel) */
    PLOT_DIVERGING, /* values already in [-1, 1]: blue (-1), white (0), red (+1) */
    PLOT_UNIT       /* values already in [0, 1], shown as they are: grey (RGB if rgb) */
} plot_cmap;

/* n cells of (channels, h, w) in a grid of `cols` columns (0: about square), each with
 * an optional caption; title on top (may be NULL). rgb: show 3-channel cells as colour. */
int plot_image_grid(const char *png, const char *title, const float *x, int n, int channels,
                    int h, int w, int cols, plot_cmap cmap, int rgb, const char *const *captions);

/* n cells of (channels, length) as line plots (one colour per channel) in a grid of `cols`
 * columns (0: about square), each with an optional caption (captions may be NULL; a caption
 * starting with '!' is drawn in red, without the '!'). shared_y: one y range for all cells,
 * else each cell fits its own data. */
int plot_signal_grid(const char *png, const char *title, const float *x, int n, int channels,
                     int length, int cols, int shared_y, const char *const *captions);

#endif

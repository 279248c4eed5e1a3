/* zoo_unet.h - the segmentation networks' model-file text (zoo_unet.c). */
#ifndef ST_ZOO_UNET_H
#define ST_ZOO_UNET_H
/* malloc'ed model-file text for "unet", "unet-same" or "deconvnet" (with ":channels=,classes=,size="
 * options), or NULL for an unknown name, option or invalid size. */
char *st_zoo_unet_text(const char *name);
#endif

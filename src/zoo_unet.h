/* zoo_unet.h - U-Net model-file text (zoo_unet.c). */
#ifndef ST_ZOO_UNET_H
#define ST_ZOO_UNET_H
/* malloc'ed model-file text for "unet" or "unet-same" (with ":channels=,classes=,size="
 * options), or NULL for an unknown name, option or invalid size. */
char *st_zoo_unet_text(const char *name);
#endif

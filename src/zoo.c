/* zoo.c - the built-in models, written in the model-file format itself, so that
 * `stride model NAME` prints exactly what the library builds. */
#include "net.h"
#include "zoo_vision.h"
#include "zoo_unet.h"

#include <stdlib.h>
#include <string.h>

typedef struct { const char *name, *text; } zoo_entry;

static const zoo_entry zoo[] = {
    {"mnist1d-cnn",
     "# mnist1d-cnn: the convolutional network of Understanding Deep Learning, figure 10.7.\n"
     "# Three 'valid' convolutions with kernel 3 and stride 2 (40 -> 19 -> 9 -> 4), 2,050 parameters.\n"
     "x = input(shape=(1, 40))\n"
     "conv1 = conv1d(x, out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu1 = relu()\n"
     "conv2 = conv1d(out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu2 = relu()\n"
     "conv3 = conv1d(out_channels=15, kernel_size=3, stride=2, padding='valid')\n"
     "relu3 = relu()\n"
     "flatten = flatten()\n"
     "fc = linear(out_features=10)\n"},
    {"mnist1d-mlp",
     "# mnist1d-mlp: the fully connected network of Understanding Deep Learning, figure 10.8b.\n"
     "# Hidden widths equal the CNN's activation sizes (285, 135, 60): 59,065 parameters\n"
     "# (early printings of the book say 150,185; the errata correct it to 59,065).\n"
     "x = input(shape=(40,))\n"
     "fc1 = linear(x, out_features=285)\n"
     "relu1 = relu()\n"
     "fc2 = linear(out_features=135)\n"
     "relu2 = relu()\n"
     "fc3 = linear(out_features=60)\n"
     "relu3 = relu()\n"
     "fc4 = linear(out_features=10)\n"},
};

static const char *const names[] = {"mnist1d-cnn", "mnist1d-mlp", "alexnet", "vgg11", "vgg13", "vgg16", "vgg19",
                                    "vgg11_bn", "vgg13_bn", "vgg16_bn", "vgg19_bn", "resnet18", "resnet34",
                                    "resnet50", "resnet101", "resnet152", "unet", "unet-same", "deconvnet", NULL};

const char *const *st_zoo_names(void) { return names; }

const char *st_zoo_text(const char *name) {
    for (size_t i = 0; i < sizeof zoo / sizeof zoo[0]; i++)
        if (!strcmp(zoo[i].name, name)) return zoo[i].text;
    return NULL;
}

/* The MNIST-1D models are fixed text; the torchvision models and U-Nets are generated
 * (zoo_vision.c, zoo_unet.c),
 * with options after a colon: "resnet18:classes=10,size=32,cifar=1". */
st_status st_net_from_zoo(const char *name, st_net **out) {
    const char *text = st_zoo_text(name);
    *out = NULL;
    if (text) return st_net_parse(text, name, out);
    char *generated = st_zoo_vision_text(name);
    if (!generated) generated = st_zoo_unet_text(name);
    if (!generated) return st_fail(ST_ERR_NOTFOUND, "no built-in model named '%s'", name);
    st_status rc = st_net_parse(generated, name, out);
    free(generated);
    return rc;
}

/* zoo_vision.h - torchvision's ImageNet classifiers (AlexNet, VGG, ResNet) as model-file
 * text, with node names equal to torchvision's module paths so that parameter names match
 * its state_dict. */
#ifndef ST_ZOO_VISION_H
#define ST_ZOO_VISION_H

/* Model-file text (malloc'ed; free it) for a name from st_zoo_vision_names(), optionally
 * followed by options: "resnet18:classes=10,size=32,channels=1,cifar=1".
 *   classes   size of the final layer (1000)
 *   size      input height = width (224)
 *   channels  input channels (3)
 *   cifar     resnets only: 1 = CIFAR stem (conv1 3x3 stride 1 padding 1, no max-pool)
 * NULL if the name or an option is unknown or a value is not a positive integer (cifar: 0
 * or 1), or memory runs out. */
char *st_zoo_vision_text(const char *name);

/* The model names, NULL-terminated. */
const char *const *st_zoo_vision_names(void);

#endif

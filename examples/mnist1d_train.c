/* mnist1d_train.c - the C API in one page: generate MNIST-1D, build the book's CNN
 * from the zoo, train it with SGD for a few epochs and report the test error.
 *   make && build/examples/mnist1d_train */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stride.h"

static int fail(void) { fprintf(stderr, "error: %s\n", st_errmsg()); return 1; }

int main(void) {
    st_mnist1d_args args;
    st_mnist1d data;
    st_mnist1d_default_args(&args);                    /* seed 42: the official data set */
    if (st_mnist1d_generate(&args, &data)) return fail();

    st_net *net;
    if (st_net_from_zoo("mnist1d-cnn", &net)) return fail();
    st_net_init(net, ST_INIT_HE, 1);
    st_sgd_conf conf = {.lr = 0.05f, .momentum = 0.9f};
    st_sgd *opt;
    if (st_sgd_new(net, &conf, &opt)) return fail();

    enum { B = 100 };
    st_tensor *x = st_tensor_new(3, (int[]){B, 1, 40}); /* (N, C, L) */
    int32_t y[B];
    for (int epoch = 0; epoch < 20; epoch++)
        for (int s = 0; s + B <= data.n_train; s += B) {
            memcpy(x->data, data.train_x + (size_t)s * 40, sizeof(float) * B * 40);
            memcpy(y, data.train_y + s, sizeof y);
            float loss;
            st_net_zero_grad(net);
            if (st_net_forward(net, x, 1, NULL) || st_net_loss(net, ST_LOSS_CE, y, NULL, &loss) ||
                st_net_backward(net, 0)) return fail();
            st_sgd_step(opt);
        }

    /* test error, in eval mode */
    st_tensor *xt = st_tensor_new(3, (int[]){data.n_test, 1, 40});
    memcpy(xt->data, data.test_x, sizeof(float) * data.n_test * 40);
    const st_tensor *logits;                             /* (N, 10), owned by the net */
    if (st_net_forward(net, xt, 0, &logits)) return fail();
    int wrong = 0;
    for (int i = 0; i < data.n_test; i++) {
        const float *z = logits->data + i * 10;
        int best = 0;
        for (int c = 1; c < 10; c++) if (z[c] > z[best]) best = c;
        wrong += best != data.test_y[i];
    }
    printf("mnist1d-cnn after 20 epochs: test error %.1f%%\n", 100.0 * wrong / data.n_test);

    st_tensor_free(x);
    st_tensor_free(xt);
    st_sgd_free(opt);
    st_net_free(net);
    st_mnist1d_free(&data);
    return 0;
}
